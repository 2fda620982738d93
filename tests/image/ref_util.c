#include "image/ref_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/test_util.h"

const char *ref_path(char *buf, size_t cap, const char *name)
{
    const char *build = getenv("LS_BUILD_DIR");
    snprintf(buf, cap, "%s/image_refs/%s.npy", build ? build : ".", name);
    return buf;
}

ls_npy ref_load(const char *name)
{
    char path[1024];
    ls_npy a;
    ls_error err;
    if (ls_npy_read(ref_path(path, sizeof path, name), &a, &err) != LS_OK)
        fail_msg("reference %s: %s", name, err.msg);
    return a;
}

ls_image ref_load_image(const char *name)
{
    ls_npy a = ref_load(name);
    assert_true(a.ndim == 2 || a.ndim == 3);
    int ch = a.ndim == 3 ? (int)a.shape[2] : 1;
    ls_image im;
    assert_int_equal(ls_image_alloc(&im, (int)a.shape[1], (int)a.shape[0], ch, NULL), LS_OK);
    for (size_t i = 0; i < a.count; i++) im.data[i] = (uint8_t)a.data[i];
    ls_npy_free(&a);
    return im;
}

size_t image_diff(const ls_image *a, const ls_image *b, int *max_diff)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    size_t n = 0;
    int mx = 0;
    for (int y = 0; y < a->height; y++) {
        const uint8_t *p = ls_image_row(a, y), *q = ls_image_row(b, y);
        for (int x = 0; x < a->width * a->channels; x++) {
            int d = abs((int)p[x] - (int)q[x]);
            if (d) n++;
            if (d > mx) mx = d;
        }
    }
    if (max_diff) *max_diff = mx;
    return n;
}

ls_image make_test_image(int width, int height, uint64_t seed)
{
    ls_image im;
    assert_int_equal(ls_image_alloc(&im, width, height, 3, NULL), LS_OK);
    uint64_t s = seed;
    for (int y = 0; y < height; y++) {
        uint8_t *p = ls_image_row(&im, y);
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++) {
                double v = 127 + 100 * sin(x / (5.0 + c) + c) * cos(y / (7.0 + c)) +
                           20 * (test_rand_uniform(&s) - 0.5);
                *p++ = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
    }
    return im;
}
