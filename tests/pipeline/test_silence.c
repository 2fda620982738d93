/* The pipeline's one silence measure (pipeline/silence.h): block energies
 * that do not depend on chunking, and speech start / end with its hold. */
#include "support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/silence.h"

#define MAX_BLOCKS 64

typedef struct blocks {
    int n;
    int64_t index[MAX_BLOCKS];
    double sum[MAX_BLOCKS];
} blocks;

static void keep(void *ctx, int64_t block, double sum_sq)
{
    blocks *b = ctx;
    assert_true(b->n < MAX_BLOCKS);
    b->index[b->n] = block;
    b->sum[b->n++] = sum_sq;
}

static void test_energy_chunking_invariant(void **state)
{
    (void)state;
    enum { N = 2000 };
    float x[N];
    uint64_t rng = 3;
    for (int i = 0; i < N; i++) x[i] = (float)(test_rand_uniform(&rng) - 0.5);
    ls_energy e;
    blocks whole = {0};
    ls_energy_init(&e, 200);
    ls_energy_push(&e, x, N - 50, keep, &whole);
    assert_int_equal(whole.n, (N - 50) / 200);
    double expect = 0;
    for (int i = 0; i < 200; i++) expect += (double)x[i] * x[i];
    assert_true(whole.sum[0] == expect);
    for (int seed = 1; seed < 20; seed++) {
        blocks got = {0};
        ls_energy_init(&e, 200);
        uint64_t r = (uint64_t)seed;
        for (size_t at = 0; at < N - 50;) {
            size_t k = 1 + test_rand(&r) % 300;
            if (k > N - 50 - at) k = N - 50 - at;
            ls_energy_push(&e, x + at, k, keep, &got);
            at += k;
        }
        assert_int_equal(got.n, whole.n);
        for (int i = 0; i < got.n; i++) {
            assert_int_equal(got.index[i], i);
            assert_true(got.sum[i] == whole.sum[i]); /* to the bit */
        }
        assert_int_equal(e.samples, N - 50);
        double partial = 0;
        for (int i = (N - 50) / 200 * 200; i < N - 50; i++) partial += (double)x[i] * x[i];
        assert_true(e.partial == partial);
    }
}

typedef struct events {
    int n, start[8];
    int64_t block[8];
} events;

static void on_event(void *ctx, int start, int64_t block)
{
    events *ev = ctx;
    assert_true(ev->n < 8);
    ev->start[ev->n] = start;
    ev->block[ev->n++] = block;
}

static void test_speech_start_and_end(void **state)
{
    (void)state;
    /* 640-sample blocks: 3 silent, 5 loud, 20 silent; speech ends after 12. */
    enum { B = 640, N = 28 * B };
    float *x = calloc(N, sizeof *x);
    for (int i = 3 * B; i < 8 * B; i++) x[i] = (i % 2) ? 0.1f : -0.1f;
    ls_speech d;
    events ev = {0};
    ls_speech_init(&d, B, 0.003, 12);
    for (size_t at = 0; at < N; at += 1000)
        ls_speech_push(&d, x + at, N - at < 1000 ? N - at : 1000, on_event, &ev);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.start[0], 1);
    assert_int_equal(ev.block[0], 3);
    assert_int_equal(ev.start[1], 0);
    assert_int_equal(ev.block[1], 8); /* dated at the first silent block */
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_energy_chunking_invariant),
        cmocka_unit_test(test_speech_start_and_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
