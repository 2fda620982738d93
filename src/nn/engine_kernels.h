/* engine_kernels.h - the engine's own kernels (engine_kernels.c), over views.
 *
 * A tensor operand of a kernel is a view: item 0's first element, the
 * distance between items (larger than the item when the tensor is one slot
 * of a concat buffer), its N,C,H,W and its layout, one of
 *  - channel-blocked with block cb: element (n,c,h,w) lives at
 *    base + n*istride + ((c/cb)*H + h)*W*cb + w*cb + c%cb, which is NCHW for
 *    cb == 1 and oneDNN's nChw8c / nChw16c for cb == 8 / 16; channels are
 *    padded up to a multiple of cb;
 *  - channels-last (nhwc set, cb == 1): base + n*istride + (h*W + w)*ps + c,
 *    ps (>= C) being the channels of the buffer the view lives in: C for a
 *    tensor of its own, the whole concat's channels for one slot of a concat
 *    (the slot's base then points at its first channel).
 */
#ifndef LS_NN_ENGINE_KERNELS_H
#define LS_NN_ENGINE_KERNELS_H

#include <stdint.h>

typedef struct ls_view {
    float *base;     /* with bf16: really uint16_t *, offsets in bf16 elements */
    int64_t istride;
    int64_t n, c, h, w;
    int cb;
    int bf16;        /* elements are bfloat16 (native bf16 engines' activations) */
    int nhwc;        /* channels-last; then cb == 1 */
    int64_t ps;      /* nhwc: elements from one pixel to the next */
} ls_view;

/* Element i of v's storage: its address (float or bfloat16 sized). */
static inline void *ls_view_at(const ls_view *v, int64_t i)
{
    return v->bf16 ? (void *)((uint16_t *)(void *)v->base + i) : (void *)(v->base + i);
}

static inline int64_t ls_view_index(const ls_view *v, int64_t c, int64_t h, int64_t w)
{
    if (v->nhwc) return (h * v->w + w) * v->ps + c;
    return ((c / v->cb) * v->h + h) * v->w * v->cb + w * v->cb + c % v->cb;
}

/* Elements of one item of a tensor of its own, channel padding included. */
static inline int64_t ls_view_item(const ls_view *v)
{
    return (v->c + v->cb - 1) / v->cb * v->cb * v->h * v->w;
}

/* Per-axis source taps of a resize (or pad: identity taps with a border).
 * i0 < 0 marks an output pixel that takes the border value. */
typedef struct ls_taps {
    int32_t *i0, *i1;
    float *w1;
    int64_t n;
} ls_taps;

/* dst[:, c_off + c] = src[:, c] for every channel of src (layouts and element
 * types may differ: float to bfloat16 rounds to nearest even). */
void ls_k_copy(const ls_view *src, const ls_view *dst, int64_t c_off, int threads);
/* dst = resize of src by separable taps (rows th, columns tw), border value
 * where a tap is < 0. src and dst share cb and element type (float or
 * bfloat16: computed in float, rounded once). */
void ls_k_resize(const ls_view *src, const ls_view *dst, const ls_taps *th, const ls_taps *tw,
                 float border, int threads);
/* dst[c] = src[c] * scale[c] + shift[c] (same layout; may be in place). */
void ls_k_affine(const ls_view *src, const ls_view *dst, const float *scale, const float *shift,
                 int threads);
/* LS_K_ROUND_BF16 rounds to the nearest bfloat16 (ties to even). */
typedef enum { LS_K_RELU, LS_K_SIGMOID, LS_K_ROUND_BF16 } ls_k_unary;
/* Elementwise over whole items (channel padding included; may be in place). */
void ls_k_unary_op(ls_k_unary op, const ls_view *src, const ls_view *dst, int threads);
void ls_k_add(const ls_view *a, const ls_view *b, const ls_view *dst, int threads);
/* x rounded to the nearest bfloat16 (ties to even), as a float. */
float ls_round_bf16(float x);

#endif
