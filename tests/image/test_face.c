/* Face crop, model input and compositing against the reference inference (python3-opencv). */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/face.h"
#include "image/ref_util.h"

/* Every thread count 1..16; sanitizer builds (10-50x slower) sample 1, 2, 3, 5, 8, 16. */
#ifdef LS_TEST_SANITIZED
#define NEXT_THREADS(t) ((t) < 3 ? (t) + 1 : (t) == 3 ? 5 : (t) == 5 ? 8 : (t) == 8 ? 16 : 17)
#else
#define NEXT_THREADS(t) ((t) + 1)
#endif

static const char *const cases[] = {"r182", "r183x181"};

typedef struct face_ref {
    ls_image frame, crop, composite;
    ls_rect rect;
    ls_npy input, out;
} face_ref;

static face_ref load_case(const char *name)
{
    face_ref r;
    char buf[128];
    snprintf(buf, sizeof buf, "face_%s_frame", name);
    r.frame = ref_load_image(buf);
    snprintf(buf, sizeof buf, "face_%s_crop", name);
    r.crop = ref_load_image(buf);
    snprintf(buf, sizeof buf, "face_%s_composite", name);
    r.composite = ref_load_image(buf);
    snprintf(buf, sizeof buf, "face_%s_rect", name);
    ls_npy rect = ref_load(buf);
    r.rect = (ls_rect){(int)rect.data[0], (int)rect.data[1], (int)rect.data[2],
                       (int)rect.data[3]};
    ls_npy_free(&rect);
    snprintf(buf, sizeof buf, "face_%s_input", name);
    r.input = ref_load(buf);
    snprintf(buf, sizeof buf, "face_%s_out", name);
    r.out = ref_load(buf);
    assert_int_equal(r.input.count, LS_INPUT_FLOATS);
    assert_int_equal(r.out.count, LS_OUTPUT_FLOATS);
    return r;
}

/* The references are large: loaded once for all tests (which only read them). */
static face_ref loaded[2];

static void free_case(face_ref *r);

static int load_all(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) loaded[i] = load_case(cases[i]);
    return 0;
}

static int free_all(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) free_case(&loaded[i]);
    return 0;
}

/* The loaded reference of a case, by name. */
static face_ref get_case(const char *name)
{
    return loaded[strcmp(name, cases[0]) ? 1 : 0];
}

static void free_case(face_ref *r)
{
    ls_image_free(&r->frame);
    ls_image_free(&r->crop);
    ls_image_free(&r->composite);
    ls_npy_free(&r->input);
    ls_npy_free(&r->out);
}

static void test_crop_matches_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        face_ref r = get_case(cases[i]);
        ls_image crop;
        assert_int_equal(ls_image_alloc(&crop, LS_CROP_SIDE, LS_CROP_SIDE, 3, NULL), LS_OK);
        ls_resizer *rz;
        assert_int_equal(ls_resizer_create(&rz, NULL), LS_OK);
        ls_error err;
        assert_int_equal(ls_face_crop(rz, NULL, &r.frame, r.rect, &crop, &err), LS_OK);
        int mx;
        size_t n = image_diff(&crop, &r.crop, &mx);
        printf("face crop %s: %zu of %d values differ from OpenCV (max %d)\n", cases[i], n,
               LS_CROP_SIDE * LS_CROP_SIDE * 3, mx);
        assert_true(mx <= 1);
        ls_resizer_destroy(rz);
        ls_image_free(&crop);
    }
}

/* The tensor equals the reference bit for bit, and the mask is exactly the rectangle. */
static void test_input_exact(void **state)
{
    (void)state;
    float *slot = malloc(LS_INPUT_FLOATS * sizeof(float));
    for (size_t i = 0; i < 2; i++) {
        face_ref r = get_case(cases[i]);
        ls_error err;
        assert_int_equal(ls_face_input(NULL, &r.crop, slot, &err), LS_OK);
        assert_memory_equal(slot, r.input.data, LS_INPUT_FLOATS * sizeof(float));
        const size_t plane = (size_t)LS_FACE_SIDE * LS_FACE_SIDE;
        size_t zeros = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < LS_FACE_SIDE; y++)
                for (int x = 0; x < LS_FACE_SIDE; x++) {
                    size_t at = (size_t)y * LS_FACE_SIDE + x;
                    float real = slot[c * plane + at], masked = slot[(c + 3) * plane + at];
                    int inside = y >= 5 && y <= 309 && x >= 5 && x <= 314;
                    if (inside) {
                        assert_true(masked == 0.f);
                        zeros++;
                    } else {
                        assert_true(masked == real);
                    }
                    uint8_t px = ls_image_row(&r.crop, y + 4)[(x + 4) * 3 + c];
                    assert_true(real == (float)px / 255.f);
                }
        assert_int_equal(zeros, (size_t)3 * 305 * 310);
    }
    free(slot);
}

