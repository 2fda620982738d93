/* `lipsync render` frame output on the demo model: --jpeg-dir creates missing
 * directories, --frame-format png writes exactly the session's pixels,
 * FFmpeg's log lines stay off stderr unless -v asks for them, and Ctrl-C
 * leaves an MP4 that plays. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio/mel.h"
#include "audio/windows.h"
#include "image/codec.h"
#include "pipeline/model.h"
#include "pipeline/session.h"
#include "pipeline/session_util.h"

/* The CLI runs with the same batch and thread count as the in-process model:
 * the engine's thread count is part of what makes frames byte-identical. */
#define BATCH 4
#define SPEECH_N 16000 /* 1 s: 24 frames */

static ls_model *model;
static ls_pool *pool2;
static float *speech;
static char raw_path[512];

static int setup(void **state)
{
    (void)state;
    if (load_demo_model(BATCH, &pool2, &model)) return -1;
    speech = make_speech(SPEECH_N, 11);
    const char *p = test_write_tmp("speech.f32", speech, SPEECH_N * sizeof(float));
    if (!p) return -1;
    snprintf(raw_path, sizeof raw_path, "%s", p);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ls_model_release(model);
    ls_pool_destroy(pool2);
    free(speech);
    return 0;
}

static int expected_frames(void)
{
    return (int)ls_mel_window_count(ls_mel_rows(SPEECH_N)) + 2;
}

/* Runs `lipsync render DEMO SPEECH ARGS`, stdout dropped, stderr into err_path;
 * returns the exit status. */
static int render(const char *args, const char *err_path)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' render '%s' '%s' --raw f32le:16000:1 --batch %d --threads 2 %s "
             "> /dev/null 2> '%s'", getenv("LS_BIN"), getenv("LS_DEMO_MODEL"), raw_path, BATCH,
             args, err_path);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The whole file in a malloc'd buffer (NUL-terminated), NULL when unreadable. */
static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = b ? (size_t)n : 0;
    return b;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Frame k of dir (.jpg or .png) decoded to BGR. */
static void decode_frame(ls_image_decoder *dec, const char *dir, int k, const char *ext,
                         ls_image *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/frame_%06d.%s", dir, k, ext);
    size_t len;
    uint8_t *bytes = read_all(path, &len);
    if (!bytes) fail_msg("cannot read %s", path);
    ls_error err = {0};
    if (ls_image_decode(dec, bytes, len, out, &err)) fail_msg("%s: %s", path, err.msg);
    free(bytes);
}

static void test_frames_and_quiet(void **state)
{
    (void)state;
    const char *tmp = test_tmp_dir();
    char jpeg_dir[512], png_dir[512], errs[512], args[2048];
    int n = expected_frames();

    /* (a) + (c): a nested JPEG directory that does not exist yet, and an MP4
     * whose encoders (libx264 stats, AAC's Qavg) must print nothing. */
    snprintf(jpeg_dir, sizeof jpeg_dir, "%s/not/yet/jpeg", tmp);
    snprintf(errs, sizeof errs, "%s/quiet.err", tmp);
    assert_false(exists(jpeg_dir));
    snprintf(args, sizeof args, "-o '%s/quiet.mp4' --jpeg-dir '%s' --quiet", tmp, jpeg_dir);
    assert_int_equal(render(args, errs), 0);
    size_t len;
    char *text = (char *)read_all(errs, &len);
    assert_non_null(text);
    if (len) fail_msg("render --quiet printed on stderr:\n%s", text);
    free(text);
    char path[1024];
    for (int k = 0; k <= n; k++) {
        snprintf(path, sizeof path, "%s/frame_%06d.jpg", jpeg_dir, k);
        if (exists(path) != (k < n)) fail_msg("%s %s", path, k < n ? "missing" : "unexpected");
    }

    /* (b) PNG frames, with -v: FFmpeg's lines do reach stderr when asked for. */
    snprintf(png_dir, sizeof png_dir, "%s/png", tmp);
    snprintf(errs, sizeof errs, "%s/verbose.err", tmp);
    snprintf(args, sizeof args, "-o '%s/verbose.mp4' --frames-dir '%s' --frame-format png -v", tmp,
             png_dir);
    assert_int_equal(render(args, errs), 0);
    text = (char *)read_all(errs, &len);
    assert_non_null(text);
    if (!strstr(text, "libx264")) fail_msg("render -v printed no libx264 line:\n%s", text);
    free(text);
    snprintf(path, sizeof path, "%s/frame_%06d.png", png_dir, n);
    assert_false(exists(path));

    /* Every PNG holds exactly the session's BGR frame; the JPEG of the same
     * frame is within JPEG noise of it. */
    ls_session_options o = {.batch = BATCH, .format = LS_FRAME_BGR};
    frame_list f;
    ls_error err = {0};
    if (run_session(model, pool2, &o, speech, SPEECH_N, 16000, 0, &f, &err)) fail_msg("%s", err.msg);
    assert_int_equal(f.n, n);
    ls_image_decoder *dec;
    assert_int_equal(ls_image_decoder_create(&dec, &err), LS_OK);
    assert_non_null(dec);
    ls_model_info info;
    ls_model_get_info(model, &info);
    double worst = 0;
    for (int k = 0; k < n; k++) {
        ls_image png, jpg;
        decode_frame(dec, png_dir, k, "png", &png);
        decode_frame(dec, jpeg_dir, k, "jpg", &jpg);
        assert_int_equal(png.width, info.width);
        assert_int_equal(png.height, info.height);
        assert_int_equal(f.size[k], (size_t)info.width * (size_t)info.height * 3);
        size_t row = (size_t)info.width * 3;
        double diff = 0;
        for (int y = 0; y < info.height; y++) {
            const uint8_t *want = f.bytes[k] + row * (size_t)y, *p = ls_image_row(&png, y),
                          *j = ls_image_row(&jpg, y);
            if (memcmp(p, want, row)) fail_msg("PNG frame %d row %d differs from the session's", k, y);
            for (size_t x = 0; x < row; x++) diff += abs((int)j[x] - (int)p[x]);
        }
        diff /= (double)row * info.height;
        if (diff > worst) worst = diff;
        ls_image_free(&png);
        ls_image_free(&jpg);
    }
    print_message("%d frames; PNG = session frames; JPEG mean |diff| at most %.2f\n", n, worst);
    assert_true(worst < 5.0);
    ls_image_decoder_destroy(dec);
    frames_free(&f);

    /* A frames directory that cannot be made fails with our message, not at frame 0. */
    snprintf(errs, sizeof errs, "%s/bad.err", tmp);
    snprintf(args, sizeof args, "--frames-dir '%s/quiet.mp4/frames'", tmp);
    assert_int_equal(render(args, errs), 1);
    text = (char *)read_all(errs, &len);
    assert_non_null(text);
    if (!strstr(text, "cannot create directory")) fail_msg("unexpected error:\n%s", text);
    free(text);
}

