#include "image/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* OpenCV's fixed-point scale for interpolation coefficients (INTER_RESIZE_COEF_BITS). */
#define COEF_BITS 11
#define COEF_SCALE (1 << COEF_BITS)
/* OpenCV's SIMD vertical pass handles this many values per step (8 int16 lanes of SSE2,
 * Debian's baseline); the rest of a row goes through the fixed-point formula. */
#define VEC_STEP 8

/* Taps of one axis: for output i, the 4 clamped source indices and their weights. */
typedef struct axis_taps {
    int *index;    /* [n * 4] */
    int16_t *coef; /* [n * 4] fixed point, as OpenCV rounds them */
    float *fcoef;  /* [n * 4] coef as float (horizontal) or coef / 2^22 (vertical) */
    int n, cap;
} axis_taps;

/* One band's ring of the 4 most recent horizontally resized source rows. */
typedef struct band_ring {
    float *rows;   /* [4][row_cap]: horizontally resized source rows */
    float *wide;   /* [wide_cap]: the source row being resized, as floats */
    int tag[4];    /* source row held in each slot, -1 for none */
} band_ring;

struct ls_resizer {
    axis_taps xt, yt;
    int sw, sh, dw, dh; /* sizes the taps were computed for (0: none yet) */
    band_ring *rings;
    int n_rings, row_cap, wide_cap; /* rings allocated, floats per ring row / source row */
};

int ls_resizer_create(ls_resizer **out, ls_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a resizer");
    return LS_OK;
}

static void free_taps(axis_taps *t)
{
    free(t->index);
    free(t->coef);
    free(t->fcoef);
}

void ls_resizer_destroy(ls_resizer *rz)
{
    if (!rz) return;
    free_taps(&rz->xt);
    free_taps(&rz->yt);
    for (int i = 0; i < rz->n_rings; i++) {
        free(rz->rings[i].rows);
        free(rz->rings[i].wide);
    }
    free(rz->rings);
    free(rz);
}

static int grow_taps(axis_taps *t, int n)
{
    if (n <= t->cap) return LS_OK;
    int *index = realloc(t->index, (size_t)n * 4 * sizeof *index);
    if (index) t->index = index;
    int16_t *coef = realloc(t->coef, (size_t)n * 4 * sizeof *coef);
    if (coef) t->coef = coef;
    float *fcoef = realloc(t->fcoef, (size_t)n * 4 * sizeof *fcoef);
    if (fcoef) t->fcoef = fcoef;
    if (!index || !coef || !fcoef) return LS_ERR_NOMEM;
    t->cap = n;
    return LS_OK;
}

/* OpenCV's interpolateCubic, in float as it computes it. */
static void cubic_coeffs(float x, float c[4])
{
    const float A = -0.75f;
    c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    c[3] = 1.f - c[0] - c[1] - c[2];
}

/* Fills taps for src_n -> dst_n. fscale multiplies the fixed-point coefficient into fcoef. */
static void compute_taps(axis_taps *t, int src_n, int dst_n, float fscale)
{
    /* OpenCV derives the step from the inverse ratio, in double. */
    double inv_scale = (double)dst_n / src_n;
    double scale = 1. / inv_scale;
    for (int d = 0; d < dst_n; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        float c[4];
        cubic_coeffs(f, c);
        for (int k = 0; k < 4; k++) {
            int i = s - 1 + k;
            t->index[d * 4 + k] = i < 0 ? 0 : (i >= src_n ? src_n - 1 : i);
            /* saturate_cast<short>(float): round half to even, clamp. */
            float r = nearbyintf(c[k] * COEF_SCALE);
            int16_t q = r > 32767.f ? 32767 : (r < -32768.f ? -32768 : (int16_t)r);
            t->coef[d * 4 + k] = q;
            t->fcoef[d * 4 + k] = (float)q * fscale;
        }
    }
    t->n = dst_n;
}