static void test_composite_exact(void **state)
{
    (void)state;
    ls_compositor *c;
    assert_int_equal(ls_compositor_create(&c, NULL), LS_OK);
    assert_non_null(c);
    for (size_t i = 0; i < 2; i++) {
        face_ref r = get_case(cases[i]);
        ls_image dst;
        assert_int_equal(ls_image_alloc(&dst, r.frame.width, r.frame.height, 3, NULL), LS_OK);
        ls_error err;
        assert_int_equal(
            ls_composite(c, NULL, &r.frame, &r.crop, r.rect, r.out.data, 0, &dst, &err),
            LS_OK);
        int mx;
        size_t n = image_diff(&dst, &r.composite, &mx);
        printf("composite %s: %zu values differ from the reference (max %d)\n", cases[i], n,
               mx);
        assert_int_equal(n, 0);
        ls_image_free(&dst);
    }
    ls_compositor_destroy(c);
}

/* Model input and composite give the same bytes on 1..16 threads. */
static void test_thread_invariance(void **state)
{
    (void)state;
    face_ref r = get_case("r183x181");
    float *slot = malloc(LS_INPUT_FLOATS * sizeof(float));
    ls_image dst;
    assert_int_equal(ls_image_alloc(&dst, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    ls_image soft_ref;
    assert_int_equal(ls_image_alloc(&soft_ref, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    ls_compositor *c;
    assert_int_equal(ls_compositor_create(&c, NULL), LS_OK);
    for (int t = 1; t <= 16; t = NEXT_THREADS(t)) {
        ls_pool *pool;
        assert_int_equal(ls_pool_create(t, &pool, NULL), LS_OK);
        memset(slot, 0xFF, LS_INPUT_FLOATS * sizeof(float));
        assert_int_equal(ls_face_input(pool, &r.crop, slot, NULL), LS_OK);
        assert_memory_equal(slot, r.input.data, LS_INPUT_FLOATS * sizeof(float));
        for (int feather = 0; feather <= 6; feather += 6) {
            memset(dst.data, 0, (size_t)dst.width * dst.height * 3);
            assert_int_equal(ls_composite(c, pool, &r.frame, &r.crop, r.rect, r.out.data,
                                          feather, &dst, NULL),
                             LS_OK);
            if (feather == 0 && image_diff(&dst, &r.composite, NULL) != 0)
                fail_msg("composite differs with %d threads", t);
            if (feather && t == 1) ls_image_copy(&dst, &soft_ref);
            if (feather && image_diff(&dst, &soft_ref, NULL) != 0)
                fail_msg("feathered composite differs with %d threads", t);
        }
        ls_pool_destroy(pool);
    }
    ls_compositor_destroy(c);
    ls_image_free(&dst);
    ls_image_free(&soft_ref);
    free(slot);
}

/* Feather N: outside the rectangle and deeper than N inside, identical to the plain paste;
 * at the edge, the documented (d + 1) / (N + 1) blend with the original frame. */
static void test_feather(void **state)
{
    (void)state;
    face_ref r = get_case("r182");
    const int n = 8;
    ls_image plain, soft;
    assert_int_equal(ls_image_alloc(&plain, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    assert_int_equal(ls_image_alloc(&soft, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    ls_compositor *c;
    assert_int_equal(ls_compositor_create(&c, NULL), LS_OK);
    assert_int_equal(ls_composite(c, NULL, &r.frame, &r.crop, r.rect, r.out.data, 0, &plain,
                                  NULL),
                     LS_OK);
    assert_int_equal(ls_composite(c, NULL, &r.frame, &r.crop, r.rect, r.out.data, n, &soft,
                                  NULL),
                     LS_OK);
    size_t blended = 0;
    for (int y = 0; y < r.frame.height; y++)
        for (int x = 0; x < r.frame.width; x++) {
            const uint8_t *p = ls_image_row(&plain, y) + x * 3;
            const uint8_t *s = ls_image_row(&soft, y) + x * 3;
            const uint8_t *o = ls_image_row(&r.frame, y) + x * 3;
            int inside = x >= r.rect.x1 && x < r.rect.x2 && y >= r.rect.y1 && y < r.rect.y2;
            int d = 1 << 30;
            if (inside) {
                int ds[4] = {x - r.rect.x1, r.rect.x2 - 1 - x, y - r.rect.y1,
                             r.rect.y2 - 1 - y};
                for (int k = 0; k < 4; k++)
                    if (ds[k] < d) d = ds[k];
            }
            for (int ch = 0; ch < 3; ch++) {
                if (!inside) {
                    assert_int_equal(s[ch], o[ch]);
                } else if (d >= n) {
                    assert_int_equal(s[ch], p[ch]);
                } else {
                    int a = d + 1, want = (p[ch] * a + o[ch] * (n + 1 - a) + (n + 1) / 2) / (n + 1);
                    assert_int_equal(s[ch], want);
                    blended += s[ch] != p[ch];
                }
            }
        }
    assert_true(blended > 0);
    ls_compositor_destroy(c);
    ls_image_free(&plain);
    ls_image_free(&soft);
}

/* The one-pass composite + JPEG gives the bytes of encoding the full composite, plain and
 * feathered, and leaves the frame untouched. */
static void test_composite_jpeg(void **state)
{
    (void)state;
    face_ref r = get_case("r183x181");
    ls_compositor *c;
    assert_int_equal(ls_compositor_create(&c, NULL), LS_OK);
    ls_jpeg_encoder *enc;
    assert_int_equal(ls_jpeg_encoder_create(&enc, NULL), LS_OK);
    ls_pool *pool;
    assert_int_equal(ls_pool_create(3, &pool, NULL), LS_OK);
    size_t cap = ls_jpeg_bound(r.frame.width, r.frame.height), la, lb;
    uint8_t *a = malloc(cap), *b = malloc(cap);
    ls_image dst, before;
    assert_int_equal(ls_image_alloc(&dst, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    assert_int_equal(ls_image_alloc(&before, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    ls_image_copy(&r.frame, &before);
    ls_error err;
    for (int feather = 0; feather <= 5; feather += 5) {
        assert_int_equal(ls_composite(c, pool, &r.frame, &r.crop, r.rect, r.out.data, feather,
                                      &dst, &err),
                         LS_OK);
        assert_int_equal(ls_jpeg_encode(enc, &dst, 85, a, cap, &la, &err), LS_OK);
        assert_int_equal(ls_composite_jpeg(c, enc, pool, &r.frame, &r.crop, r.rect, r.out.data,
                                           feather, 85, b, cap, &lb, &err),
                         LS_OK);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
    }
    assert_int_equal(image_diff(&r.frame, &before, NULL), 0);
    ls_rect outside = {600, 300, 700, 400};
    assert_int_equal(ls_composite_jpeg(c, enc, pool, &r.frame, &r.crop, outside, r.out.data, 0,
                                       85, b, cap, &lb, &err),
                     LS_ERR_RANGE);
    ls_image_free(&dst);
    ls_image_free(&before);
    free(a);
    free(b);
    ls_pool_destroy(pool);
    ls_jpeg_encoder_destroy(enc);
    ls_compositor_destroy(c);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    face_ref r = get_case("r182");
    ls_compositor *c;
    assert_int_equal(ls_compositor_create(&c, NULL), LS_OK);
    ls_image dst;
    assert_int_equal(ls_image_alloc(&dst, r.frame.width, r.frame.height, 3, NULL), LS_OK);
    ls_error err;
    ls_rect outside = {600, 300, 700, 400}, empty = {10, 10, 10, 50};
    assert_int_equal(ls_composite(c, NULL, &r.frame, &r.crop, outside, r.out.data, 0, &dst, &err),
                     LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(ls_composite(c, NULL, &r.frame, &r.crop, empty, r.out.data, 0, &dst, &err),
                     LS_ERR_RANGE);
    assert_int_equal(ls_composite(c, NULL, &r.frame, &r.crop, r.rect, r.out.data, -1, &dst, &err),
                     LS_ERR_RANGE);
    ls_image small = ls_image_sub(&r.frame, (ls_rect){0, 0, 100, 100});
    assert_int_equal(ls_composite(c, NULL, &r.frame, &small, r.rect, r.out.data, 0, &dst, &err),
                     LS_ERR_INVALID_ARG);
    assert_int_equal(ls_composite(c, NULL, &r.frame, &r.crop, r.rect, r.out.data, 0, &small, &err),
                     LS_ERR_INVALID_ARG);
    assert_int_equal(ls_face_input(NULL, &small, r.input.data, &err), LS_ERR_INVALID_ARG);
    ls_resizer *rz;
    assert_int_equal(ls_resizer_create(&rz, NULL), LS_OK);
    assert_int_equal(ls_face_crop(rz, NULL, &r.frame, outside, &r.crop, &err), LS_ERR_RANGE);
    ls_resizer_destroy(rz);
    ls_compositor_destroy(c);
    ls_image_free(&dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crop_matches_reference),
        cmocka_unit_test(test_input_exact),
        cmocka_unit_test(test_composite_exact),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_feather),
        cmocka_unit_test(test_composite_jpeg),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, load_all, free_all);
}
