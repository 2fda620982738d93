/* engine_kernels.c - the engine's own kernels (everything oneDNN does not do
 * for us, or does only with its reference code on this CPU).
 *
 * Each kernel walks "rows", one per (item, channel block, output row) in the
 * blocked layouts (W*cb contiguous elements) and one per (item, output row)
 * in nhwc (W pixels of C channels, ps apart: a slot of a concat buffer
 * leaves the other slots' channels between its pixels, and a kernel touches
 * only its own), split statically over the OpenMP team, so a row is always
 * written by one thread and the result does not depend on the thread count. One thread runs the rows directly: libgomp mallocs a new
 * team for every one-thread parallel region, and runs allocate nothing. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/engine_kernels.h"

static inline int64_t row_index(const ls_view *v, int64_t n, int64_t cblk, int64_t h)
{
    if (v->nhwc) return n * v->istride + h * v->w * v->ps;
    return n * v->istride + (cblk * v->h + h) * v->w * v->cb;
}

static inline float *row_ptr(const ls_view *v, int64_t n, int64_t cblk, int64_t h)
{
    return v->base + row_index(v, n, cblk, h);
}

/* Elements from one pixel of a row to the next, and the elements of each
 * pixel a row owns (a blocked row's padding lanes included). */
static inline int64_t pix_stride(const ls_view *v) { return v->nhwc ? v->ps : v->cb; }
static inline int64_t pix_lanes(const ls_view *v) { return v->nhwc ? v->c : v->cb; }

/* Branch-free, so that the row loops below vectorize. */
static inline uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