/* Ctrl-C during a render: exit status 130, and the MP4 is finished (it has
 * its index, and it plays the frames rendered before the signal). */
static void test_interrupt_finishes_the_mp4(void **state)
{
    (void)state;
    const char *tmp = test_tmp_dir();
    size_t n = 16000 * 30; /* 30 s: far more than is rendered before the signal */
    float *x = make_speech(n, 3);
    const char *audio = test_write_tmp("long.f32", x, n * sizeof *x);
    free(x);
    assert_non_null(audio);
    char long_path[512], dir[512], mp4[512], probe[1024], first[600];
    snprintf(long_path, sizeof long_path, "%s", audio);
    snprintf(dir, sizeof dir, "%s/interrupted", tmp);
    snprintf(mp4, sizeof mp4, "%s/interrupted.mp4", tmp);
    snprintf(first, sizeof first, "%s/frame_000008.jpg", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(getenv("LS_BIN"), "lipsync", "render", getenv("LS_DEMO_MODEL"), long_path, "--raw",
              "f32le:16000:1", "--batch", "4", "--threads", "2", "-o", mp4, "--frames-dir", dir,
              "--frame-format", "jpeg", (char *)NULL);
        _exit(127);
    }
    /* Interrupt once a few frames are out (or stop waiting if it died). */
    int st, gone = 0;
    for (int i = 0; i < 3000 && !exists(first) && !gone; i++) {
        nanosleep(&(struct timespec){0, 100000000}, NULL);
        gone = waitpid(pid, &st, WNOHANG) == pid;
    }
    if (gone) fail_msg("render exited (status %d) before its 9th frame", st);
    assert_true(exists(first));
    kill(pid, SIGINT);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 130);
    int written = 0;
    char path[1024];
    for (;; written++) {
        snprintf(path, sizeof path, "%s/frame_%06d.jpg", dir, written);
        if (!exists(path)) break;
    }
    assert_true(written >= 9 && written < 740);
    /* FFmpeg reads the file back and finds every frame written. */
    snprintf(probe, sizeof probe, "ffprobe -v error -count_frames -select_streams v:0 "
             "-show_entries stream=nb_read_frames -of csv=p=0 '%s'", mp4);
    FILE *f = popen(probe, "r");
    assert_non_null(f);
    int frames = -1;
    if (fscanf(f, "%d", &frames) != 1) frames = -1;
    pclose(f);
    /* The writer holds the last frame until the sound ends: one more entry. */
    if (frames != written && frames != written + 1)
        fail_msg("the interrupted MP4 has %d frames, %d were rendered", frames, written);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_and_quiet),
        cmocka_unit_test(test_interrupt_finishes_the_mp4),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
