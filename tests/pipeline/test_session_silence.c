/* Live streams' silence shortcut (ls_session_options.silence_rms): frames
 * whose whole audio window is silent are the avatar's own frame without
 * inference; every other frame is the bytes it would be without the option,
 * and the choice does not depend on chunking or flushes. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/windows.h"
#include "avatar/avatar.h"
#include "pipeline/model.h"
#include "pipeline/model_internal.h"
#include "pipeline/session.h"
#include "pipeline/session_util.h"

#define BATCH 4
#define RMS 0.003f
/* 0.4 s of speech, 1.0 s of zeros, 0.3 s of speech. */
#define SPEECH1 6400
#define ZEROS 16000
#define SPEECH2 4800
#define TOTAL (SPEECH1 + ZEROS + SPEECH2)

static ls_model *model;
static ls_pool *pool2;
static float *audio;

static int setup(void **state)
{
    (void)state;
    if (load_demo_model(BATCH, &pool2, &model)) return -1;
    audio = make_speech(TOTAL, 11);
    memset(audio + SPEECH1, 0, ZEROS * sizeof *audio);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ls_model_release(model);
    ls_pool_destroy(pool2);
    free(audio);
    return 0;
}

/* Frame i's audio: mel windows i-9 .. i+6 (features.h), rows from the first
 * window's start to the last's 16th, each row seeing 400 samples either side
 * of its hop (200 samples per row). */
static int inside_zeros(int i)
{
    long first = (long)ls_mel_window_start((size_t)(i > 9 ? i - 9 : 0), 0);
    long last = (long)ls_mel_window_start((size_t)(i + 6), 0) + 15;
    return 200 * first - 400 >= SPEECH1 && 200 * last + 400 <= SPEECH1 + ZEROS;
}

static void test_silent_frames_skip_inference(void **state)
{
    (void)state;
    ls_session_options plain = {.start_frame = 2}, quiet = plain;
    quiet.silence_rms = RMS;
    frame_list ref, got;
    ls_error err;
    assert_int_equal(run_session(model, pool2, &plain, audio, TOTAL, 0, 0, &ref, &err), LS_OK);
    assert_int_equal(run_session(model, pool2, &quiet, audio, TOTAL, 0, 0, &got, &err), LS_OK);
    assert_int_equal(got.n, ref.n);
    int silent = 0;
    for (int i = 0; i < got.n; i++) {
        assert_int_equal(ref.silent[i], 0);
        assert_int_equal(got.index[i], ref.index[i]);
        assert_int_equal(got.avatar[i], ref.avatar[i]);
        if (got.silent[i] != inside_zeros(i)) fail_msg("frame %d: silent %d", i, got.silent[i]);
        silent += got.silent[i];
        if (!got.silent[i]) {
            /* Inferred frames do not change with the others skipped. */
            assert_int_equal(got.size[i], ref.size[i]);
            assert_memory_equal(got.bytes[i], ref.bytes[i], ref.size[i]);
        } else {
            assert_true(got.size[i] > 1000 && got.bytes[i][0] == 0xFF && got.bytes[i][1] == 0xD8);
            assert_true(got.size[i] != ref.size[i] || memcmp(got.bytes[i], ref.bytes[i], ref.size[i]));
        }
    }
    assert_int_equal(silent, 4); /* frames 20..23 */
    frames_free(&ref);
    frames_free(&got);
}