static inline float from_bf16(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Our kernels are built for baseline x86-64 (the binary runs anywhere); the
 * row loops also get AVX2 and AVX-512 clones, picked at load time by an
 * ifunc resolver. ThreadSanitizer builds go without: the resolver runs
 * during relocation, before TSan's runtime is up, and crashes there. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Element i of a view of either type, as float; and the store. */
static inline float ld(const ls_view *v, int64_t i)
{
    return v->bf16 ? from_bf16(((const uint16_t *)(const void *)v->base)[i]) : v->base[i];
}

static inline void st(const ls_view *v, int64_t i, float x)
{
    if (v->bf16)
        ((uint16_t *)(void *)v->base)[i] = to_bf16(x);
    else
        v->base[i] = x;
}

static inline int64_t cblocks(const ls_view *v) { return (v->c + v->cb - 1) / v->cb; }
/* Channel blocks a row spans: nhwc rows hold every channel. */
static inline int64_t row_blocks(const ls_view *v) { return v->nhwc ? 1 : cblocks(v); }

typedef struct kargs {
    const ls_view *src, *src2, *dst;
    int64_t c_off;
    const ls_taps *th, *tw;
    float border;
    const float *scale, *shift;
    ls_k_unary unary;
    int zero_pad; /* copy_rows: also zero dst's channel padding */
} kargs;

typedef void (*rows_fn)(const kargs *a, int64_t begin, int64_t end);

#if defined(__SANITIZE_THREAD__)
/* libgomp is not built with ThreadSanitizer, so TSan cannot see the fork and
 * join of a parallel region; these tell it exactly those two edges, and it
 * still checks every access our rows make against each other. */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define FORK_JOIN_RELEASE(p) __tsan_release(p)
#define FORK_JOIN_ACQUIRE(p) __tsan_acquire(p)
/* par_rows itself only hands arguments through libgomp (whose hand-off TSan
 * cannot see either); the rows functions it calls stay instrumented. */
#define FORK_JOIN_UNCHECKED __attribute__((no_sanitize_thread))
#else
#define FORK_JOIN_UNCHECKED
#define FORK_JOIN_RELEASE(p) ((void)(p))
#define FORK_JOIN_ACQUIRE(p) ((void)(p))
#endif

/* Splits [0, rows) into `threads` contiguous static parts. */
FORK_JOIN_UNCHECKED static void par_rows(int64_t rows, int threads, rows_fn fn, const kargs *a)
{
    if (threads <= 1 || rows < 2) {
        fn(a, 0, rows);
        return;
    }
    int fork_join = 0;
    FORK_JOIN_RELEASE(&fork_join);
#pragma omp parallel num_threads(threads)
    {
        FORK_JOIN_ACQUIRE(&fork_join);
        int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
        fn(a, rows * t / n, rows * (t + 1) / n);
        FORK_JOIN_RELEASE(&fork_join);
    }
    FORK_JOIN_ACQUIRE(&fork_join);
}

/* Rows of a view: (item, channel block, y) for r in [0, n * row_blocks * h). */
#define ROW_COORDS(v, r, n, b, y)                                                                  \
    int64_t y = (r) % (v)->h, b = (r) / (v)->h % row_blocks(v),                                    \
            n = (r) / ((v)->h * row_blocks(v))

static void copy_blocks(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src, *dst = a->dst;
    int64_t blocks = cblocks(src), plane = src->h * src->w * src->cb;
    for (int64_t j = begin; j < end; j++) {
        int64_t n = j / blocks, b = j % blocks;
        int64_t di = n * dst->istride + (a->c_off / dst->cb + b) * plane;
        int64_t si = n * src->istride + b * plane;
        if (src->bf16 == dst->bf16)
            memcpy(ls_view_at(dst, di), ls_view_at(src, si),
                   (size_t)plane * (src->bf16 ? sizeof(uint16_t) : sizeof(float)));
        else
            for (int64_t i = 0; i < plane; i++) st(dst, di + i, ld(src, si + i));
    }
}

/* Any layout to any other, one (item, channel, y) row at a time; with
 * zero_pad the rows run over dst's padded channels and write zeros there. */
static void copy_rows(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src, *dst = a->dst;
    int64_t C = a->zero_pad ? cblocks(dst) * dst->cb : src->c;
    int64_t ss = pix_stride(src), ds = pix_stride(dst);
    for (int64_t r = begin; r < end; r++) {
        int64_t h = r % src->h, c = r / src->h % C, n = r / (src->h * C);
        int64_t di = n * dst->istride + ls_view_index(dst, c + a->c_off, h, 0);
        if (c >= src->c) {
            for (int64_t w = 0; w < src->w; w++) st(dst, di + w * ds, 0.0f);
            continue;
        }
        int64_t si = n * src->istride + ls_view_index(src, c, h, 0);
        for (int64_t w = 0; w < src->w; w++) st(dst, di + w * ds, ld(src, si + w * ss));
    }
}

/* nhwc to nhwc (into or out of a concat slot): a pixel's channels are
 * contiguous on both sides. */
static void copy_pixels(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src, *dst = a->dst;
    size_t esize = src->bf16 ? sizeof(uint16_t) : sizeof(float);
    for (int64_t r = begin; r < end; r++) {
        int64_t h = r % src->h, n = r / src->h;
        int64_t si = row_index(src, n, 0, h), di = row_index(dst, n, 0, h) + a->c_off;
        for (int64_t x = 0; x < src->w; x++, si += src->ps, di += dst->ps) {
            if (src->bf16 == dst->bf16)
                memcpy(ls_view_at(dst, di), ls_view_at(src, si), (size_t)src->c * esize);
            else
                for (int64_t c = 0; c < src->c; c++) st(dst, di + c, ld(src, si + c));
        }
    }
}

/* Plain to blocked (or back) a block-row at a time: cb source rows read
 * in step, one contiguous destination row written (or the reverse). */
VECTOR_CLONES static void copy_block_rows(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src, *dst = a->dst;
    int to_blocked = dst->cb > 1;
    const ls_view *bv = to_blocked ? dst : src, *pv = to_blocked ? src : dst;
    int cb = bv->cb;
    int64_t W = src->w;
    for (int64_t r = begin; r < end; r++) {
        ROW_COORDS(bv, r, n, b, y);
        int64_t lanes = bv->c - b * cb < cb ? bv->c - b * cb : cb;
        int64_t bi = row_index(bv, n, b, y);
        if (to_blocked) /* padding lanes read as zeros, whatever the arena held */
            for (int64_t l = lanes; l < cb; l++)
                for (int64_t x = 0; x < W; x++) st(bv, bi + x * cb + l, 0.0f);
        for (int64_t l = 0; l < lanes; l++) {
            int64_t pi = n * pv->istride + ((b * cb + l) * pv->h + y) * W;
            float *prow = pv->base + pi; /* plain views are always float */
            if (!bv->bf16) {
                float *brow = bv->base + bi;
                if (to_blocked)
                    for (int64_t x = 0; x < W; x++) brow[x * cb + l] = prow[x];
                else
                    for (int64_t x = 0; x < W; x++) prow[x] = brow[x * cb + l];
            } else { /* graph inputs and outputs of native bf16 */
                uint16_t *brow = (uint16_t *)(void *)bv->base + bi;
                if (to_blocked)
                    for (int64_t x = 0; x < W; x++) brow[x * cb + l] = to_bf16(prow[x]);
                else
                    for (int64_t x = 0; x < W; x++) prow[x] = from_bf16(brow[x * cb + l]);
            }
        }
    }
}

void ls_k_copy(const ls_view *src, const ls_view *dst, int64_t c_off, int threads)
{
    kargs a = {.src = src, .dst = dst, .c_off = c_off};
    int blocked = !src->nhwc && !dst->nhwc;
    if (blocked && src->cb == dst->cb && c_off % dst->cb == 0)
        par_rows(src->n * cblocks(src), threads, copy_blocks, &a); /* whole blocks are contiguous */
    else if (blocked && c_off == 0 && src->c == dst->c && ((src->cb == 1) != (dst->cb == 1)))
        par_rows(src->n * cblocks(src->cb > 1 ? src : dst) * src->h, threads, copy_block_rows, &a);
    else if (src->nhwc && dst->nhwc)
        par_rows(src->n * src->h, threads, copy_pixels, &a);
    else {
        /* A whole tensor into a blocked layout: its padding lanes must read as
         * zeros, whatever the arena held there before. */
        a.zero_pad = dst->cb > 1 && c_off == 0 && src->c == dst->c;
        int64_t C = a.zero_pad ? cblocks(dst) * dst->cb : src->c;
        par_rows(src->n * C * src->h, threads, copy_rows, &a);
    }
}

/* One output row of a resize: horizontal taps over the blend of two source
 * rows; `lanes` elements per pixel, pixels ss (source) and ds (destination)
 * apart. Compile-time lane counts at the call sites that matter (blocked
 * rows: lanes == ss == ds == cb). */
static inline void resize_row(float *d, const float *s0, const float *s1, float wy,
                              const ls_taps *tw, float border, int64_t lanes, int64_t ss,
                              int64_t ds)
{
    for (int64_t x = 0; x < tw->n; x++, d += ds) {
        int32_t x0 = tw->i0[x];
        if (x0 < 0) {
            for (int64_t l = 0; l < lanes; l++) d[l] = border;
            continue;
        }
        const float *a0 = s0 + (int64_t)x0 * ss, *a1 = s0 + (int64_t)tw->i1[x] * ss;
        const float *b0 = s1 + (int64_t)x0 * ss, *b1 = s1 + (int64_t)tw->i1[x] * ss;
        float wx = tw->w1[x];
        for (int64_t l = 0; l < lanes; l++) {
            float top = a0[l] + wx * (a1[l] - a0[l]);
            float bot = b0[l] + wx * (b1[l] - b0[l]);
            d[l] = top + wy * (bot - top);
        }
    }
}

/* The same over bfloat16 rows: taps blended in float, rounded once. */
static inline void resize_row_bf16(uint16_t *d, const uint16_t *s0, const uint16_t *s1, float wy,
                                   const ls_taps *tw, float border, int64_t lanes, int64_t ss,
                                   int64_t ds)
{
    uint16_t bb = to_bf16(border);
    for (int64_t x = 0; x < tw->n; x++, d += ds) {
        int32_t x0 = tw->i0[x];
        if (x0 < 0) {
            for (int64_t l = 0; l < lanes; l++) d[l] = bb;
            continue;
        }
        const uint16_t *a0 = s0 + (int64_t)x0 * ss, *a1 = s0 + (int64_t)tw->i1[x] * ss;
        const uint16_t *b0 = s1 + (int64_t)x0 * ss, *b1 = s1 + (int64_t)tw->i1[x] * ss;
        float wx = tw->w1[x];
        for (int64_t l = 0; l < lanes; l++) {
            float fa0 = from_bf16(a0[l]), fa1 = from_bf16(a1[l]);
            float fb0 = from_bf16(b0[l]), fb1 = from_bf16(b1[l]);
            float top = fa0 + wx * (fa1 - fa0);
            float bot = fb0 + wx * (fb1 - fb0);
            d[l] = to_bf16(top + wy * (bot - top));
        }
    }
}

VECTOR_CLONES static void resize_rows_bf16(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src, *dst = a->dst;
    int cb = dst->cb;
    int64_t lanes = pix_lanes(dst), ss = pix_stride(src), ds = pix_stride(dst);
    const uint16_t *sb = (const uint16_t *)(const void *)src->base;
    uint16_t *db = (uint16_t *)(void *)dst->base;
    for (int64_t r = begin; r < end; r++) {
        ROW_COORDS(dst, r, n, b, y);
        uint16_t *d = db + row_index(dst, n, b, y);
        int32_t y0 = a->th->i0[y];
        if (y0 < 0) { /* a border row: only this view's lanes of each pixel */
            uint16_t bb = to_bf16(a->border);
            for (int64_t x = 0; x < dst->w; x++)
                for (int64_t l = 0; l < lanes; l++) d[x * ds + l] = bb;
            continue;
        }
        const uint16_t *s0 = sb + row_index(src, n, b, y0), *s1 = sb + row_index(src, n, b, a->th->i1[y]);
        float wy = a->th->w1[y];
        if (dst->nhwc)
            resize_row_bf16(d, s0, s1, wy, a->tw, a->border, lanes, ss, ds);
        else if (cb == 16)
            resize_row_bf16(d, s0, s1, wy, a->tw, a->border, 16, 16, 16);
        else if (cb == 8)
            resize_row_bf16(d, s0, s1, wy, a->tw, a->border, 8, 8, 8);
        else
            resize_row_bf16(d, s0, s1, wy, a->tw, a->border, cb, cb, cb);
    }
}

VECTOR_CLONES static void resize_rows(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src, *dst = a->dst;
    int cb = dst->cb;
    int64_t lanes = pix_lanes(dst), ss = pix_stride(src), ds = pix_stride(dst);
    for (int64_t r = begin; r < end; r++) {
        ROW_COORDS(dst, r, n, b, y);
        float *d = row_ptr(dst, n, b, y);
        int32_t y0 = a->th->i0[y];
        if (y0 < 0) { /* a border row: only this view's lanes of each pixel */
            for (int64_t x = 0; x < dst->w; x++)
                for (int64_t l = 0; l < lanes; l++) d[x * ds + l] = a->border;
            continue;
        }
        const float *s0 = row_ptr(src, n, b, y0), *s1 = row_ptr(src, n, b, a->th->i1[y]);
        float wy = a->th->w1[y];
        if (dst->nhwc)
            resize_row(d, s0, s1, wy, a->tw, a->border, lanes, ss, ds);
        else if (cb == 16)
            resize_row(d, s0, s1, wy, a->tw, a->border, 16, 16, 16);
        else if (cb == 8)
            resize_row(d, s0, s1, wy, a->tw, a->border, 8, 8, 8);
        else if (cb == 1)
            resize_row(d, s0, s1, wy, a->tw, a->border, 1, 1, 1);
        else
            resize_row(d, s0, s1, wy, a->tw, a->border, cb, cb, cb);
    }
}

void ls_k_resize(const ls_view *src, const ls_view *dst, const ls_taps *th, const ls_taps *tw,
                 float border, int threads)
{
    kargs a = {.src = src, .dst = dst, .th = th, .tw = tw, .border = border};
    par_rows(dst->n * row_blocks(dst) * dst->h, threads,
             dst->bf16 ? resize_rows_bf16 : resize_rows, &a);
}

/* Elementwise kernels run over each row's pixels: one contiguous run of
 * W*lanes when every view's pixels are packed (blocked rows, whole nhwc
 * tensors), else a run of `lanes` per pixel, each view with its own pixel
 * stride (an nhwc slot of a concat buffer). The views share a layout; a
 * blocked row's padding lanes are computed too (zeros stay zeros for ReLU,
 * add and rounding; the affine's scale and shift are 0 there). */
typedef struct row_runs {
    int64_t runs, len, lanes; /* runs per row, elements per run, lanes per pixel */
    int64_t s, s2, d;         /* element step from one run to the next, per view */
} row_runs;

static inline int packed(const ls_view *v) { return pix_lanes(v) == pix_stride(v); }

static row_runs runs_of(const ls_view *src, const ls_view *src2, const ls_view *dst)
{
    int64_t lanes = pix_lanes(src);
    if (packed(src) && packed(dst) && (!src2 || packed(src2)))
        return (row_runs){1, src->w * lanes, lanes, 0, 0, 0};
    return (row_runs){src->w, lanes,          lanes,           pix_stride(src),
                      src2 ? pix_stride(src2) : 0, pix_stride(dst)};
}

static void affine_rows(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src;
    row_runs ru = runs_of(src, NULL, a->dst);
    int64_t lanes = ru.lanes;
    for (int64_t r = begin; r < end; r++) {
        ROW_COORDS(src, r, n, b, y);
        const float *s = row_ptr(src, n, b, y);
        float *d = row_ptr(a->dst, n, b, y);
        /* lane l of a pixel is channel b*cb + l (blocked) or l (nhwc) */
        const float *sc = a->scale + b * src->cb, *sh = a->shift + b * src->cb;
        for (int64_t k = 0; k < ru.runs; k++) {
            const float *si = s + k * ru.s;
            float *di = d + k * ru.d;
            for (int64_t i = 0; i < ru.len; i++) di[i] = si[i] * sc[i % lanes] + sh[i % lanes];
        }
    }
}

void ls_k_affine(const ls_view *src, const ls_view *dst, const float *scale, const float *shift,
                 int threads)
{
    kargs a = {.src = src, .dst = dst, .scale = scale, .shift = shift};
    par_rows(src->n * row_blocks(src) * src->h, threads, affine_rows, &a);
}

float ls_round_bf16(float x)
{
    if (!isfinite(x)) return x; /* inf and NaN stay as they are */
    return from_bf16(to_bf16(x));
}

static void unary_rows(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *src = a->src;
    row_runs ru = runs_of(src, NULL, a->dst);
    for (int64_t r = begin; r < end; r++) {
        ROW_COORDS(src, r, n, b, y);
        const float *s = row_ptr(src, n, b, y);
        float *d = row_ptr(a->dst, n, b, y);
        for (int64_t k = 0; k < ru.runs; k++) {
            const float *si = s + k * ru.s;
            float *di = d + k * ru.d;
            int64_t len = ru.len;
            if (a->unary == LS_K_RELU)
                for (int64_t i = 0; i < len; i++) di[i] = si[i] > 0 ? si[i] : 0;
            else if (a->unary == LS_K_SIGMOID)
                for (int64_t i = 0; i < len; i++) di[i] = 1.0f / (1.0f + expf(-si[i]));
            else
                for (int64_t i = 0; i < len; i++) di[i] = ls_round_bf16(si[i]);
        }
    }
}

void ls_k_unary_op(ls_k_unary op, const ls_view *src, const ls_view *dst, int threads)
{
    kargs a = {.src = src, .dst = dst, .unary = op};
    par_rows(src->n * row_blocks(src) * src->h, threads, unary_rows, &a);
}

static void add_rows(const kargs *a, int64_t begin, int64_t end)
{
    const ls_view *p = a->src;
    row_runs ru = runs_of(p, a->src2, a->dst);
    for (int64_t r = begin; r < end; r++) {
        ROW_COORDS(p, r, n, b, y);
        const float *x = row_ptr(p, n, b, y), *z = row_ptr(a->src2, n, b, y);
        float *d = row_ptr(a->dst, n, b, y);
        for (int64_t k = 0; k < ru.runs; k++) {
            const float *xi = x + k * ru.s, *zi = z + k * ru.s2;
            float *di = d + k * ru.d;
            for (int64_t i = 0; i < ru.len; i++) di[i] = xi[i] + zi[i];
        }
    }
}

void ls_k_add(const ls_view *a, const ls_view *b, const ls_view *dst, int threads)
{
    kargs k = {.src = a, .src2 = b, .dst = dst};
    par_rows(a->n * row_blocks(a) * a->h, threads, add_rows, &k);
}