static int prepare(ls_resizer *rz, int sw, int sh, int dw, int dh, int cn, int n_bands,
                   ls_error *err)
{
    if (rz->sw != sw || rz->sh != sh || rz->dw != dw || rz->dh != dh) {
        if (grow_taps(&rz->xt, dw) || grow_taps(&rz->yt, dh)) {
            rz->sw = rz->sh = rz->dw = rz->dh = 0;
            return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate resize taps");
        }
        compute_taps(&rz->xt, sw, dw, 1.f);
        compute_taps(&rz->yt, sh, dh, 1.f / ((float)COEF_SCALE * COEF_SCALE));
        rz->sw = sw;
        rz->sh = sh;
        rz->dw = dw;
        rz->dh = dh;
    }
    /* + 4: the 4-lane stores of the last pixel and the padded loads of the source row. */
    int row_len = dw * cn + 4, wide_len = sw * cn + 4;
    if (n_bands > rz->n_rings || row_len > rz->row_cap || wide_len > rz->wide_cap) {
        int n = n_bands > rz->n_rings ? n_bands : rz->n_rings;
        int len = row_len > rz->row_cap ? row_len : rz->row_cap;
        int wlen = wide_len > rz->wide_cap ? wide_len : rz->wide_cap;
        band_ring *rings = realloc(rz->rings, (size_t)n * sizeof *rings);
        if (!rings) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate resize rows");
        rz->rings = rings;
        for (int i = rz->n_rings; i < n; i++) rings[i].rows = rings[i].wide = NULL;
        rz->n_rings = n;
        rz->row_cap = rz->wide_cap = 0; /* until every ring has the new sizes */
        for (int i = 0; i < n; i++) {
            free(rings[i].rows);
            free(rings[i].wide);
            rings[i].rows = malloc((size_t)len * 4 * sizeof(float));
            rings[i].wide = malloc((size_t)wlen * sizeof(float));
            if (!rings[i].rows || !rings[i].wide)
                return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate resize rows");
        }
        rz->row_cap = len;
        rz->wide_cap = wlen;
    }
    return LS_OK;
}

typedef struct resize_job {
    const ls_resizer *rz;
    const ls_image *src;
    ls_image *dst;
} resize_job;

/* Horizontal pass of one source row. Products and sums are integers below 2^24, so float
 * holds OpenCV's int32 results exactly, in any order of summation. `wide` is scratch of
 * (width * cn + 4) floats: the row converted once, padded so 4-float loads stay inside. */
static void hresize_row(const axis_taps *xt, const uint8_t *s, int sw, int cn, float *wide,
                        float *out)
{
    const int *idx = xt->index;
    const float *a = xt->fcoef;
    int n = sw * cn;
#if defined(__SSE2__)
    if (cn == 3) {
        int i = 0;
        const __m128i zero = _mm_setzero_si128();
        for (; i + 16 <= n; i += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i lo = _mm_unpacklo_epi8(b, zero), hi = _mm_unpackhi_epi8(b, zero);
            _mm_storeu_ps(wide + i, _mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)));
            _mm_storeu_ps(wide + i + 4, _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)));
            _mm_storeu_ps(wide + i + 8, _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)));
            _mm_storeu_ps(wide + i + 12, _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero)));
        }
        for (; i < n; i++) wide[i] = s[i];
        for (int k = 0; k < 4; k++) wide[n + k] = 0.f;
        /* Each pixel as 4 lanes (B, G, R, next B); the 4th lane lands in the next pixel's
         * slot and is overwritten by it, or in the row's padding. */
        for (int d = 0; d < xt->n; d++, idx += 4, a += 4) {
            __m128 v = _mm_mul_ps(_mm_loadu_ps(wide + idx[0] * 3), _mm_set1_ps(a[0]));
            v = _mm_add_ps(v, _mm_mul_ps(_mm_loadu_ps(wide + idx[1] * 3), _mm_set1_ps(a[1])));
            v = _mm_add_ps(v, _mm_mul_ps(_mm_loadu_ps(wide + idx[2] * 3), _mm_set1_ps(a[2])));
            v = _mm_add_ps(v, _mm_mul_ps(_mm_loadu_ps(wide + idx[3] * 3), _mm_set1_ps(a[3])));
            _mm_storeu_ps(out + d * 3, v);
        }
        return;
    }
#endif
    (void)wide;
    (void)n;
    for (int d = 0; d < xt->n; d++, idx += 4, a += 4, out += cn)
        for (int c = 0; c < cn; c++)
            out[c] = s[idx[0] * cn + c] * a[0] + s[idx[1] * cn + c] * a[1] +
                     s[idx[2] * cn + c] * a[2] + s[idx[3] * cn + c] * a[3];
}

