/* A warm session allocates nothing per chunk of its own: audio in, frames out.
 *
 * oneDNN 2.6's C API builds a std::unordered_map of a call's arguments on
 * every primitive execute (inside libdnnl; see tests/nn/test_engine_alloc.c),
 * so the engines' runs allocate a fixed count each. The test measures that
 * count on the session's own engines and requires the session to allocate
 * exactly that much and not one block more. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "pipeline/model.h"
#include "pipeline/model_internal.h"
#include "pipeline/session.h"
#include "pipeline/session_util.h"
#include "support/alloc_count.h"

/* Heap allocations of one warm run of engine e on zero inputs. */
static long allocs_per_run(const ls_engine *e, const ls_graph *g)
{
    ls_error err;
    ls_engine_ctx *c;
    assert_int_equal(ls_engine_ctx_create(e, &c, &err), LS_OK);
    float *in[LS_NN_MAX_INPUTS] = {0}, *out[LS_NN_MAX_INPUTS] = {0};
    for (int i = 0; i < g->n_inputs; i++) in[i] = calloc((size_t)ls_value_count(&g->values[g->inputs[i]]), sizeof(float));
    for (int i = 0; i < g->n_outputs; i++) out[i] = calloc((size_t)ls_value_count(&g->values[g->outputs[i]]), sizeof(float));
    assert_int_equal(ls_engine_run(c, (const float *const *)in, out, &err), LS_OK);
    long before = alloc_count();
    assert_int_equal(ls_engine_run(c, (const float *const *)in, out, &err), LS_OK);
    long n = alloc_count() - before;
    for (int i = 0; i < g->n_inputs; i++) free(in[i]);
    for (int i = 0; i < g->n_outputs; i++) free(out[i]);
    ls_engine_ctx_destroy(c);
    return n;
}

static void test_steady_state_allocates_nothing(void **state)
{
    (void)state;
    ls_error err;
    ls_pool *pool;
    assert_int_equal(ls_pool_create(2, &pool, &err), LS_OK);
    ls_model *m;
    ls_model_options mo = {.batch = 2};
    if (ls_model_load(getenv("LS_DEMO_MODEL"), &mo, pool, &m, &err)) fail_msg("%s", err.msg);
    const ls_model_engines *eng;
    assert_int_equal(ls_model_engines_get(m, 2, 2, &eng, &err), LS_OK);
    long unet_run = allocs_per_run(eng->unet, eng->unet_graph);
    long enc_run = allocs_per_run(eng->enc, eng->enc_graph);

    ls_session *s;
    assert_int_equal(ls_session_create(m, pool, NULL, &s, &err), LS_OK);
    size_t n = 16000 * 2;
    float *x = make_speech(n, 3);
    ls_frame f;
    /* Warm-up: the first second fills every pool and queue. */
    int frames = 0;
    for (size_t off = 0; off < 16000; off += 640) {
        assert_int_equal(ls_session_push_audio(s, x + off, 640, &err), LS_OK);
        while (ls_session_pull_frame(s, &f)) frames++;
    }
    ls_stage_times t0, t1;
    ls_session_get_times(s, &t0);
    long before = alloc_count();
    int warm_frames = frames;
    for (size_t off = 16000; off < n; off += 640) {
        assert_int_equal(ls_session_push_audio(s, x + off, 640, &err), LS_OK);
        while (ls_session_pull_frame(s, &f)) frames++;
    }
    long allocs = alloc_count() - before;
    ls_session_get_times(s, &t1);
    long engine = (t1.batches - t0.batches) * unet_run + (t1.encoder_batches - t0.encoder_batches) * enc_run;
    print_message("%d frames after warm-up: %ld heap allocations, all %ld inside oneDNN's execute "
                  "(%ld per UNet run, %ld per encoder run)\n",
                  frames - warm_frames, allocs, engine, unet_run, enc_run);
    assert_true(frames - warm_frames >= 20);
    assert_int_equal(allocs - engine, 0);
    ls_session_destroy(s);
    ls_model_release(m);
    ls_pool_destroy(pool);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_steady_state_allocates_nothing)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
