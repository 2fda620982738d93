#include "image/face.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The masked copy zeroes these rows and columns of the 320 window (inclusive), as the
 * reference's cv2.rectangle((5, 5, 310, 305), filled) does. */
#define MASK_Y0 5
#define MASK_Y1 309
#define MASK_X0 5
#define MASK_X1 314

static int check_crop(const ls_image *crop328, ls_error *err)
{
    if (!crop328 || !crop328->data || crop328->width != LS_CROP_SIDE ||
        crop328->height != LS_CROP_SIDE || crop328->channels != 3)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "face crop must be %dx%dx3",
                            LS_CROP_SIDE, LS_CROP_SIDE);
    return LS_OK;
}

int ls_face_crop(ls_resizer *rz, ls_pool *pool, const ls_image *frame, ls_rect rect,
                 ls_image *crop328, ls_error *err)
{
    int rc = check_crop(crop328, err);
    if (rc != LS_OK) return rc;
    if (!frame || !frame->data || frame->channels != 3)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "face crop: missing 3-channel frame");
    if (!ls_rect_valid(rect, frame->width, frame->height))
        return ls_error_set(err, LS_ERR_RANGE,
                            "crop rectangle (%d,%d)-(%d,%d) empty or outside the %dx%d frame",
                            rect.x1, rect.y1, rect.x2, rect.y2, frame->width, frame->height);
    ls_image sub = ls_image_sub(frame, rect);
    return ls_resize_cubic(rz, pool, &sub, crop328, err);
}

typedef struct input_job {
    const ls_image *crop;
    float *slot;
    float scale[256]; /* v / 255 in float, computed as the reference divides */
} input_job;

static void input_band(void *ctx, int begin, int end, int band)
{
    (void)band;
    const input_job *j = ctx;
    const size_t plane = (size_t)LS_FACE_SIDE * LS_FACE_SIDE;
    for (int y = begin; y < end; y++) {
        const uint8_t *p = ls_image_row(j->crop, y + LS_FACE_BORDER) + LS_FACE_BORDER * 3;
        float *real[3], *masked[3];
        for (int c = 0; c < 3; c++) {
            real[c] = j->slot + c * plane + (size_t)y * LS_FACE_SIDE;
            masked[c] = j->slot + (c + 3) * plane + (size_t)y * LS_FACE_SIDE;
        }
        for (int x = 0; x < LS_FACE_SIDE; x++, p += 3) {
            real[0][x] = j->scale[p[0]];
            real[1][x] = j->scale[p[1]];
            real[2][x] = j->scale[p[2]];
        }
        int row_masked = y >= MASK_Y0 && y <= MASK_Y1;
        for (int c = 0; c < 3; c++) {
            if (row_masked) {
                memcpy(masked[c], real[c], MASK_X0 * sizeof(float));
                memset(masked[c] + MASK_X0, 0, (MASK_X1 - MASK_X0 + 1) * sizeof(float));
                memcpy(masked[c] + MASK_X1 + 1, real[c] + MASK_X1 + 1,
                       (LS_FACE_SIDE - MASK_X1 - 1) * sizeof(float));
            } else {
                memcpy(masked[c], real[c], LS_FACE_SIDE * sizeof(float));
            }
        }
    }
}

int ls_face_input(ls_pool *pool, const ls_image *crop328, float *slot, ls_error *err)
{
    int rc = check_crop(crop328, err);
    if (rc != LS_OK) return rc;
    if (!slot) return ls_error_set(err, LS_ERR_INVALID_ARG, "face input: no tensor slot");
    input_job job = {crop328, slot, {0}};
    for (int v = 0; v < 256; v++) job.scale[v] = (float)v / 255.0f;
    ls_pool_parallel_for(pool, LS_FACE_SIDE, input_band, &job);
    return LS_OK;
}

struct ls_compositor {
    ls_resizer *rz;
    ls_image work;  /* crop328 with the model output pasted in */
    ls_image patch; /* the resized face before feathering */
    ls_image strip; /* the frame rows the rectangle spans, for ls_composite_jpeg */
};

int ls_compositor_create(ls_compositor **out, ls_error *err)
{
    *out = NULL;
    ls_compositor *c = calloc(1, sizeof *c);
    if (!c) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a compositor");
    int rc = ls_resizer_create(&c->rz, err);
    if (rc == LS_OK) rc = ls_image_alloc(&c->work, LS_CROP_SIDE, LS_CROP_SIDE, 3, err);
    if (rc != LS_OK) {
        ls_compositor_destroy(c);
        return rc;
    }
    *out = c;
    return LS_OK;
}

