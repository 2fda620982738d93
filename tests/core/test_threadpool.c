/* Thread pool: partition, coverage, concurrency, nesting, async loops. */
#include "support/test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"

#define MAX_ROWS 1000

typedef struct {
    atomic_int hits[MAX_ROWS + 1];
    atomic_int calls;
    int band_begin[64], band_end[64];
} coverage_ctx;

static void mark_rows(void *vctx, int begin, int end, int band)
{
    coverage_ctx *c = vctx;
    for (int r = begin; r < end; r++) atomic_fetch_add(&c->hits[r], 1);
    c->band_begin[band] = begin;
    c->band_end[band] = end;
    atomic_fetch_add(&c->calls, 1);
}

/* Every row 0..rows-1 covered exactly once, for rows 0..1000, 1..32 workers,
 * bands contiguous and the last one taking the remainder. */
static void test_every_row_once(void **state)
{
    (void)state;
    static coverage_ctx c;
    for (int workers = 1; workers <= 32; workers++) {
        ls_error err;
        ls_pool *pool;
        assert_int_equal(ls_pool_create(workers, &pool, &err), LS_OK);
        assert_non_null(pool);
        assert_int_equal(ls_pool_threads(pool), workers);
        for (int rows = 0; rows <= MAX_ROWS; rows++) {
            memset(&c, 0, sizeof c);
            ls_pool_parallel_for(pool, rows, mark_rows, &c);
            int bands = ls_band_count(rows, workers);
            assert_int_equal(atomic_load(&c.calls), bands);
            for (int r = 0; r < rows; r++) {
                if (atomic_load(&c.hits[r]) != 1)
                    fail_msg("rows=%d workers=%d row %d hit %d times", rows, workers, r,
                             atomic_load(&c.hits[r]));
            }
            assert_int_equal(atomic_load(&c.hits[rows]), 0);
            int per = bands ? rows / bands : 0;
            for (int b = 0; b < bands; b++) {
                assert_int_equal(c.band_begin[b], b * per);
                assert_int_equal(c.band_end[b], b == bands - 1 ? rows : (b + 1) * per);
            }
        }
        ls_pool_destroy(pool);
    }
}

static void test_partition_is_pure(void **state)
{
    (void)state;
    int b, e;
    ls_band_range(10, 3, 0, &b, &e);
    assert_int_equal(b, 0);
    assert_int_equal(e, 3);
    ls_band_range(10, 3, 2, &b, &e);
    assert_int_equal(b, 6);
    assert_int_equal(e, 10);
    assert_int_equal(ls_band_count(5, 8), 5);
    assert_int_equal(ls_band_count(0, 8), 0);
    assert_int_equal(ls_band_count(100, 0), 1);
}

typedef struct {
    ls_pool *pool;
    long *out;
    int rows;
} sum_ctx;

static void square_rows(void *vctx, int begin, int end, int band)
{
    (void)band;
    sum_ctx *c = vctx;
    for (int r = begin; r < end; r++) c->out[r] = (long)r * r;
}

static void *caller_main(void *arg)
{
    sum_ctx *c = arg;
    for (int rep = 0; rep < 200; rep++) ls_pool_parallel_for(c->pool, c->rows, square_rows, c);
    return NULL;
}

/* Several threads share one pool, as sessions do. */
static void test_concurrent_callers(void **state)
{
    (void)state;
    ls_pool *pool;
    assert_int_equal(ls_pool_create(3, &pool, NULL), LS_OK);
    assert_non_null(pool);
    enum { N = 4, ROWS = 517 };
    pthread_t t[N];
    sum_ctx c[N];
    for (int i = 0; i < N; i++) {
        c[i].pool = pool;
        c[i].rows = ROWS;
        c[i].out = calloc(ROWS, sizeof(long));
        assert_int_equal(pthread_create(&t[i], NULL, caller_main, &c[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        for (int r = 0; r < ROWS; r++) assert_int_equal(c[i].out[r], (long)r * r);
        free(c[i].out);
    }
    ls_pool_destroy(pool);
}

typedef struct {
    ls_pool *pool;
    atomic_int total;
} nest_ctx;

static void inner_rows(void *vctx, int begin, int end, int band)
{
    (void)band;
    nest_ctx *c = vctx;
    atomic_fetch_add(&c->total, end - begin);
}

static void outer_rows(void *vctx, int begin, int end, int band)
{
    (void)band;
    nest_ctx *c = vctx;
    for (int r = begin; r < end; r++) ls_pool_parallel_for(c->pool, 100, inner_rows, c);
}

/* A band that itself runs a loop on the same pool must not deadlock. */
static void test_nested_loops(void **state)
{
    (void)state;
    nest_ctx c = {0};
    assert_int_equal(ls_pool_create(4, &c.pool, NULL), LS_OK);
    assert_non_null(c.pool);
    ls_pool_parallel_for(c.pool, 37, outer_rows, &c);
    assert_int_equal(atomic_load(&c.total), 37 * 100);
    ls_pool_destroy(c.pool);
}

/* Two loops in flight at once, waited in the other order. */
static void test_async_jobs(void **state)
{
    (void)state;
    ls_pool *pool;
    assert_int_equal(ls_pool_create(2, &pool, NULL), LS_OK);
    static coverage_ctx a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    ls_pool_job ja, jb;
    ls_pool_start(pool, &ja, 300, 7, mark_rows, &a);
    ls_pool_start(pool, &jb, 200, 3, mark_rows, &b);
    ls_pool_wait(pool, &jb);
    ls_pool_wait(pool, &ja);
    for (int r = 0; r < 300; r++) assert_int_equal(atomic_load(&a.hits[r]), 1);
    for (int r = 0; r < 200; r++) assert_int_equal(atomic_load(&b.hits[r]), 1);
    assert_int_equal(atomic_load(&a.calls), 7);
    assert_int_equal(atomic_load(&b.calls), 3);
    ls_pool_destroy(pool);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    ls_error err;
    ls_pool *bad = (ls_pool *)&err; /* create must overwrite it */
    assert_int_equal(ls_pool_create(0, &bad, &err), LS_ERR_RANGE);
    assert_null(bad);
    assert_int_equal(err.code, LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "thread count"));
    bad = (ls_pool *)&err;
    assert_int_equal(ls_pool_create(-3, &bad, NULL), LS_ERR_RANGE);
    assert_null(bad);
    /* A NULL pool runs on the caller. */
    static coverage_ctx c;
    memset(&c, 0, sizeof c);
    ls_pool_parallel_for(NULL, 10, mark_rows, &c);
    for (int r = 0; r < 10; r++) assert_int_equal(atomic_load(&c.hits[r]), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_is_pure),
        cmocka_unit_test(test_every_row_once),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_nested_loops),
        cmocka_unit_test(test_async_jobs),
        cmocka_unit_test(test_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
