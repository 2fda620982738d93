/* The storage planner alone (nn/plan.h): what it promises, on small cases
 * worked out by hand and on seeded random lifetimes. */
#include "support/test_util.h"

#include <string.h>

#include "nn/plan.h"

/* Two buffers share a step and a unit of the arena: the one thing a plan
 * must never do. Also: every offset aligned, every buffer inside the arena. */
static void assert_valid(const ls_plan_buf *b, int n, int64_t align, const int64_t *off,
                         int64_t arena)
{
    for (int i = 0; i < n; i++) {
        if (b[i].first < 0) continue;
        assert_int_equal(off[i] % align, 0);
        assert_true(off[i] >= 0);
        assert_true(off[i] + b[i].size <= arena);
        for (int j = 0; j < i; j++) {
            if (b[j].first < 0 || b[i].size == 0 || b[j].size == 0) continue;
            int live_together = b[i].first <= b[j].last && b[j].first <= b[i].last;
            int share_bytes = off[i] < off[j] + b[j].size && off[j] < off[i] + b[i].size;
            if (live_together && share_bytes)
                fail_msg("buffers %d [%d,%d] at %lld+%lld and %d [%d,%d] at %lld+%lld overlap", i,
                         b[i].first, b[i].last, (long long)off[i], (long long)b[i].size, j,
                         b[j].first, b[j].last, (long long)off[j], (long long)b[j].size);
        }
    }
}

/* A chain a -> b -> c -> d, each step reading one buffer and writing the
 * next: a buffer two steps on reuses the first one's bytes, so the arena is
 * two buffers, not four. */
static void test_chain_reuses(void **state)
{
    (void)state;
    ls_plan_buf b[4] = {{100, 0, 1}, {100, 1, 2}, {100, 2, 3}, {100, 3, 4}};
    int64_t off[4], arena = -1;
    ls_error err = {0};
    assert_int_equal(ls_plan_arena(b, 4, 1, off, &arena, &err), LS_OK);
    assert_valid(b, 4, 1, off, arena);
    assert_int_equal(arena, 200);
    assert_int_equal(off[0], off[2]);
    assert_int_equal(off[1], off[3]);
    assert_true(off[0] != off[1]);
}

/* Largest first, each at the lowest free offset among those live with it:
 * 30 [0,1] at 0, 20 [1,1] after it, 10 [0,0] beside 30 only, so in 20's
 * bytes (20 lives later). 50 < 60, the sum. */
static void test_largest_first_fills_gaps(void **state)
{
    (void)state;
    ls_plan_buf b[3] = {{10, 0, 0}, {30, 0, 1}, {20, 1, 1}};
    int64_t off[3], arena;
    ls_error err = {0};
    assert_int_equal(ls_plan_arena(b, 3, 1, off, &arena, &err), LS_OK);
    assert_valid(b, 3, 1, off, arena);
    assert_int_equal(off[1], 0);
    assert_int_equal(off[2], 30);
    assert_int_equal(off[0], 30);
    assert_int_equal(arena, 50);
}

/* All live at once: nothing may share, each offset is a multiple of the
 * alignment and sizes are rounded up to it (5, 17, 3 in units of 16: 16,
 * 32, 16). */
static void test_alignment(void **state)
{
    (void)state;
    ls_plan_buf b[3] = {{5, 0, 2}, {17, 0, 2}, {3, 1, 1}};
    int64_t off[3], arena;
    ls_error err = {0};
    assert_int_equal(ls_plan_arena(b, 3, 16, off, &arena, &err), LS_OK);
    assert_valid(b, 3, 16, off, arena);
    assert_int_equal(arena, 64);
    assert_int_equal(off[1], 0); /* the largest first */
    /* with alignment 1 the same buffers pack tight */
    assert_int_equal(ls_plan_arena(b, 3, 1, off, &arena, &err), LS_OK);
    assert_valid(b, 3, 1, off, arena);
    assert_int_equal(arena, 25);
}

/* Equal sizes go in index order: the plan depends only on the input. */
static void test_ties_in_index_order(void **state)
{
    (void)state;
    ls_plan_buf b[3] = {{8, 0, 0}, {8, 0, 0}, {8, 0, 0}};
    int64_t off[3], arena;
    ls_error err = {0};
    assert_int_equal(ls_plan_arena(b, 3, 1, off, &arena, &err), LS_OK);
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 8);
    assert_int_equal(off[2], 16);
    assert_int_equal(arena, 24);
}