void ls_compositor_destroy(ls_compositor *c)
{
    if (!c) return;
    ls_resizer_destroy(c->rz);
    ls_image_free(&c->work);
    ls_image_free(&c->patch);
    ls_image_free(&c->strip);
    free(c);
}

typedef struct paste_job {
    const ls_image *crop;
    ls_image *work;
    const float *out;
    const ls_image *frame;
    ls_image *dst;
} paste_job;

static inline uint8_t to_u8(float v)
{
    /* clamp(v, 0, 1) * 255, truncated; NaN counts as 0. */
    if (!(v > 0.f)) return 0;
    if (v > 1.f) v = 1.f;
    return (uint8_t)(v * 255.f);
}

/* One row of one output channel to uint8, LS_FACE_SIDE values. */
static void row_to_u8(const float *o, uint8_t *u)
{
    int x = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.f), k255 = _mm_set1_ps(255.f);
    for (; x + 16 <= LS_FACE_SIDE; x += 16) {
        __m128i q[4];
        for (int h = 0; h < 4; h++) {
            /* max(v, 0) yields 0 for NaN (the second operand wins), as to_u8 does. */
            __m128 v = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(o + x + 4 * h), zero), one);
            q[h] = _mm_cvttps_epi32(_mm_mul_ps(v, k255));
        }
        __m128i w = _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3]));
        _mm_storeu_si128((__m128i *)(u + x), w);
    }
#endif
    for (; x < LS_FACE_SIDE; x++) u[x] = to_u8(o[x]);
}

/* Rows of the 328 work crop: the original crop with the model output in [4:324]. */
static void paste_band(void *ctx, int begin, int end, int band)
{
    (void)band;
    const paste_job *j = ctx;
    const size_t plane = (size_t)LS_FACE_SIDE * LS_FACE_SIDE;
    uint8_t u[3][LS_FACE_SIDE];
    for (int y = begin; y < end; y++) {
        uint8_t *w = ls_image_row(j->work, y);
        int fy = y - LS_FACE_BORDER;
        if (fy < 0 || fy >= LS_FACE_SIDE) {
            memcpy(w, ls_image_row(j->crop, y), LS_CROP_SIDE * 3);
            continue;
        }
        const uint8_t *src = ls_image_row(j->crop, y);
        memcpy(w, src, LS_FACE_BORDER * 3);
        memcpy(w + (LS_CROP_SIDE - LS_FACE_BORDER) * 3, src + (LS_CROP_SIDE - LS_FACE_BORDER) * 3,
               LS_FACE_BORDER * 3);
        for (int c = 0; c < 3; c++) row_to_u8(j->out + c * plane + (size_t)fy * LS_FACE_SIDE, u[c]);
        uint8_t *p = w + LS_FACE_BORDER * 3;
        for (int x = 0; x < LS_FACE_SIDE; x++, p += 3) {
            p[0] = u[0][x];
            p[1] = u[1][x];
            p[2] = u[2][x];
        }
    }
}

static void copy_band(void *ctx, int begin, int end, int band)
{
    (void)band;
    const paste_job *j = ctx;
    size_t row = (size_t)j->frame->width * 3;
    for (int y = begin; y < end; y++)
        memcpy(ls_image_row(j->dst, y), ls_image_row(j->frame, y), row);
}

typedef struct feather_job {
    const ls_image *patch;
    ls_image *area; /* the rectangle inside dst, holding the original frame */
    int n;
} feather_job;

/* Blends the patch over the original: weight (d + 1) / (n + 1) at distance d < n from the
 * rectangle's edge, 1 inside. Integer arithmetic keeps it exact and thread-independent. */
static void feather_band(void *ctx, int begin, int end, int band)
{
    (void)band;
    const feather_job *j = ctx;
    int w = j->patch->width, h = j->patch->height, n1 = j->n + 1;
    for (int y = begin; y < end; y++) {
        const uint8_t *p = ls_image_row(j->patch, y);
        uint8_t *o = ls_image_row(j->area, y);
        int dy = y < h - 1 - y ? y : h - 1 - y;
        for (int x = 0; x < w; x++, p += 3, o += 3) {
            int dx = x < w - 1 - x ? x : w - 1 - x;
            int d = dx < dy ? dx : dy;
            if (d >= j->n) {
                o[0] = p[0];
                o[1] = p[1];
                o[2] = p[2];
                continue;
            }
            int a = d + 1;
            for (int c = 0; c < 3; c++)
                o[c] = (uint8_t)((p[c] * a + o[c] * (n1 - a) + n1 / 2) / n1);
        }
    }
}

