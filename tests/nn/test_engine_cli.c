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

/* `lipsync infer MODELS/model INPUT -o TMP/out EXTRA`, which must succeed;
 * loads the output into got and leaves the command's text in out. */
static void infer_ok(const char *model, const char *input, const char *extra, const char *out_name,
                     ls_npy *got, char *out, size_t cap)
{
    char args[4096], path[1024];
    ls_error err;
    snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), out_name);
    snprintf(args, sizeof args, "infer %s/%s %s -o %s %s", models, model, input, path, extra);
    if (lipsync(args, out, cap) != 0) fail_msg("lipsync %s failed: %s", args, out);
    if (ls_npy_read(path, got, &err)) fail_msg("%s", err.msg);
}

static void test_infer_encoder(void **state)
{
    (void)state;
    char out[8192], in1[700], named[1024];
    ls_npy want = {0}, got = {0};
    ls_error err;
    snprintf(in1, sizeof in1, "%s/encoder_out_b1.npy", models);
    assert_int_equal(ls_npy_read(in1, &want, &err), LS_OK);
    snprintf(in1, sizeof in1, "%s/encoder_in_b1.npy", models);
    snprintf(named, sizeof named, "mel_spectrogram=%s", in1);
    /* the engine, repeated: the last line is the median */
    infer_ok("encoder_op11.onnx", in1, "--threads 2 --repeat 2", "e1.npy", &got, out, sizeof out);
    char *last = strstr(out, "median_ms=");
    assert_non_null(last);
    assert_true(strtod(last + 10, NULL) > 0);
    assert_int_equal(strchr(last, '\n')[1], '\0');
    assert_int_equal(got.count, want.count);
    assert_true(max_diff(&want, got.data, want.count) <= 1e-4 * 13); /* 1e-4 * max|y| */
    ls_npy_free(&got);
    /* --batch 3 tiles the single item: three copies of the same output */
    infer_ok("encoder_op11.onnx", named, "--batch 3", "e3.npy", &got, out, sizeof out);
    assert_int_equal(got.shape[0], 3);
    for (int b = 0; b < 3; b++)
        assert_true(max_diff(&want, got.data + b * want.count, want.count) <= 2e-3);
    ls_npy_free(&got);
    /* the reference executor, and bf16 within bf16's reach */
    infer_ok("encoder_op17.onnx", in1, "--reference", "er.npy", &got, out, sizeof out);
    assert_true(max_diff(&want, got.data, want.count) <= 2e-3);
    ls_npy_free(&got);
    infer_ok("encoder_op11.onnx", in1, "--precision bf16", "eb.npy", &got, out, sizeof out);
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
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/missing.npy -o %s/x.npy", models,
             res, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "missing.npy"));
    /* a UNet input given to the encoder: no input has its shape */
    snprintf(args, sizeof args, "infer %s/encoder_op11.onnx %s/unet_in_audio_b1.npy -o %s/x.npy",
             models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    snprintf(args, sizeof args,
             "infer %s/encoder_op11.onnx nosuch=%s/encoder_in_b1.npy -o %s/x.npy", models, models,
             res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "nosuch"));
    /* a fixed-batch model asked for another batch */
    snprintf(args, sizeof args, "infer %s/encoder_op17.onnx %s/encoder_in_b3.npy -o %s/x.npy",
             models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    /* not an ONNX file */
    snprintf(args, sizeof args, "infer %s/encoder_in_b1.npy %s/encoder_in_b1.npy -o %s/x.npy",
             models, models, res);
    assert_int_equal(lipsync(args, out, sizeof out), 1);
    snprintf(args, sizeof args,
             "infer %s/encoder_op11.onnx %s/encoder_in_b1.npy -o %s/x.npy --precision int8", models,
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
