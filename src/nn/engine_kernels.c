/* engine_kernels.c - the engine's own kernels (everything oneDNN does not do
 * for us, or does only with its reference code on this CPU).
 *
 * Each kernel walks "rows": runs of W*cb contiguous elements, one per
 * (item, channel block, output row), split statically over the OpenMP team,
 * so a row is always written by one thread and the result does not depend on
 * the thread count. */
#include <math.h>
#include <string.h>

#include "nn/engine_internal.h"

static inline float *row_ptr(const ls_view *v, int64_t n, int64_t cblk, int64_t h)
{
    return v->base + n * v->istride + (cblk * v->h + h) * v->w * v->cb;
}

static inline int64_t cblocks(const ls_view *v) { return (v->c + v->cb - 1) / v->cb; }

void ls_k_copy(const ls_view *src, const ls_view *dst, int64_t c_off, int threads)
{
    if (src->cb == dst->cb && c_off % dst->cb == 0) {
        /* Whole channel blocks are contiguous in both: one memcpy per block. */
        int64_t blocks = cblocks(src), plane = src->h * src->w * src->cb;
        int64_t jobs = src->n * blocks;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t j = 0; j < jobs; j++) {
            int64_t n = j / blocks, b = j % blocks;
            memcpy(dst->base + n * dst->istride + (c_off / dst->cb + b) * plane,
                   src->base + n * src->istride + b * plane, (size_t)plane * sizeof(float));
        }
        return;
    }
    int64_t rows = src->n * src->c * src->h;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t h = r % src->h, c = r / src->h % src->c, n = r / (src->h * src->c);
        const float *s = src->base + n * src->istride + ls_view_index(src, c, h, 0);
        float *d = dst->base + n * dst->istride + ls_view_index(dst, c + c_off, h, 0);
        for (int64_t w = 0; w < src->w; w++) d[w * dst->cb] = s[w * src->cb];
    }
}

/* One output row of a resize: horizontal taps over the blend of two source
 * rows. CB is a compile-time lane count when known (lets it vectorise). */
static inline void resize_row(float *d, const float *s0, const float *s1, float wy,
                              const ls_taps *tw, float border, int cb)
{
    for (int64_t x = 0; x < tw->n; x++, d += cb) {
        int32_t x0 = tw->i0[x];
        if (x0 < 0) {
            for (int l = 0; l < cb; l++) d[l] = border;
            continue;
        }
        const float *a0 = s0 + (int64_t)x0 * cb, *a1 = s0 + (int64_t)tw->i1[x] * cb;
        const float *b0 = s1 + (int64_t)x0 * cb, *b1 = s1 + (int64_t)tw->i1[x] * cb;
        float wx = tw->w1[x];
        for (int l = 0; l < cb; l++) {
            float top = a0[l] + wx * (a1[l] - a0[l]);
            float bot = b0[l] + wx * (b1[l] - b0[l]);
            d[l] = top + wy * (bot - top);
        }
    }
}

void ls_k_resize(const ls_view *src, const ls_view *dst, const ls_taps *th, const ls_taps *tw,
                 float border, int threads)
{
    int64_t blocks = cblocks(dst), rows = dst->n * blocks * dst->h;
    int cb = dst->cb;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = r % dst->h, b = r / dst->h % blocks, n = r / (dst->h * blocks);
        float *d = row_ptr(dst, n, b, y);
        int32_t y0 = th->i0[y];
        if (y0 < 0) {
            for (int64_t i = 0; i < dst->w * cb; i++) d[i] = border;
            continue;
        }
        const float *s0 = row_ptr(src, n, b, y0), *s1 = row_ptr(src, n, b, th->i1[y]);
        if (cb == 8)
            resize_row(d, s0, s1, th->w1[y], tw, border, 8);
        else if (cb == 1)
            resize_row(d, s0, s1, th->w1[y], tw, border, 1);
        else
            resize_row(d, s0, s1, th->w1[y], tw, border, cb);
    }
}

void ls_k_affine(const ls_view *src, const ls_view *dst, const float *scale, const float *shift,
                 int threads)
{
    int64_t blocks = cblocks(src), rows = src->n * blocks * src->h, len = src->w * src->cb;
    int cb = src->cb;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = r % src->h, b = r / src->h % blocks, n = r / (src->h * blocks);
        const float *s = row_ptr(src, n, b, y);
        float *d = row_ptr(dst, n, b, y);
        const float *sc = scale + b * cb, *sh = shift + b * cb;
        for (int64_t i = 0; i < len; i++) d[i] = s[i] * sc[i % cb] + sh[i % cb];
    }
}

void ls_k_unary_op(ls_k_unary op, const ls_view *src, const ls_view *dst, int threads)
{
    int64_t blocks = cblocks(src), rows = src->n * blocks * src->h, len = src->w * src->cb;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = r % src->h, b = r / src->h % blocks, n = r / (src->h * blocks);
        const float *s = row_ptr(src, n, b, y);
        float *d = row_ptr(dst, n, b, y);
        if (op == LS_K_RELU)
            for (int64_t i = 0; i < len; i++) d[i] = s[i] > 0 ? s[i] : 0;
        else
            for (int64_t i = 0; i < len; i++) d[i] = 1.0f / (1.0f + expf(-s[i]));
    }
}

void ls_k_add(const ls_view *a, const ls_view *bv, const ls_view *dst, int threads)
{
    int64_t blocks = cblocks(a), rows = a->n * blocks * a->h, len = a->w * a->cb;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = r % a->h, b = r / a->h % blocks, n = r / (a->h * blocks);
        const float *p = row_ptr(a, n, b, y), *q = row_ptr(bv, n, b, y);
        float *d = row_ptr(dst, n, b, y);
        for (int64_t i = 0; i < len; i++) d[i] = p[i] + q[i];
    }
}

float ls_round_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf and NaN stay as they are */
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

void ls_k_round_bf16(const ls_view *v, int threads)
{
    int64_t blocks = cblocks(v), rows = v->n * blocks * v->h, len = v->w * v->cb;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = r % v->h, b = r / v->h % blocks, n = r / (v->h * blocks);
        float *d = row_ptr(v, n, b, y);
        for (int64_t i = 0; i < len; i++) d[i] = ls_round_bf16(d[i]);
    }
}