/* Live use: small chunks, a flush after each; the same frames and flags. */
static void test_chunking_and_flush_invariant(void **state)
{
    (void)state;
    ls_session_options o = {.silence_rms = RMS};
    frame_list whole, live;
    ls_error err;
    assert_int_equal(run_session(model, pool2, &o, audio, TOTAL, 0, 0, &whole, &err), LS_OK);
    ls_session *s;
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_OK);
    memset(&live, 0, sizeof live);
    uint64_t rng = 3;
    for (size_t off = 0; off < TOTAL;) {
        size_t len = 1 + test_rand(&rng) % 1500;
        if (len > TOTAL - off) len = TOTAL - off;
        assert_int_equal(ls_session_push_audio(s, audio + off, len, &err), LS_OK);
        assert_int_equal(ls_session_flush(s, &err), LS_OK);
        frames_take(s, &live);
        off += len;
    }
    assert_int_equal(ls_session_finish(s, &err), LS_OK);
    frames_take(s, &live);
    ls_stage_times t;
    ls_session_get_times(s, &t);
    assert_int_equal(t.silent_frames, 4);
    assert_int_equal(t.frames, live.n);
    ls_session_destroy(s);
    assert_same_frames(&whole, &live, "random chunks with flushes");
    frames_free(&whole);
    frames_free(&live);
}

/* All-silent audio runs no model at all, and a silent frame in raw BGR is
 * exactly the avatar's frame. */
static void test_silence_only_is_the_avatar(void **state)
{
    (void)state;
    size_t n = 8000;
    float *zeros = calloc(n, sizeof *zeros);
    for (size_t i = 0; i < n; i++) zeros[i] = (i % 2 ? 1 : -1) * 0.5f * RMS; /* RMS/2 */
    ls_session_options o = {.start_frame = 1, .format = LS_FRAME_BGR, .silence_rms = RMS};
    ls_session *s;
    ls_error err;
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_OK);
    assert_int_equal(ls_session_push_audio(s, zeros, n, &err), LS_OK);
    assert_int_equal(ls_session_finish(s, &err), LS_OK);
    ls_avatar *av = ls_model_avatar(model);
    ls_frame f;
    int frames = 0;
    while (ls_session_pull_frame(s, &f)) {
        assert_int_equal(f.silent, 1);
        ls_image img;
        assert_int_equal(ls_avatar_acquire_frame(av, (int)f.avatar_frame, &img, &err), LS_OK);
        assert_int_equal(f.size, (size_t)img.width * img.height * 3);
        for (int y = 0; y < img.height; y++)
            assert_memory_equal(f.data + (size_t)y * img.width * 3,
                                img.data + (size_t)y * img.stride, (size_t)img.width * 3);
        ls_avatar_release_frame(av, (int)f.avatar_frame);
        frames++;
    }
    ls_stage_times t;
    ls_session_get_times(s, &t);
    assert_int_equal(frames, (int)ls_mel_window_count(ls_mel_rows(n)) + 2);
    assert_int_equal(t.batches, 0);
    assert_int_equal(t.encoder_batches > 0, 1); /* the features still follow the audio */
    assert_int_equal(t.silent_frames, frames);
    ls_session_destroy(s);

    /* Just above the threshold is speech. */
    for (size_t i = 0; i < n; i++) zeros[i] = (i % 2 ? 1 : -1) * 1.01f * RMS;
    o.format = LS_FRAME_JPEG;
    assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_OK);
    assert_int_equal(ls_session_push_audio(s, zeros, n, &err), LS_OK);
    assert_int_equal(ls_session_finish(s, &err), LS_OK);
    ls_session_get_times(s, &t);
    assert_int_equal(t.silent_frames, 0);
    assert_true(t.batches > 0);
    ls_session_destroy(s);
    free(zeros);
}

static void test_bad_threshold(void **state)
{
    (void)state;
    const float bad[] = {-0.1f, 1.5f, 0.0f / 0.0f};
    for (int i = 0; i < 3; i++) {
        ls_session_options o = {.silence_rms = bad[i]};
        ls_session *s = NULL;
        ls_error err;
        assert_int_equal(ls_session_create(model, pool2, &o, &s, &err), LS_ERR_RANGE);
        assert_null(s);
        assert_non_null(strstr(err.msg, "silence"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_frames_skip_inference),
        cmocka_unit_test(test_chunking_and_flush_invariant),
        cmocka_unit_test(test_silence_only_is_the_avatar),
        cmocka_unit_test(test_bad_threshold),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
