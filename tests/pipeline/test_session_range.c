/* A session's frame range (ls_session_options.first_frame / frame_count, the
 * batch API's window on a clip): exactly the frames of the range, the bytes a
 * whole session gives them, at the start, middle and end of a clip and for
 * any chunking, with the UNet run on those frames only and the encoder on
 * the windows their features see. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/windows.h"
#include "pipeline/features.h"
#include "pipeline/model.h"
#include "pipeline/session.h"
#include "pipeline/session_util.h"

#define BATCH 4
#define SAMPLES 22400 /* 1.4 s */

static ls_model *model;
static ls_pool *pool2;
static float *audio;
static frame_list whole;
static ls_stage_times whole_times;

static int run_timed(const ls_session_options *o, long chunk, frame_list *out, ls_stage_times *t)
{
    memset(out, 0, sizeof *out);
    ls_error err;
    ls_session *s;
    int rc = ls_session_create(model, pool2, o, &s, &err);
    if (rc) return rc;
    uint64_t rng = 99;
    for (size_t off = 0; off < SAMPLES && !rc;) {
        size_t len = chunk == 0 ? SAMPLES : 1 + test_rand(&rng) % (size_t)chunk;
        if (len > SAMPLES - off) len = SAMPLES - off;
        rc = ls_session_push_audio(s, audio + off, len, &err);
        off += len;
        frames_take(s, out);
    }
    if (!rc) rc = ls_session_finish(s, &err);
    frames_take(s, out);
    ls_session_get_times(s, t);
    ls_session_destroy(s);
    if (rc) fprintf(stderr, "session: %s\n", err.msg);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (load_demo_model(BATCH, &pool2, &model)) return -1;
    audio = make_speech(SAMPLES, 5);
    ls_session_options o = {.start_frame = 3};
    return run_timed(&o, 0, &whole, &whole_times) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    frames_free(&whole);
    ls_model_release(model);
    ls_pool_destroy(pool2);
    free(audio);
    return 0;
}

static void test_ranges_are_the_whole_sessions_frames(void **state)
{
    (void)state;
    int n = whole.n;
    assert_int_equal(n, ls_feature_frame_count((int64_t)ls_mel_window_count(ls_mel_rows(SAMPLES))));
    /* Start, middle and end of the clip; past its end; each in one push, and
     * one of them in random chunks. */
    const struct { int first, count; long chunk; } ranges[] = {
        {0, 4, 0}, {9, 3, 0}, {13, 8, 0}, {13, 8, 3000}, {n - 5, 5, 0}, {n - 2, 10, 0},
    };
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        {
            ls_session_options o = {.start_frame = 3, .first_frame = ranges[r].first,
                                    .frame_count = ranges[r].count};
            frame_list got;
            ls_stage_times t;
            assert_int_equal(run_timed(&o, ranges[r].chunk, &got, &t), LS_OK);
            int end = ranges[r].first + ranges[r].count < n ? ranges[r].first + ranges[r].count : n;
            int count = end - ranges[r].first;
            char what[96];
            snprintf(what, sizeof what, "range %d+%d, chunk %ld", ranges[r].first, ranges[r].count,
                     ranges[r].chunk);
            if (got.n != count) fail_msg("%s: %d frames, want %d", what, got.n, count);
            for (int i = 0; i < count; i++) {
                int w = ranges[r].first + i;
                if (got.index[i] != whole.index[w] || got.avatar[i] != whole.avatar[w])
                    fail_msg("%s: frame %d index/avatar differ", what, w);
                if (got.size[i] != whole.size[w] || memcmp(got.bytes[i], whole.bytes[w], got.size[i]))
                    fail_msg("%s: frame %d bytes differ from the whole session's", what, w);
            }
            /* The UNet ran on the range only; the encoder on its windows
             * (frame i sees windows i-9 .. i+6: count + 15 at most). */
            assert_int_equal(t.frames, count);
            assert_int_equal(t.batches, (count + BATCH - 1) / BATCH);
            assert_true(t.encoder_batches <= (count + 15 + BATCH - 1) / BATCH + 1);
            if (count <= 8) assert_true(t.encoder_batches < whole_times.encoder_batches);
            frames_free(&got);
        }
    }
}

static void test_range_past_the_end_and_bad_ranges(void **state)
{
    (void)state;
    ls_session_options o = {.first_frame = whole.n, .frame_count = 4};
    frame_list got;
    ls_stage_times t;
    assert_int_equal(run_timed(&o, 0, &got, &t), LS_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(t.batches, 0);
    frames_free(&got);

    ls_error err;
    ls_session *s = NULL;
    ls_session_options bad = {.first_frame = -1, .frame_count = 2};
    assert_int_equal(ls_session_create(model, pool2, &bad, &s, &err), LS_ERR_RANGE);
    assert_null(s);
    bad = (ls_session_options){.first_frame = INT64_MAX, .frame_count = 2};
    assert_int_equal(ls_session_create(model, pool2, &bad, &s, &err), LS_ERR_RANGE);
    bad = (ls_session_options){.first_frame = 0, .frame_count = -1};
    assert_int_equal(ls_session_create(model, pool2, &bad, &s, &err), LS_ERR_RANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_are_the_whole_sessions_frames),
        cmocka_unit_test(test_range_past_the_end_and_bad_ranges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