static inline uint8_t sat_u8(int v)
{
    return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

/* Vertical pass of one output row, as OpenCV's VResizeCubic: float blocks of VEC_STEP
 * (b = coef / 2^22, innermost term first, round half to even), then fixed point. */
static void vresize_row(const float *const r[4], const float b[4], const int16_t bi[4],
                        int len, uint8_t *out)
{
    int x = 0;
#if defined(__SSE2__)
    __m128 b0 = _mm_set1_ps(b[0]), b1 = _mm_set1_ps(b[1]);
    __m128 b2 = _mm_set1_ps(b[2]), b3 = _mm_set1_ps(b[3]);
    for (; x <= len - VEC_STEP; x += VEC_STEP) {
        __m128i v[2];
        for (int h = 0; h < 2; h++) {
            int o = x + h * 4;
            __m128 t = _mm_mul_ps(_mm_loadu_ps(r[3] + o), b3);
            t = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r[2] + o), b2), t);
            t = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r[1] + o), b1), t);
            t = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(r[0] + o), b0), t);
            v[h] = _mm_cvtps_epi32(t);
        }
        __m128i w = _mm_packs_epi32(v[0], v[1]);
        _mm_storel_epi64((__m128i *)(out + x), _mm_packus_epi16(w, w));
    }
#else
    for (; x <= len - VEC_STEP; x += VEC_STEP)
        for (int i = x; i < x + VEC_STEP; i++) {
            float t = r[3][i] * b[3];
            t = r[2][i] * b[2] + t;
            t = r[1][i] * b[1] + t;
            t = r[0][i] * b[0] + t;
            long q = lrintf(t);
            out[i] = sat_u8(q < -32768 ? -32768 : (q > 32767 ? 32767 : (int)q));
        }
#endif
    for (; x < len; x++) {
        int sum = (int)r[0][x] * bi[0] + (int)r[1][x] * bi[1] + (int)r[2][x] * bi[2] +
                  (int)r[3][x] * bi[3];
        out[x] = sat_u8((sum + (1 << (2 * COEF_BITS - 1))) >> (2 * COEF_BITS));
    }
}

static void resize_band(void *ctx, int begin, int end, int band)
{
    const resize_job *job = ctx;
    const ls_resizer *rz = job->rz;
    const ls_image *src = job->src;
    int cn = src->channels, len = rz->dw * cn;
    band_ring *ring = &rz->rings[band];
    for (int k = 0; k < 4; k++) ring->tag[k] = -1;
    for (int dy = begin; dy < end; dy++) {
        const int *yi = &rz->yt.index[dy * 4];
        const float *r[4];
        for (int k = 0; k < 4; k++) {
            /* The 4 rows are consecutive before clamping, so row & 3 never collides. */
            int slot = yi[k] & 3;
            float *row = ring->rows + (size_t)slot * rz->row_cap;
            if (ring->tag[slot] != yi[k]) {
                hresize_row(&rz->xt, ls_image_row(src, yi[k]), src->width, cn, ring->wide,
                            row);
                ring->tag[slot] = yi[k];
            }
            r[k] = row;
        }
        vresize_row(r, &rz->yt.fcoef[dy * 4], &rz->yt.coef[dy * 4], len,
                    ls_image_row(job->dst, dy));
    }
}

int ls_resize_cubic(ls_resizer *rz, ls_pool *pool, const ls_image *src, ls_image *dst,
                    ls_error *err)
{
    if (!rz || !src || !dst || !src->data || !dst->data)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "resize: missing image or resizer");
    if (src->channels != dst->channels || src->channels < 1 || src->channels > 4)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "resize: %d -> %d channels",
                            src->channels, dst->channels);
    if (src->width < 1 || src->height < 1 || dst->width < 1 || dst->height < 1 ||
        src->width > LS_IMAGE_MAX_SIDE || src->height > LS_IMAGE_MAX_SIDE ||
        dst->width > LS_IMAGE_MAX_SIDE || dst->height > LS_IMAGE_MAX_SIDE)
        return ls_error_set(err, LS_ERR_RANGE, "resize: size %dx%d -> %dx%d out of range",
                            src->width, src->height, dst->width, dst->height);
    if (src->width == dst->width && src->height == dst->height) {
        ls_image_copy(src, dst);
        return LS_OK;
    }
    int n_bands = ls_band_count(dst->height, ls_pool_threads(pool));
    int rc = prepare(rz, src->width, src->height, dst->width, dst->height, src->channels,
                     n_bands, err);
    if (rc != LS_OK) return rc;
    resize_job job = {rz, src, dst};
    ls_pool_parallel_for_bands(pool, dst->height, n_bands, resize_band, &job);
    return LS_OK;
}
