/* int8 calibration of the trained demo model (pipeline/quantize.h) and its
 * file (pipeline/calibration.h): `lipsync quantize`'s work on real speech
 * meets the accuracy bar (int8 against float32 on frames it was not
 * calibrated on: at most 1.5/255 of mean error per output pixel), a model
 * loads and renders in int8 from it, and a missing, foreign or malformed
 * int8.json is refused with a message, never half-applied. */
#include "support/test_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/decode.h"
#include "core/npy.h"
#include "nn/engine.h"
#include "pipeline/calibration.h"
#include "pipeline/model.h"
#include "pipeline/quantize.h"
#include "pipeline/session.h"

static char dir[PATH_MAX / 2];  /* a model directory of links to the demo's files */
static char good[PATH_MAX];     /* the int8.json quantize wrote, kept aside */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v) fail_msg("%s is not set", name);
    return v;
}

static int setup(void **state)
{
    (void)state;
    if (snprintf(dir, sizeof dir, "%s/quantize-XXXXXX", env("LS_TEST_TMP")) >= (int)sizeof dir)
        return -1;
    if (!mkdtemp(dir)) return -1;
    static const char *const files[] = {"model.json", "unet.onnx", "audio_encoder.onnx", "avatar"};
    for (int i = 0; i < 4; i++) {
        char from[PATH_MAX], to[PATH_MAX + 32];
        snprintf(from, sizeof from, "%s/%s", env("LS_TRAINED_DEMO"), files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (symlink(from, to)) return -1;
    }
    snprintf(good, sizeof good, "%s.int8.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[2 * PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, good);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_quantize_demo(void **state)
{
    (void)state;
    ls_error err = {0};
    ls_audio speech = {0};
    if (ls_audio_load_16k(env("LS_TEST_SPEECH"), NULL, 0, &speech, &err)) fail_msg("%s", err.msg);
    ls_quantize_options qo = {.frames = 12, .threads = 2};
    ls_quantize_report r;
    if (ls_model_quantize(dir, speech.samples, speech.n, &qo, &r, &err)) fail_msg("%s", err.msg);
    ls_audio_free(&speech);
    print_message("calibrated on %d frames, checked on %d: %d int8 convs, mean %.3f max %.1f /255\n",
                  r.calib_items, r.check_items, r.int8_convs, r.mean_err, r.max_err);
    assert_int_equal(r.calib_items, 12);
    assert_int_equal(r.check_items, 12);
    assert_true(r.int8_convs > 20);
    assert_true(r.mean_err <= 1.5); /* the bar */
    assert_true(r.mean_err > 0.01); /* and it is really int8 */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/int8.json", dir);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, good);
    assert_int_equal(system(cmd), 0);

    /* an int8 model renders: frames of the avatar's size */
    ls_model_options mo = {.batch = 2, .precision = LS_PREC_INT8, .engine_threads = 2};
    ls_model *m;
    if (ls_model_load(dir, &mo, NULL, &m, &err)) fail_msg("%s", err.msg);
    ls_pool *pool;
    assert_int_equal(ls_pool_create(2, &pool, &err), LS_OK);
    ls_session_options so = {.format = LS_FRAME_BGR};
    ls_session *s;
    if (ls_session_create(m, pool, &so, &s, &err)) fail_msg("%s", err.msg);
    float tone[8000];
    for (int i = 0; i < 8000; i++) tone[i] = 0.3f * (float)((i / 40) % 2 ? 1 : -1);
    assert_int_equal(ls_session_push_audio(s, tone, 8000, &err), LS_OK);
    assert_int_equal(ls_session_finish(s, &err), LS_OK);
    ls_frame f;
    int frames = 0;
    ls_model_info info;
    ls_model_get_info(m, &info);
    while (ls_session_pull_frame(s, &f)) {
        assert_int_equal(f.width, info.width);
        frames++;
    }
    print_message("int8 session: %d frames\n", frames);
    assert_true(frames >= 10); /* 0.5 s of audio at 25 fps */
    ls_session_destroy(s);
    ls_pool_destroy(pool);
    ls_model_release(m);
}

/* Writes text as dir/int8.json and loads the model in int8: the status. */
static int load_with(const char *text, ls_error *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/int8.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    ls_model_options mo = {.batch = 1, .precision = LS_PREC_INT8, .engine_threads = 1};
    ls_model *m = NULL;
    int rc = ls_model_load(dir, &mo, NULL, &m, err);
    ls_model_release(m);
    if (rc) print_message("  refused: %s\n", err->msg);
    return rc;
}

/* The good file with its first occurrence of `from` replaced by `to`. */
static char *edited(const char *from, const char *to)
{
    uint8_t *bytes;
    size_t len;
    ls_error err;
    if (ls_read_file(good, &bytes, &len, &err)) fail_msg("%s", err.msg);
    char *at = strstr((char *)bytes, from);
    assert_non_null(at);
    size_t head = (size_t)(at - (char *)bytes);
    char *out = malloc(len + strlen(to) + 1);
    memcpy(out, bytes, head);
    strcpy(out + head, to);
    strcat(out, (char *)bytes + head + strlen(from));
    free(bytes);
    return out;
}

static void test_calibration_file_refused(void **state)
{
    (void)state;
    ls_error err = {0};
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/int8.json", dir);
    unlink(path);
    ls_model_options mo = {.batch = 1, .precision = LS_PREC_INT8, .engine_threads = 1};
    ls_model *m = NULL;
    assert_int_equal(ls_model_load(dir, &mo, NULL, &m, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "lipsync quantize"));
    assert_null(m);

    uint8_t *bytes;
    size_t len;
    if (ls_read_file(good, &bytes, &len, &err)) fail_msg("%s", err.msg);
    bytes[len - 1] = 0;
    assert_int_equal(load_with((char *)bytes, &err), LS_OK); /* the file as written loads */
    free(bytes);

    static const struct {
        const char *from, *to, *says;
    } edits[] = {
        {"lipsync-int8-calibration", "lipsync-int4-calibration", "format"},
        {"\"version\":\t1", "\"version\":\t2", "version"},
        {"\"unet_fnv1a64\":\t\"", "\"unet_fnv1a64\":\t\"0", "another unet.onnx"},
        {"\"unet_bytes\":\t", "\"unet_bytes\":\t1", "another unet.onnx"},
        {"\"input\"", "\"no such value\"", "no such value"},
        {"\"lo\":\t[0, ", "\"lo\":\t[", "channels"},
        {"\"lo\":\t[0, ", "\"lo\":\t[7, ", "lo <= hi"},
        {"\"lo\":\t[0, ", "\"lo\":\t[1e39, ", "finite"},
        {"\"lo\":\t[0, ", "\"lo\":\t[\"0\", ", "finite"},
        {"\"ranges\":\t{", "\"ranges\":\t[{", "JSON"},
        {"{", "[", "JSON object"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *text = edited(edits[i].from, edits[i].to);
        int rc = load_with(text, &err);
        free(text);
        assert_int_equal(rc, LS_ERR_FORMAT);
        if (!strstr(err.msg, edits[i].says)) fail_msg("edit %zu: '%s' lacks '%s'", i, err.msg, edits[i].says);
    }
    /* larger than the 8 MiB bound: refused before it is read */
    char *big = malloc(LS_CALIBRATION_MAX_BYTES + 2);
    memset(big, ' ', LS_CALIBRATION_MAX_BYTES + 1);
    big[0] = '{';
    big[LS_CALIBRATION_MAX_BYTES + 1] = 0;
    assert_int_equal(load_with(big, &err), LS_ERR_FORMAT);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_demo),
        cmocka_unit_test(test_calibration_file_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