/* Unused buffers (span -1, -1) take no room; nothing used: an empty arena. */
static void test_unused_and_empty(void **state)
{
    (void)state;
    ls_plan_buf b[3] = {{1000, -1, -1}, {40, 2, 3}, {0, 1, 4}};
    int64_t off[3] = {7, 7, 7}, arena;
    ls_error err = {0};
    assert_int_equal(ls_plan_arena(b, 3, 16, off, &arena, &err), LS_OK);
    assert_valid(b, 3, 16, off, arena);
    assert_int_equal(off[0], 0);
    assert_int_equal(arena, 48);
    ls_plan_buf none[2] = {{10, -1, -1}, {20, -1, -1}};
    assert_int_equal(ls_plan_arena(none, 2, 16, off, &arena, &err), LS_OK);
    assert_int_equal(arena, 0);
    assert_int_equal(ls_plan_arena(NULL, 0, 16, NULL, &arena, &err), LS_OK);
    assert_int_equal(arena, 0);
}

/* Seeded random lifetimes and sizes: always valid, never larger than the
 * sum of the (aligned) buffers, never smaller than what is live at the
 * busiest step, and here much smaller than the sum (short lifetimes). */
static void test_random_lifetimes(void **state)
{
    (void)state;
    enum { N = 300, STEPS = 120 };
    static ls_plan_buf b[N];
    static int64_t off[N];
    uint64_t rng = 0x5eed;
    for (int round = 0; round < 20; round++) {
        int64_t align = (int64_t)1 << (test_rand(&rng) % 7);
        for (int i = 0; i < N; i++) {
            int first = (int)(test_rand(&rng) % STEPS);
            int len = (int)(test_rand(&rng) % 6);
            b[i].first = first;
            b[i].last = first + len < STEPS ? first + len : STEPS - 1;
            b[i].size = (int64_t)(test_rand(&rng) % 5000);
            if (test_rand(&rng) % 10 == 0) b[i].first = b[i].last = -1;
        }
        int64_t arena;
        ls_error err = {0};
        assert_int_equal(ls_plan_arena(b, N, align, off, &arena, &err), LS_OK);
        assert_valid(b, N, align, off, arena);
        int64_t sum = 0, busiest = 0;
        for (int i = 0; i < N; i++)
            if (b[i].first >= 0) sum += (b[i].size + align - 1) / align * align;
        for (int s = 0; s < STEPS; s++) {
            int64_t live = 0;
            for (int i = 0; i < N; i++)
                if (b[i].first >= 0 && b[i].first <= s && s <= b[i].last)
                    live += (b[i].size + align - 1) / align * align;
            if (live > busiest) busiest = live;
        }
        assert_true(arena >= busiest);
        assert_true(arena <= sum);
        assert_true(arena < sum / 4);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    ls_plan_buf ok[1] = {{10, 0, 0}};
    int64_t off[1], arena;
    ls_error err;
#define REFUSED(call, needle)                                                                      \
    do {                                                                                           \
        memset(&err, 0, sizeof err);                                                               \
        assert_int_equal((call), LS_ERR_INVALID_ARG);                                              \
        assert_non_null(strstr(err.msg, needle));                                                  \
    } while (0)
    REFUSED(ls_plan_arena(ok, -1, 16, off, &arena, &err), "count");
    REFUSED(ls_plan_arena(NULL, 1, 16, off, &arena, &err), "NULL");
    REFUSED(ls_plan_arena(ok, 1, 16, NULL, &arena, &err), "NULL");
    REFUSED(ls_plan_arena(ok, 1, 16, off, NULL, &err), "NULL");
    REFUSED(ls_plan_arena(ok, 1, 0, off, &arena, &err), "alignment");
    ls_plan_buf neg[2] = {{10, 0, 0}, {-1, 0, 0}};
    REFUSED(ls_plan_arena(neg, 2, 16, off, &arena, &err), "buffer 1 has size -1");
    ls_plan_buf huge[1] = {{INT64_MAX, 0, 0}};
    REFUSED(ls_plan_arena(huge, 1, 16, off, &arena, &err), "buffer 0 has size");
    ls_plan_buf backwards[1] = {{10, 3, 2}};
    REFUSED(ls_plan_arena(backwards, 1, 16, off, &arena, &err), "buffer 0 has span [3, 2]");
    ls_plan_buf half[1] = {{10, -1, 2}};
    REFUSED(ls_plan_arena(half, 1, 16, off, &arena, &err), "span [-1, 2]");
#undef REFUSED
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_reuses),       cmocka_unit_test(test_largest_first_fills_gaps),
        cmocka_unit_test(test_alignment),          cmocka_unit_test(test_ties_in_index_order),
        cmocka_unit_test(test_unused_and_empty),   cmocka_unit_test(test_random_lifetimes),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
