/* Cubic resize: against cv2.resize INTER_CUBIC, thread-count invariance, views, bad input. */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/ref_util.h"

/* Every thread count 1..16; sanitizer builds (10-50x slower) sample 1, 2, 3, 5, 8, 16. */
#ifdef LS_TEST_SANITIZED
#define NEXT_THREADS(t) ((t) < 3 ? (t) + 1 : (t) == 3 ? 5 : (t) == 5 ? 8 : (t) == 8 ? 16 : 17)
#else
#define NEXT_THREADS(t) ((t) + 1)
#endif
#include "image/resize.h"

static const char *const cases[] = {"up182",       "up183x181", "down182", "down183x181",
                                    "odd97x301",   "tiny",      "same"};

static void resize_case(const char *name, ls_pool *pool, ls_image *got, ls_image *want)
{
    char buf[128];
    snprintf(buf, sizeof buf, "resize_%s_src", name);
    ls_image src = ref_load_image(buf);
    snprintf(buf, sizeof buf, "resize_%s_dst", name);
    *want = ref_load_image(buf);
    assert_int_equal(ls_image_alloc(got, want->width, want->height, 3, NULL), LS_OK);
    ls_error err;
    ls_resizer *rz;
    assert_int_equal(ls_resizer_create(&rz, &err), LS_OK);
    assert_non_null(rz);
    assert_int_equal(ls_resize_cubic(rz, pool, &src, got, &err), LS_OK);
    ls_resizer_destroy(rz);
    ls_image_free(&src);
}

/* Every value within 1 of OpenCV; the count of differing values is printed. */
static void test_matches_opencv(void **state)
{
    (void)state;
    size_t total = 0, values = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ls_image got, want;
        resize_case(cases[i], NULL, &got, &want);
        int mx;
        size_t n = image_diff(&got, &want, &mx);
        size_t count = (size_t)want.width * want.height * 3;
        printf("resize %-12s %4dx%-4d: %zu of %zu values differ from OpenCV (max %d)\n",
               cases[i], want.width, want.height, n, count, mx);
        assert_true(mx <= 1);
        total += n;
        values += count;
        ls_image_free(&got);
        ls_image_free(&want);
    }
    printf("resize total: %zu of %zu values differ from OpenCV INTER_CUBIC\n", total, values);
}

/* Same bytes for 1..16 threads, one resizer reused across sizes (its scratch regrows). */
static void test_thread_invariance(void **state)
{
    (void)state;
    ls_image ref[2], want;
    resize_case("down183x181", NULL, &ref[0], &want);
    ls_image_free(&want);
    resize_case("up182", NULL, &ref[1], &want);
    ls_image_free(&want);
    ls_image src[2] = {ref_load_image("resize_down183x181_src"),
                       ref_load_image("resize_up182_src")};
    ls_resizer *rz;
    assert_int_equal(ls_resizer_create(&rz, NULL), LS_OK);
    for (int t = 1; t <= 16; t = NEXT_THREADS(t)) {
        ls_pool *pool;
        assert_int_equal(ls_pool_create(t, &pool, NULL), LS_OK);
        assert_non_null(pool);
        for (int k = 0; k < 2; k++) {
            ls_image got;
            assert_int_equal(ls_image_alloc(&got, ref[k].width, ref[k].height, 3, NULL), LS_OK);
            assert_int_equal(ls_resize_cubic(rz, pool, &src[k], &got, NULL), LS_OK);
            if (image_diff(&got, &ref[k], NULL) != 0)
                fail_msg("case %d differs with %d threads", k, t);
            ls_image_free(&got);
        }
        ls_pool_destroy(pool);
    }
    ls_resizer_destroy(rz);
    for (int k = 0; k < 2; k++) {
        ls_image_free(&ref[k]);
        ls_image_free(&src[k]);
    }
}

/* A strided sub-view resizes like the same pixels packed, into a strided destination. */
static void test_strided_views(void **state)
{
    (void)state;
    ls_image big = make_test_image(300, 200, 7);
    ls_rect r = {31, 17, 31 + 97, 17 + 83};
    ls_image sub = ls_image_sub(&big, r), packed;
    assert_int_equal(ls_image_alloc(&packed, sub.width, sub.height, 3, NULL), LS_OK);
    ls_image_copy(&sub, &packed);
    ls_image a, canvas;
    assert_int_equal(ls_image_alloc(&a, 150, 140, 3, NULL), LS_OK);
    assert_int_equal(ls_image_alloc(&canvas, 200, 160, 3, NULL), LS_OK);
    memset(canvas.data, 0xAB, (size_t)200 * 160 * 3);
    ls_image b = ls_image_sub(&canvas, (ls_rect){10, 5, 160, 145});
    ls_resizer *rz;
    assert_int_equal(ls_resizer_create(&rz, NULL), LS_OK);
    assert_int_equal(ls_resize_cubic(rz, NULL, &packed, &a, NULL), LS_OK);
    assert_int_equal(ls_resize_cubic(rz, NULL, &sub, &b, NULL), LS_OK);
    assert_int_equal(image_diff(&a, &b, NULL), 0);
    /* Nothing written outside the destination view. */
    assert_int_equal(canvas.data[0], 0xAB);
    assert_int_equal(ls_image_row(&canvas, 5)[10 * 3 - 1], 0xAB);
    assert_int_equal(ls_image_row(&canvas, 5)[160 * 3], 0xAB);
    assert_int_equal(ls_image_row(&canvas, 145)[10 * 3], 0xAB);
    ls_resizer_destroy(rz);
    ls_image_free(&big);
    ls_image_free(&packed);
    ls_image_free(&a);
    ls_image_free(&canvas);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ls_image a = make_test_image(8, 8, 1), b;
    assert_int_equal(ls_image_alloc(&b, 4, 4, 1, NULL), LS_OK);
    ls_resizer *rz;
    assert_int_equal(ls_resizer_create(&rz, NULL), LS_OK);
    ls_error err;
    assert_int_equal(ls_resize_cubic(rz, NULL, &a, &b, &err), LS_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "channels"));
    ls_image empty = a;
    empty.width = 0;
    b.channels = 3;
    assert_int_equal(ls_resize_cubic(rz, NULL, &empty, &b, &err), LS_ERR_RANGE);
    assert_int_equal(ls_resize_cubic(NULL, NULL, &a, &b, &err), LS_ERR_INVALID_ARG);
    assert_int_equal(ls_image_alloc(&empty, 0, 5, 3, &err), LS_ERR_RANGE);
    assert_int_equal(ls_image_alloc(&empty, 5, LS_IMAGE_MAX_SIDE + 1, 3, &err), LS_ERR_RANGE);
    ls_resizer_destroy(rz);
    ls_image_free(&a);
    ls_image_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_opencv),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_strided_views),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
