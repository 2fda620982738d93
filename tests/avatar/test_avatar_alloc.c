/* After warm-up, the painter's per-frame calls (input, JPEG output into a pooled buffer)
 * allocate nothing, for an avatar loaded in full, on one thread and on a pool. */
#include "support/test_util.h"

#include <stdlib.h>

#include "avatar/avatar.h"
#include "avatar/fixture.h"
#include "avatar/painter.h"
#include "image/face.h"
#include "support/alloc_count.h"

static void test_painter_no_alloc(void **state)
{
    (void)state;
    const char *dir = fixture_dataset("alloc", 5);
    for (int threads = 1; threads <= 3; threads += 2) {
        ls_pool *pool = NULL;
        if (threads > 1) assert_int_equal(ls_pool_create(threads, &pool, NULL), LS_OK);
        ls_avatar *av;
        ls_error err;
        assert_int_equal(ls_avatar_load(dir, NULL, pool, &av, &err), LS_OK);
        ls_painter *p;
        assert_int_equal(ls_painter_create(av, &p, &err), LS_OK);
        ls_buffer_pool *bufs;
        assert_int_equal(
            ls_buffer_pool_create(ls_painter_output_size(av, LS_FRAME_JPEG), 0, &bufs, NULL),
            LS_OK);
        float *slot = malloc(LS_INPUT_FLOATS * sizeof(float));
        float *out = calloc(LS_OUTPUT_FLOATS, sizeof(float));
        ls_paint_options o = {LS_FRAME_JPEG, 85, 0};
        long before = 0;
        for (int k = 0; k < 15; k++) {
            if (k == 5) before = alloc_count(); /* 5 frames of warm-up */
            int f = ls_avatar_pingpong(5, 0, k);
            ls_buffer *b;
            assert_int_equal(ls_painter_input(p, pool, f, slot, &err), LS_OK);
            assert_int_equal(ls_painter_output(p, pool, f, out, &o, bufs, &b, &err), LS_OK);
            assert_true(b->len > 0);
            ls_buffer_put(b);
        }
        long allocs = alloc_count() - before;
        print_message("%d thread(s): %ld allocations over 10 frames after warm-up\n", threads,
                      allocs);
        assert_int_equal(allocs, 0);
        free(slot);
        free(out);
        ls_buffer_pool_destroy(bufs);
        ls_painter_destroy(p);
        ls_avatar_destroy(av);
        ls_pool_destroy(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_painter_no_alloc)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
