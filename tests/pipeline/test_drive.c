/* The one push / pull / finish loop (pipeline/drive.h): the frames it hands
 * over are the session's, in order, whatever the chunk and flush; pulled
 * runs after every pass; proceed and a failing sink stop it as documented. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/drive.h"
#include "pipeline/session.h"
#include "pipeline/session_util.h"

#define BATCH 4
#define N_SAMPLES 24000 /* 1.5 s */

static ls_model *model;
static ls_pool *pool2;
static float *audio;
static frame_list ref; /* push all, finish, pull: the session's own frames */

static int setup(void **state)
{
    (void)state;
    if (load_demo_model(BATCH, &pool2, &model)) return -1;
    audio = make_speech(N_SAMPLES, 5);
    ls_session_options o = {.start_frame = 1};
    ls_error err = {0};
    return run_session(model, pool2, &o, audio, N_SAMPLES, 0, 0, &ref, &err) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    frames_free(&ref);
    ls_model_release(model);
    ls_pool_destroy(pool2);
    free(audio);
    return 0;
}

typedef struct sink_state {
    frame_list got;
    ls_session *s;
    int pulled, proceeds;
    int stop_after;   /* proceed: LS_DRIVE_STOP once this many chunks went in; 0: never */
    int fail_after;   /* proceed: LS_ERR_STATE instead; 0: never */
    int frame_fail_at; /* frame: LS_ERR_IO at this many frames taken; 0: never */
    int64_t last_index;
} sink_state;

static int take(void *ctx, const ls_frame *f, ls_error *err)
{
    sink_state *st = ctx;
    if (st->frame_fail_at && st->got.n == st->frame_fail_at)
        return ls_error_set(err, LS_ERR_IO, "sink full");
    assert_true(f->index == st->last_index + 1);
    st->last_index = f->index;
    frames_add(&st->got, f);
    return LS_OK;
}

static void pulled(void *ctx)
{
    ((sink_state *)ctx)->pulled++;
}

static int proceed(void *ctx, ls_error *err)
{
    sink_state *st = ctx;
    if (st->fail_after && st->proceeds == st->fail_after)
        return ls_error_set(err, LS_ERR_STATE, "client went away");
    if (st->stop_after && st->proceeds == st->stop_after) return LS_DRIVE_STOP;
    st->proceeds++;
    return LS_OK;
}

/* Drives a fresh session over the test audio; the status of the drive. */
static int drive(sink_state *st, size_t chunk, int flush, int finish, ls_error *err)
{
    ls_session_options o = {.start_frame = 1};
    assert_int_equal(ls_session_create(model, pool2, &o, &st->s, err), LS_OK);
    st->last_index = -1;
    ls_drive_options dopt = {.chunk = chunk, .flush = flush, .finish = finish};
    ls_drive_sink sink = {take, pulled, proceed, st};
    int rc = ls_session_drive(st->s, audio, N_SAMPLES, &dopt, &sink, err);
    return rc;
}

static void done(sink_state *st)
{
    ls_session_destroy(st->s);
    frames_free(&st->got);
}

static void test_same_frames_any_chunk(void **state)
{
    (void)state;
    /* One frame's audio per push, an odd size, all at once; and live flushes. */
    const struct {
        size_t chunk;
        int flush;
    } cases[] = {{0, 0}, {640, 0}, {7777, 0}, {3200, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t chunk = cases[i].chunk;
        sink_state st = {0};
        ls_error err = {0};
        assert_int_equal(drive(&st, chunk, cases[i].flush, 1, &err), LS_OK);
        char what[64];
        snprintf(what, sizeof what, "chunk %zu flush %d", chunk, cases[i].flush);
        assert_same_frames(&ref, &st.got, what);
        size_t n_chunks = chunk ? (N_SAMPLES + chunk - 1) / chunk : 1;
        /* One pull pass per chunk, one after the finish. */
        assert_int_equal(st.pulled, (int)n_chunks + 1);
        assert_int_equal(st.proceeds, (int)n_chunks);
        done(&st);
    }
}

static void test_no_finish_keeps_the_session_open(void **state)
{
    (void)state;
    sink_state st = {0};
    ls_error err = {0};
    assert_int_equal(drive(&st, 3200, 0, 0, &err), LS_OK);
    assert_true(st.got.n < ref.n);
    /* The rest comes from a later drive with no audio and finish. */
    ls_drive_options fin = {.finish = 1};
    ls_drive_sink sink = {take, pulled, proceed, &st};
    assert_int_equal(ls_session_drive(st.s, NULL, 0, &fin, &sink, &err), LS_OK);
    assert_same_frames(&ref, &st.got, "drive, then finish");
    done(&st);
}

static void test_proceed_stops_quietly_or_fails(void **state)
{
    (void)state;
    sink_state st = {.stop_after = 2};
    ls_error err = {0};
    assert_int_equal(drive(&st, 3200, 0, 1, &err), LS_OK);
    assert_int_equal(st.proceeds, 2);
    assert_int_equal(st.pulled, 2); /* no finish after a stop */
    assert_true(st.got.n < ref.n);
    /* What came is the start of the session's frames. */
    for (int i = 0; i < st.got.n; i++) {
        assert_int_equal(st.got.size[i], ref.size[i]);
        assert_memory_equal(st.got.bytes[i], ref.bytes[i], ref.size[i]);
    }
    done(&st);

    sink_state bad = {.fail_after = 1};
    assert_int_equal(drive(&bad, 3200, 0, 1, &err), LS_ERR_STATE);
    assert_non_null(strstr(err.msg, "went away"));
    assert_int_equal(bad.pulled, 1);
    done(&bad);
}

static void test_failing_sink_stops_the_drive(void **state)
{
    (void)state;
    sink_state st = {.frame_fail_at = 3};
    ls_error err = {0};
    assert_int_equal(drive(&st, 640, 0, 1, &err), LS_ERR_IO);
    assert_non_null(strstr(err.msg, "sink full"));
    assert_int_equal(st.got.n, 3);
    done(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_frames_any_chunk),
        cmocka_unit_test(test_no_finish_keeps_the_session_open),
        cmocka_unit_test(test_proceed_stops_quietly_or_fails),
        cmocka_unit_test(test_failing_sink_stops_the_drive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
