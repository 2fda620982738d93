#include "avatar/fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/codec.h"
#include "support/test_util.h"

ls_image fixture_frame(int i)
{
    ls_image im;
    assert_int_equal(ls_image_alloc(&im, FIX_W, FIX_H, 3, NULL), LS_OK);
    for (int y = 0; y < FIX_H; y++)
        for (int x = 0; x < FIX_W; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128 + 90 * sin((x + 3 * i) / (6.0 + c)) * cos(y / (5.0 + c)) +
                           10 * ((x * 7 + y * 13 + i) % 5);
                ls_image_row(&im, y)[x * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return im;
}

ls_rect fixture_rect(int i)
{
    int x1 = 20 + i % 4, y1 = 10 + i % 3, side = 41 + i % 2;
    return (ls_rect){x1, y1, x1 + side, y1 + side};
}

void fixture_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

void fixture_write_lms(const char *path, ls_rect r)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int k = 0; k < 110; k++) {
        /* Points 1, 31 and 52 carry the rectangle; the rest are plausible fillers. */
        double x = r.x1 + 5 + k % 17, y = r.y1 + 3 + k % 23;
        if (k == 1) x = r.x1 + 0.75;
        if (k == 31) x = r.x2 + 0.5;
        if (k == 52) y = r.y1 + 0.9;
        fprintf(f, "%.2f %.2f\n", x, y);
    }
    fclose(f);
}

void fixture_write_image(const char *path, int i, int png)
{
    ls_image im = fixture_frame(i);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (png) {
        assert_int_equal(ls_png_encode(&im, &bytes, &len, NULL), LS_OK);
    } else {
        ls_jpeg_encoder *enc;
        assert_int_equal(ls_jpeg_encoder_create(&enc, NULL), LS_OK);
        size_t cap = ls_jpeg_bound(FIX_W, FIX_H);
        bytes = malloc(cap);
        assert_int_equal(ls_jpeg_encode(enc, &im, 95, bytes, cap, &len, NULL), LS_OK);
        ls_jpeg_encoder_destroy(enc);
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(bytes, 1, len, f);
    fclose(f);
    free(bytes);
    ls_image_free(&im);
}

const char *fixture_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), name);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    assert_int_equal(system(cmd), 0);
    return path;
}

const char *fixture_dataset(const char *name, int n)
{
    const char *dir = fixture_dir(name);
    char p[1024];
    snprintf(p, sizeof p, "%s/full_body_img", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/landmarks", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/full_body_img/%d.jpg", dir, i);
        fixture_write_image(p, i, 0);
        snprintf(p, sizeof p, "%s/landmarks/%d.lms", dir, i);
        fixture_write_lms(p, fixture_rect(i));
    }
    return dir;
}

const char *fixture_frames(const char *name, int n, int first)
{
    const char *dir = fixture_dir(name);
    char p[1024];
    snprintf(p, sizeof p, "%s/frames", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    char json[8192] = "[";
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/frames/frame_%04d.png", dir, first + i);
        fixture_write_image(p, i, 1);
        ls_rect r = fixture_rect(i);
        size_t l = strlen(json);
        snprintf(json + l, sizeof json - l, "%s[%d, %d, %d, %d]", i ? ", " : "", r.x1, r.y1,
                 r.x2, r.y2);
    }
    strcat(json, "]\n");
    snprintf(p, sizeof p, "%s/crop_rects.json", dir);
    fixture_write_text(p, json);
    return dir;
}