int ls_composite_area(ls_compositor *c, ls_pool *pool, const ls_image *crop328,
                      const float *out, int feather, ls_image *area, ls_error *err)
{
    int rc = check_crop(crop328, err);
    if (rc != LS_OK) return rc;
    if (!c || !out || !area || !area->data || area->channels != 3)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "composite: missing argument");
    if (feather < 0 || feather > LS_IMAGE_MAX_SIDE)
        return ls_error_set(err, LS_ERR_RANGE, "composite: feather %d", feather);
    paste_job job = {crop328, &c->work, out, NULL, NULL};
    ls_pool_parallel_for(pool, LS_CROP_SIDE, paste_band, &job);
    if (feather == 0) return ls_resize_cubic(c->rz, pool, &c->work, area, err);

    int w = area->width, h = area->height;
    if (c->patch.width * c->patch.height < w * h) {
        ls_image_free(&c->patch);
        rc = ls_image_alloc(&c->patch, w, h, 3, err);
        if (rc != LS_OK) return rc;
    }
    ls_image patch = ls_image_view(c->patch.data, w, h, 3);
    rc = ls_resize_cubic(c->rz, pool, &c->work, &patch, err);
    if (rc != LS_OK) return rc;
    feather_job fj = {&patch, area, feather};
    ls_pool_parallel_for(pool, h, feather_band, &fj);
    return LS_OK;
}

int ls_composite(ls_compositor *c, ls_pool *pool, const ls_image *frame,
                 const ls_image *crop328, ls_rect rect, const float *out, int feather,
                 ls_image *dst, ls_error *err)
{
    if (!frame || !frame->data || !dst || !dst->data)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "composite: missing argument");
    if (frame->channels != 3 || dst->channels != 3 || dst->width != frame->width ||
        dst->height != frame->height)
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "composite: destination %dx%dx%d does not match frame %dx%dx%d",
                            dst->width, dst->height, dst->channels, frame->width,
                            frame->height, frame->channels);
    if (!ls_rect_valid(rect, frame->width, frame->height))
        return ls_error_set(err, LS_ERR_RANGE,
                            "composite rectangle (%d,%d)-(%d,%d) empty or outside %dx%d",
                            rect.x1, rect.y1, rect.x2, rect.y2, frame->width, frame->height);
    paste_job job = {NULL, NULL, NULL, frame, dst};
    ls_pool_parallel_for(pool, frame->height, copy_band, &job);
    ls_image area = ls_image_sub(dst, rect);
    return ls_composite_area(c, pool, crop328, out, feather, &area, err);
}

/* Rows of the painted frame: the strip inside [y1, y2), the original frame elsewhere. */
typedef struct painted_rows {
    const ls_image *frame, *strip;
    int y1, y2;
} painted_rows;

static const uint8_t *painted_row(const void *ctx, int y)
{
    const painted_rows *r = ctx;
    return y >= r->y1 && y < r->y2 ? ls_image_row(r->strip, y - r->y1)
                                   : ls_image_row(r->frame, y);
}

int ls_composite_jpeg(ls_compositor *c, ls_jpeg_encoder *enc, ls_pool *pool,
                      const ls_image *frame, const ls_image *crop328, ls_rect rect,
                      const float *out, int feather, int quality, uint8_t *jpeg, size_t cap,
                      size_t *len, ls_error *err)
{
    *len = 0;
    if (!c || !frame || !frame->data || frame->channels != 3)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "composite: missing 3-channel frame");
    if (!ls_rect_valid(rect, frame->width, frame->height))
        return ls_error_set(err, LS_ERR_RANGE,
                            "composite rectangle (%d,%d)-(%d,%d) empty or outside %dx%d",
                            rect.x1, rect.y1, rect.x2, rect.y2, frame->width, frame->height);
    int h = rect.y2 - rect.y1;
    if ((size_t)c->strip.width * c->strip.height < (size_t)frame->width * h) {
        ls_image_free(&c->strip);
        int rc = ls_image_alloc(&c->strip, frame->width, h, 3, err);
        if (rc != LS_OK) return rc;
    }
    ls_image strip = ls_image_view(c->strip.data, frame->width, h, 3);
    ls_image rows_in_rect = ls_image_sub(frame, (ls_rect){0, rect.y1, frame->width, rect.y2});
    ls_image_copy(&rows_in_rect, &strip);
    ls_image area = ls_image_sub(&strip, (ls_rect){rect.x1, 0, rect.x2, h});
    int rc = ls_composite_area(c, pool, crop328, out, feather, &area, err);
    if (rc != LS_OK) return rc;
    painted_rows rows = {frame, &strip, rect.y1, rect.y2};
    return ls_jpeg_encode_rows(enc, painted_row, &rows, frame->width, frame->height, 3, quality,
                               jpeg, cap, len, err);
}
