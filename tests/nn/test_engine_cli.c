/* `lipsync infer` end to end on the torch audio encoder: outputs, --batch
 * tiling, --repeat's last line, --reference, --precision, bad inputs. */
#include "support/test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/npy.h"

static char models[512], bin[512];

static int setup(void **state)
{
    (void)state;
    const char *m = getenv("LS_MODELS_DIR"), *b = getenv("LS_BIN");
    if (!m || !b) return -1;
    snprintf(models, sizeof models, "%s", m);
    snprintf(bin, sizeof bin, "%s", b);
    return 0;
}

/* Runs `lipsync ARGS > out.txt 2>&1`; returns the exit status. */
static int lipsync(const char *args, char *out, size_t cap)
{
    char cmd[8192], log[512];
    snprintf(log, sizeof log, "%s/cli.txt", test_tmp_dir());
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", bin, args, log);
    int st = system(cmd);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double max_diff(const ls_npy *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a->data[i] - b[i]));
    return d;
}

static void test_infer_encoder(void **state)
{
    (void)state;
    char args[4096], out[8192], path[1024];
    ls_npy want = {0}, got = {0};
    ls_error err;
    snprintf(path, sizeof path, "%s/encoder_out_b1.npy", models);
    assert_int_equal(ls_npy_read(path, &want, &err), LS_OK);
    const char *res = test_tmp_dir();
    /* the engine, repeated: the last line is the median */
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/encoder_in_b1.npy -o %s/e1.npy --threads 2 --repeat 2",
             models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 0);
    char *last = strstr(out, "median_ms=");
    assert_non_null(last);
    assert_true(strtod(last + 10, NULL) > 0);
    assert_int_equal(strchr(last, '\n')[1], '\0');
    snprintf(path, sizeof path, "%s/e1.npy", res);
    assert_int_equal(ls_npy_read(path, &got, &err), LS_OK);
    assert_int_equal(got.count, want.count);
    assert_true(max_diff(&want, got.data, want.count) <= 1e-4 * 13); /* 1e-4 * max|y| */
    ls_npy_free(&got);
    /* --batch 3 tiles the single item: three copies of the same output */
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx mel_spectrogram=%s/encoder_in_b1.npy -o %s/e3.npy --batch 3",
             models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/e3.npy", res);
    assert_int_equal(ls_npy_read(path, &got, &err), LS_OK);
    assert_int_equal(got.shape[0], 3);
    for (int b = 0; b < 3; b++) assert_true(max_diff(&want, got.data + b * want.count, want.count) <= 2e-3);
    ls_npy_free(&got);
    /* the reference executor and bf16 agree within their own tolerances */
    snprintf(args, sizeof args, "infer %s/encoder_op17.onnx %s/encoder_in_b1.npy -o %s/er.npy --reference", models,
             models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/er.npy", res);
    assert_int_equal(ls_npy_read(path, &got, &err), LS_OK);
    assert_true(max_diff(&want, got.data, want.count) <= 2e-3);
    ls_npy_free(&got);
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/encoder_in_b1.npy -o %s/eb.npy --precision bf16",
             models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 0);
    snprintf(path, sizeof path, "%s/eb.npy", res);
    assert_int_equal(ls_npy_read(path, &got, &err), LS_OK);
    double d = max_diff(&want, got.data, want.count);
    assert_true(d > 1e-4 && d < 1.5);
    ls_npy_free(&got);
    ls_npy_free(&want);
}

static void test_infer_errors(void **state)
{
    (void)state;
    char args[4096], out[8192];
    const char *res = test_tmp_dir();
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/missing.npy -o %s/x.npy", models, res, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "missing.npy"));
    /* a UNet input given to the encoder: no input has its shape */
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/unet_in_audio_b1.npy -o %s/x.npy", models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx nosuch=%s/encoder_in_b1.npy -o %s/x.npy", models, models,
             res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "nosuch"));
    /* a fixed-batch model asked for another batch */
    snprintf(args, sizeof args, "infer %s/encoder_op17.onnx %s/encoder_in_b3.npy -o %s/x.npy", models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    /* not an ONNX file */
    snprintf(args, sizeof args, "infer %s/encoder_in_b1.npy %s/encoder_in_b1.npy -o %s/x.npy", models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/encoder_in_b1.npy -o %s/x.npy --precision int8", models,
             models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 2);
    assert_int_equal(lipsync("infer", out, sizeof out), 2);
    assert_int_equal(lipsync("infer --help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--repeat"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_encoder),
        cmocka_unit_test(test_infer_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
