/* engine_lower.c - an ls_graph lowered onto oneDNN primitives and the
 * engine's own kernels (engine_lower.h).
 *
 * In order:
 *  1. every activation gets an "engine value" (ev) and a layout: 4-D ones
 *     the layout the propagation (assign_layouts) picks from the convs
 *     around it - oneDNN's own choice per conv (format_tag_any: nhwc for its
 *     brgemm kernels on AVX-512, nChw8c on AVX2), or nChw16c/nChw8c
 *     everywhere, by policy (ls_layout_policy) - others plain;
 *  2. storage sharing: a channel Concat's inputs live inside the Concat's
 *     buffer at their channel offset (when the offset is a whole channel
 *     block), a fused residual's buffer is reused in place by the conv that
 *     adds it (oneDNN's sum post-op), a plain Reshape is a view, and a
 *     Resize whose only consumer is a spatial Pad writes the padded tensor;
 *  3. steps in node order; a 1x1 conv feeding only a 3x3 depthwise conv
 *     becomes one primitive (oneDNN's depthwise post-op) where oneDNN has a
 *     native kernel for the pair; a conv whose source or destination is a
 *     slot of a larger buffer at batch > 1 runs per item (oneDNN's
 *     strided-tensor convolutions are reference code, its dense per-item
 *     ones are JIT); small steps run on one thread; native bf16 makes
 *     blocked activations bfloat16 and convs oneDNN's bf16 ones (a float
 *     conv where it has none for a shape), emulated bf16 adds a rounding
 *     step after every intermediate value.
 * Anything the fast path does not cover becomes a reference-op step (ST_REF)
 * on plain temporaries, so every graph ls_ref_run accepts also runs in the
 * engine. Where the arena buffers go is the planner's (plan.h, engine.c).
 */
#include "nn/engine_lower.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/quant.h"
#include "nn/resize_map.h"

/* Steps smaller than this run on one thread: a parallel region costs a
 * barrier (microseconds on idle cores, a scheduler slice on busy ones). */
#define SMALL_CONV_FLOPS 10e6
#define SMALL_KERNEL_ELEMS 65536

/* A oneDNN call's status as ours: LS_OK, or LS_ERR_INTERNAL with a message
 * naming node ni and the call (no control flow: callers test the result and
 * release what they hold before returning it). */
static int dn_status(const ls_engine *e, int ni, dnnl_status_t st, const char *call, ls_error *err)
{
    if (st == dnnl_success) return LS_OK;
    return ls_error_set(err, LS_ERR_INTERNAL, "node '%s': oneDNN call %s failed (status %d)",
                        node_name(e, ni), call, (int)st);
}
#define DN_STATUS(call) dn_status(e, ni, (call), #call, err)

/* ---- engine values ---- */

static dnnl_format_tag_t tag_of(int lay)
{
    return lay == LAY_NHWC ? dnnl_nhwc : lay == 16 ? dnnl_nChw16c : lay == 8 ? dnnl_nChw8c
                                                                             : dnnl_nchw;
}

static int new_ev(ls_engine *e, ls_error *err)
{
    if (e->n_evs == e->cap_evs) {
        int cap = e->cap_evs ? 2 * e->cap_evs : 64;
        ev *p = realloc(e->evs, (size_t)cap * sizeof *p);
        if (!p) return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
        e->evs = p;
        e->cap_evs = cap;
    }
    ev *v = &e->evs[e->n_evs];
    memset(v, 0, sizeof *v);
    v->alias = -1;
    v->root = e->n_evs;
    v->first = v->last = -1;
    return e->n_evs++;
}

/* Shapes an ev like graph value gv (4-D: its NCHW in layout lay; others:
 * [d0, rest, 1, 1], plain). */
static void shape_ev(ev *v, const ls_value *gv, int lay)
{
    if (gv->ndim == 4) {
        v->n = gv->dims[0];
        v->c = gv->dims[1];
        v->h = gv->dims[2];
        v->w = gv->dims[3];
    } else {
        int64_t count = ls_value_count(gv);
        v->n = gv->ndim ? gv->dims[0] : 1;
        v->c = v->n ? count / v->n : 0;
        v->h = v->w = 1;
        lay = 1;
    }
    v->lay = lay;
    v->isize = ls_round_up(v->c, cb_of(lay)) * v->h * v->w;
    v->ps = v->c;
}

/* A fresh arena ev shaped like ev `like` in layout lay. */
static int temp_like(ls_engine *e, int like, int lay, ls_error *err)
{
    int t = new_ev(e, err);
    if (t < 0) return t;
    ev *v = &e->evs[t], *l = &e->evs[like];
    v->kind = EV_ARENA;
    v->n = l->n;
    v->c = l->c;
    v->h = l->h;
    v->w = l->w;
    v->lay = lay;
    v->isize = ls_round_up(v->c, cb_of(lay)) * v->h * v->w;
    v->ps = v->c;
    return t;
}

/* One item is one contiguous block of memory: not so for an nhwc slot of a
 * concat buffer, whose pixels have the other slots' channels between them. */
static int item_contig(const ev *v)
{
    return v->kind != EV_ARENA || v->lay != LAY_NHWC || v->ps == v->c;
}

/* The whole batch is one contiguous block (what a oneDNN memory of the
 * tensor's own shape can describe). */
static int dense(const ev *v)
{
    return item_contig(v) && (v->kind != EV_ARENA || v->istride == v->isize || v->n == 1);
}

/* oneDNN data type of a conv operand in layout `tag` (f32: a float conv,
 * the fallback of native bf16 where oneDNN has no bf16 kernel for a shape). */
static dnnl_data_type_t conv_dt(const ls_engine *e, dnnl_format_tag_t tag, int f32)
{
    return e->native_bf16 && !f32 && tag != dnnl_nchw ? dnnl_bf16 : dnnl_f32;
}

static int same_storage(const ls_engine *e, int a, int b)
{
    const ev *x = &e->evs[a], *y = &e->evs[b];
    return x->kind == EV_ARENA && y->kind == EV_ARENA && x->root == y->root && x->off == y->off &&
           x->lay == y->lay;
}

static int is_conv4(const ls_graph *g, const ls_node *n)
{
    return n->op == LS_OP_CONV && g->values[n->in[0]].ndim == 4 && g->values[n->out].ndim == 4;
}

static int is_graph_output(const ls_graph *g, int v)
{
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) return 1;
    return 0;
}

/* ---- steps ---- */

static step *new_step(ls_engine *e, st_kind kind, int ni, ls_error *err)
{
    if (e->n_steps == e->cap_steps) {
        int cap = e->cap_steps ? 2 * e->cap_steps : 64;
        step *p = realloc(e->steps, (size_t)cap * sizeof *p);
        if (!p) {
            ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
            return NULL;
        }
        e->steps = p;
        e->cap_steps = cap;
    }
    step *s = &e->steps[e->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->node = ni;
    s->src = s->src2 = s->dst = -1;
    for (int k = 0; k < LS_NN_MAX_INPUTS; k++) s->ref_in[k] = -1;
    return s;
}

static int add_convert(ls_engine *e, int ni, int src, int dst, ls_error *err);

/* dst[:, c_off + c] = src[:, c]: our copy kernel, or a oneDNN reorder where
 * either side is int8. */
static int add_copy(ls_engine *e, int ni, int src, int dst, int64_t c_off, ls_error *err)
{
    if (e->evs[src].q || e->evs[dst].q) {
        if (c_off)
            return ls_error_set(err, LS_ERR_INTERNAL, "node '%s': int8 value in a concat",
                                node_name(e, ni));
        return add_convert(e, ni, src, dst, err);
    }
    step *s = new_step(e, ST_COPY, ni, err);
    if (!s) return LS_ERR_NOMEM;
    s->src = src;
    s->dst = dst;
    s->c_off = c_off;
    return LS_OK;
}

/* What a step needs of a source's memory: any view (our kernels), each item
 * contiguous (oneDNN per item), the whole batch contiguous (oneDNN). */
enum { NEED_VIEW, NEED_ITEM, NEED_DENSE };

/* ev holding v's data in layout lay in the arena: v itself, or a temporary
 * filled by a copy step (a reorder). */
static int in_layout(ls_engine *e, int ni, int v, int lay, int need, ls_error *err)
{
    const ev *x = &e->evs[v];
    if (x->kind == EV_ARENA && x->lay == lay && !x->q &&
        (need == NEED_VIEW || (need == NEED_ITEM ? item_contig(x) : dense(x))))
        return v;
    int t = temp_like(e, v, lay, err);
    if (t < 0) return t;
    int rc = add_copy(e, ni, v, t, 0, err);
    return rc ? rc : t;
}

/* ---- taps ---- */

static int alloc_taps(ls_taps *t, int64_t n)
{
    t->n = n;
    t->i0 = malloc((size_t)n * sizeof *t->i0);
    t->i1 = malloc((size_t)n * sizeof *t->i1);
    t->w1 = malloc((size_t)n * sizeof *t->w1);
    return t->i0 && t->i1 && t->w1 ? LS_OK : LS_ERR_NOMEM;
}

static void free_taps(ls_taps *t)
{
    free(t->i0);
    free(t->i1);
    free(t->w1);
}

/* Taps of one axis: output pixel o reads resized pixel o - before (a border
 * pixel when that lies outside [0, mid)); resized pixel r reads the source by
 * the resize attribute, or is the source pixel r itself when a is NULL. */
static int build_taps(ls_taps *t, int64_t out, int64_t before, int64_t mid, int64_t in,
                      const ls_resize_attr *a, double scale)
{
    if (alloc_taps(t, out)) return LS_ERR_NOMEM;
    for (int64_t o = 0; o < out; o++) {
        int64_t r = o - before;
        t->w1[o] = 0;
        if (r < 0 || r >= mid) {
            t->i0[o] = t->i1[o] = -1;
        } else if (!a) {
            t->i0[o] = t->i1[o] = (int32_t)r;
        } else {
            double x = ls_resize_source(a, scale, r, in, mid);
            if (a->mode == LS_RESIZE_NEAREST) {
                t->i0[o] = t->i1[o] = (int32_t)ls_resize_nearest(a, x, in);
            } else {
                int64_t i0, i1;
                ls_resize_linear(x, in, &i0, &i1, &t->w1[o]);
                t->i0[o] = (int32_t)i0;
                t->i1[o] = (int32_t)i1;
            }
        }
    }
    return LS_OK;
}

/* ---- compile: ops ---- */

static int compile_ref(ls_engine *e, int ni, ls_error *err)
{
    const ls_node *n = &e->g->nodes[ni];
    int ins[LS_NN_MAX_INPUTS];
    for (int k = 0; k < n->n_in; k++) {
        ins[k] = -1;
        if (n->in[k] < 0) continue;
        int v = n->in[k];
        const ev *x = &e->evs[v];
        if (x->kind == EV_CONST || (x->kind == EV_ARENA && is_plain(x) && dense(x) && !x->q)) {
            ins[k] = v;
        } else {
            int t = temp_like(e, v, 1, err);
            if (t < 0) return t;
            int rc = add_copy(e, ni, v, t, 0, err);
            if (rc) return rc;
            ins[k] = t;
        }
    }
    int out = n->out, dst = out;
    if (!(is_plain(&e->evs[out]) && dense(&e->evs[out]))) {
        dst = temp_like(e, out, 1, err);
        if (dst < 0) return dst;
    }
    step *s = new_step(e, ST_REF, ni, err);
    if (!s) return LS_ERR_NOMEM;
    memcpy(s->ref_in, ins, sizeof(int) * (size_t)n->n_in);
    s->dst = dst;
    return dst != out ? add_copy(e, ni, dst, out, 0, err) : LS_OK;
}

/* A reorder of user data (plain tag) into memory of descriptor `want`,
 * allocated by oneDNN and owned by the engine. */
static int upload(ls_engine *e, int ni, const float *data, int ndim, const dnnl_dims_t dims,
                  dnnl_format_tag_t tag, const dnnl_memory_desc_t *want,
                  const_dnnl_primitive_attr_t attr, dnnl_memory_t *out, ls_error *err)
{
    dnnl_memory_desc_t user_md;
    dnnl_memory_t user = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    int rc = DN_STATUS(dnnl_memory_desc_init_by_tag(&user_md, ndim, dims, dnnl_f32, tag));
    if (!rc) rc = DN_STATUS(dnnl_memory_create(&user, &user_md, e->dnnl, (void *)data));
    if (!rc) rc = DN_STATUS(dnnl_memory_create(out, want, e->dnnl, DNNL_MEMORY_ALLOCATE));
    if (rc) {
        if (user) dnnl_memory_destroy(user);
        return rc;
    }
    dnnl_status_t st =
        dnnl_reorder_primitive_desc_create(&rpd, &user_md, e->dnnl, want, e->dnnl, attr);
    if (st == dnnl_success) st = dnnl_primitive_create(&r, rpd);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, *out}};
        st = dnnl_primitive_execute(r, e->stream, 2, args);
        if (st == dnnl_success) st = dnnl_stream_wait(e->stream);
    }
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(user);
    if (st != dnnl_success)
        return ls_error_set(err, LS_ERR_INTERNAL,
                            "node '%s': oneDNN weight reorder failed (status %d)", node_name(e, ni),
                            (int)st);
    return LS_OK;
}

/* Zero border moved out of a conv into its source (see compile_conv):
 * top, left, bottom, right. */
typedef struct conv_prepad {
    int pad[4];
} conv_prepad;

/* An int8 convolution's types and scales: u8 or s8 source, s8 weights,
 * float bias, and an int8, bf16 or f32 destination; dst = scales[oc] *
 * (sum of src * wei + bias) (oneDNN 2.x adds the bias before scaling). */
typedef struct conv_q {
    dnnl_data_type_t sdt, ddt;
    const float *scales; /* per output channel */
    int64_t count;       /* OC, or 1 with one scale for all */
} conv_q;

/* Tries one convolution primitive descriptor; src/dst tags may be any. With
 * pre (may be NULL), the source is that much larger and the conv pads less;
 * with q (may be NULL), it is an int8 convolution. */
static dnnl_status_t try_conv_pd(ls_engine *e, const ls_node *n, const ls_node *dw, int64_t nb,
                                 dnnl_format_tag_t src_tag, dnnl_format_tag_t dst_tag, int has_bias,
                                 const conv_prepad *pre, int f32, int res_binary, const conv_q *q,
                                 dnnl_primitive_desc_t *pd)
{
    const ls_conv_attr *a = &n->attr.conv;
    const ls_value *x = &e->g->values[n->in[0]], *y = &e->g->values[n->out];
    int64_t G = a->group, OC = y->dims[1], IC = x->dims[1];
    static const conv_prepad none = {{0, 0, 0, 0}};
    if (!pre) pre = &none;
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t sd = {nb, IC, x->dims[2] + pre->pad[0] + pre->pad[2],
                      x->dims[3] + pre->pad[1] + pre->pad[3]},
                dd = {nb, OC, y->dims[2], y->dims[3]};
    dnnl_dims_t bd = {OC};
    dnnl_status_t st;
    dnnl_data_type_t wdt = q ? dnnl_s8 : e->native_bf16 && !f32 ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t ddt = q ? q->ddt : conv_dt(e, dst_tag, f32);
    dnnl_data_type_t sdt = q ? q->sdt : conv_dt(e, src_tag, f32);
    if ((st = dnnl_memory_desc_init_by_tag(&src, 4, sd, sdt, src_tag))) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&dst, 4, dd, ddt, dst_tag))) return st;
    if (G > 1) {
        dnnl_dims_t wd = {G, OC / G, IC / G, a->kernel[0], a->kernel[1]};
        st = dnnl_memory_desc_init_by_tag(&wei, 5, wd, wdt, dnnl_format_tag_any);
    } else {
        dnnl_dims_t wd = {OC, IC, a->kernel[0], a->kernel[1]};
        st = dnnl_memory_desc_init_by_tag(&wei, 4, wd, wdt, dnnl_format_tag_any);
    }
    if (st) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a))) return st;
    dnnl_dims_t strides = {a->stride[0], a->stride[1]};
    dnnl_dims_t dil = {a->dilation[0] - 1, a->dilation[1] - 1};
    dnnl_dims_t pl = {a->pad[0] - pre->pad[0], a->pad[1] - pre->pad[1]},
                pr = {a->pad[2] - pre->pad[2], a->pad[3] - pre->pad[3]};
    dnnl_convolution_desc_t cd;
    st = dnnl_dilated_convolution_forward_desc_init(
        &cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei, has_bias ? &bias : NULL,
        &dst, strides, dil, pl, pr);
    if (st) return st;
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    if ((st = dnnl_primitive_attr_create(&attr))) return st;
    if ((st = dnnl_post_ops_create(&po))) {
        dnnl_primitive_attr_destroy(attr);
        return st;
    }
    if (a->residual >= 0)
        st = res_binary ? dnnl_post_ops_append_binary(po, dnnl_binary_add, &dst)
                        : dnnl_post_ops_append_sum(po, 1.0f);
    if (!st && a->fuse_relu)
        st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    if (!st && a->fuse_sigmoid)
        st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f);
    if (!st && dw) {
        st = dw->attr.conv.stride[0] == 1
                 ? dnnl_post_ops_append_dw_k3s1p1(po, wdt, dnnl_f32, ddt, 0, 0, NULL)
                 : dnnl_post_ops_append_dw_k3s2p1(po, wdt, dnnl_f32, ddt, 0, 0, NULL);
        if (!st && dw->attr.conv.fuse_relu)
            st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    }
    if (!st) st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (!st && q)
        st = dnnl_primitive_attr_set_output_scales(attr, q->count, q->count > 1 ? 1 << 1 : 0,
                                                   q->scales);
    if (!st) st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (!st) st = dnnl_primitive_desc_create(pd, &cd, attr, e->dnnl, NULL);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static const char *pd_impl(dnnl_primitive_desc_t pd)
{
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return impl;
}

/* Which of our layouts md is (a layout code), or -1 for none of them. */
static int md_layout(const dnnl_memory_desc_t *md, const dnnl_dims_t dims)
{
    /* plain before nhwc: oneDNN calls them equal where C == 1 */
    static const int lays[4] = {16, 8, 1, LAY_NHWC};
    for (int k = 0; k < 4; k++) {
        dnnl_memory_desc_t cand;
        dnnl_format_tag_t tag = tag_of(lays[k]);
        if (lays[k] == 1 && md->data_type == dnnl_bf16) continue; /* plain evs are float */
        if (!dnnl_memory_desc_init_by_tag(&cand, 4, dims, md->data_type, tag) &&
            dnnl_memory_desc_equal(md, &cand))
            return lays[k];
    }
    return -1;
}

/* A 1x1 conv whose only consumer is a 3x3 depthwise conv (stride 1 or 2,
 * pad 1): oneDNN runs the pair as one primitive (its depthwise post-op), so
 * the expanded tensor between them never goes to memory. */
static int dw_partner(const ls_engine *e, int ni)
{
    const ls_graph *g = e->g;
    const ls_node *n = &g->nodes[ni];
    const ls_conv_attr *a = &n->attr.conv;
    if (n->op != LS_OP_CONV || a->kernel[0] != 1 || a->kernel[1] != 1 || a->stride[0] != 1 ||
        a->stride[1] != 1 || a->pad[0] || a->pad[1] || a->pad[2] || a->pad[3] || a->group != 1 ||
        a->residual >= 0 || e->consumers[n->out] != 1 || e->qconv[ni])
        return -1;
    int di = e->last_consumer[n->out];
    const ls_node *d = &g->nodes[di];
    const ls_conv_attr *b = &d->attr.conv;
    int64_t C = g->values[n->out].dims[1];
    if (d->op != LS_OP_CONV || d->in[0] != n->out || b->group != C ||
        g->values[d->out].dims[1] != C || b->kernel[0] != 3 || b->kernel[1] != 3 ||
        b->stride[0] != b->stride[1] || (b->stride[0] != 1 && b->stride[0] != 2) ||
        b->dilation[0] != 1 || b->dilation[1] != 1 || b->pad[0] != 1 || b->pad[1] != 1 ||
        b->pad[2] != 1 || b->pad[3] != 1 || b->residual >= 0 || b->fuse_sigmoid || e->qconv[di])
        return -1;
    return di;
}

/* Conv weights in oneDNN's chosen layout (bf16: rounded to bf16 first). */
static int upload_weights(ls_engine *e, int ni, const ls_value *w, int group,
                          const dnnl_memory_desc_t *want, dnnl_memory_t *out, ls_error *err)
{
    size_t count = (size_t)ls_value_count(w);
    float *data = (float *)w->data, *rounded = NULL;
    if (e->prec == LS_PREC_BF16) {
        if (!(rounded = malloc(count * sizeof *rounded)))
            return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
        for (size_t i = 0; i < count; i++) rounded[i] = ls_round_bf16(data[i]);
        data = rounded;
    }
    int64_t OC = w->dims[0];
    int rc;
    if (group > 1) {
        dnnl_dims_t wd = {group, OC / group, w->dims[1], w->dims[2], w->dims[3]};
        rc = upload(e, ni, data, 5, wd, dnnl_goihw, want, NULL, out, err);
    } else {
        dnnl_dims_t wd = {OC, w->dims[1], w->dims[2], w->dims[3]};
        rc = upload(e, ni, data, 4, wd, dnnl_oihw, want, NULL, out, err);
    }
    free(rounded);
    return rc;
}

/* A conv's bias (zeros when it has none) into the memory pd wants for it. */
static int upload_bias(ls_engine *e, int ni, const ls_node *n, dnnl_primitive_desc_t pd,
                       dnnl_query_t what, int index, dnnl_memory_t *out, ls_error *err)
{
    int slot = ls_conv_bias_input(n);
    int64_t OC = e->g->values[n->out].dims[1];
    float *zeros = slot >= 0 ? NULL : calloc((size_t)OC, sizeof(float));
    const float *bias = slot >= 0 ? e->g->values[n->in[slot]].data : zeros;
    if (!bias) return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    dnnl_dims_t bd = {OC};
    int rc = upload(e, ni, bias, 1, bd, dnnl_a, dnnl_primitive_desc_query_md(pd, what, index), NULL,
                    out, err);
    free(zeros);
    return rc;
}

/* A float temporary holding v in layout lay (for a float conv in a native
 * bf16 engine). */
static int float_temp(ls_engine *e, int ni, int v, int lay, ls_error *err)
{
    int t = temp_like(e, v, lay, err);
    if (t < 0) return t;
    e->evs[t].f32 = 1;
    int rc = add_copy(e, ni, v, t, 0, err);
    return rc ? rc : t;
}

/* A temporary holding v in layout lay with a zero border pad[4] (top, left,
 * bottom, right), filled by a resize step with identity taps. */
static int add_border(ls_engine *e, int ni, int v, int lay, const int pad[4], ls_error *err)
{
    int src = in_layout(e, ni, v, lay, NEED_VIEW, err);
    if (src < 0) return src;
    int t = temp_like(e, src, lay, err);
    if (t < 0) return t;
    ev *x = &e->evs[t];
    int64_t h = x->h, w = x->w;
    x->h += pad[0] + pad[2];
    x->w += pad[1] + pad[3];
    x->isize = ls_round_up(x->c, cb_of(lay)) * x->h * x->w;
    step *s = new_step(e, ST_RESIZE, ni, err);
    if (!s) return LS_ERR_NOMEM;
    s->src = src;
    s->dst = t;
    s->border = 0.0f;
    if (build_taps(&s->th, x->h, pad[0], h, h, NULL, 0) ||
        build_taps(&s->tw, x->w, pad[1], w, w, NULL, 0))
        return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    return t;
}

static double conv_flops(const ls_graph *g, const ls_node *n)
{
    const ls_conv_attr *a = &n->attr.conv;
    return 2.0 * (double)ls_value_count(&g->values[n->out]) *
           (double)(g->values[n->in[0]].dims[1] / a->group) * a->kernel[0] * a->kernel[1];
}

/* A conv step's operands and what its primitive descriptor says: source,
 * destination, the binary residual (res >= 0), items run one by one
 * (per_item_n > 0) or the batch at once, and the scratchpad it needs. */
static void fill_conv_step(ls_engine *e, step *s, dnnl_primitive_desc_t pd, int src, int dst,
                           int res, int per_item_n, int threads)
{
    s->src = src;
    s->dst = dst;
    if (res >= 0) {
        s->src2 = res;
        s->res_md = *dnnl_primitive_desc_query_md(
            pd, dnnl_query_exec_arg_md, DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1);
    }
    s->per_item = per_item_n > 0;
    s->n_exec = per_item_n > 0 ? per_item_n : 1;
    s->threads = threads;
    snprintf(s->impl, sizeof s->impl, "%s", pd_impl(pd));
    s->src_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    s->dst_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_DST);
    s->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = dnnl_memory_desc_get_size(&s->scratch_md);
    if (sbytes > e->scratch_bytes) e->scratch_bytes = sbytes;
}

/* ---- int8 ---- */

/* The element type of an ev as oneDNN sees it. */
static dnnl_data_type_t ev_dt(const ls_engine *e, const ev *v)
{
    return v->q == Q_U8 ? dnnl_u8 : v->q == Q_S8 ? dnnl_s8 : ev_bf16(e, v) ? dnnl_bf16 : dnnl_f32;
}

/* Int8 type of a calibrated value: u8 when nothing negative was seen. */
static int q_type(const ls_value *gv) { return gv->range_lo >= 0 ? Q_U8 : Q_S8; }

/* A step array of n floats owned by the engine; NULL when out of memory. */
static float *owned_steps(ls_engine *e, int64_t n)
{
    if (e->n_steps_owned == e->cap_steps_owned) {
        int cap = e->cap_steps_owned ? 2 * e->cap_steps_owned : 32;
        float **p = realloc(e->steps_owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        e->steps_owned = p;
        e->cap_steps_owned = cap;
    }
    float *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    if (a) e->steps_owned[e->n_steps_owned++] = a;
    return a;
}

/* Per-channel steps of a calibrated value of c channels: u8 over [0, hi],
 * s8 over [-max|x|, max|x|] (a channel that was always 0 gets step 1). */
static const float *q_steps(ls_engine *e, const ls_value *gv, int64_t c)
{
    float *st = owned_steps(e, c);
    int u8 = q_type(gv) == Q_U8;
    for (int64_t k = 0; st && k < c; k++) {
        int per = gv->range_channels == c;
        float lo = per ? gv->chan_lo[k] : gv->range_lo, hi = per ? gv->chan_hi[k] : gv->range_hi;
        float top = ls_range_absmax(lo, hi);
        st[k] = top > 0 && isfinite(top) ? top / (u8 ? 255.0f : 127.0f) : 1.0f;
    }
    return st;
}

/* A reorder from src into dst (same shape; any of our layouts, element
 * types and int8 steps): how int8 values meet the engine's other ones. */
static int add_convert(ls_engine *e, int ni, int src, int dst, ls_error *err)
{
    int rc;
    /* oneDNN describes items that are one block each, not an nhwc slot. */
    if (!item_contig(&e->evs[src])) {
        int t = temp_like(e, src, e->evs[src].lay, err);
        if (t < 0) return t;
        if ((rc = add_copy(e, ni, src, t, 0, err))) return rc;
        src = t;
    }
    int out = dst;
    if (!item_contig(&e->evs[dst])) {
        dst = temp_like(e, dst, e->evs[dst].lay, err);
        if (dst < 0) return dst;
    }
    const ev *x = &e->evs[src], *y = &e->evs[dst];
    int per_item = x->n > 1 && !(dense(x) && dense(y));
    dnnl_dims_t d = {per_item ? 1 : x->n, x->c, x->h, x->w};
    float *scale = malloc((size_t)x->c * sizeof *scale);
    if (!scale) return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    for (int64_t k = 0; k < x->c; k++)
        scale[k] = (x->q ? x->qstep[k] : 1.0f) / (y->q ? y->qstep[k] : 1.0f);
    dnnl_memory_desc_t smd, dmd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    /* Created for the threads it runs on, as convs are (its scratchpad and
     * work split may be sized for them). */
    int threads = y->n * y->isize < SMALL_KERNEL_ELEMS ? 1 : e->threads;
    /* and the caller's count restored: a conv converting its source creates
     * its primitive after this, for the threads its descriptor was made for
     * (oneDNN 2.6 crashed building a brdgmm kernel for another count) */
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    rc = DN_STATUS(dnnl_memory_desc_init_by_tag(&smd, 4, d, ev_dt(e, x), tag_of(x->lay)));
    if (!rc) rc = DN_STATUS(dnnl_memory_desc_init_by_tag(&dmd, 4, d, ev_dt(e, y), tag_of(y->lay)));
    if (!rc) rc = DN_STATUS(dnnl_primitive_attr_create(&attr));
    if (!rc) rc = DN_STATUS(dnnl_primitive_attr_set_output_scales(attr, x->c, 1 << 1, scale));
    free(scale);
    if (!rc)
        rc = DN_STATUS(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (!rc)
        rc = DN_STATUS(
            dnnl_reorder_primitive_desc_create(&pd, &smd, e->dnnl, &dmd, e->dnnl, attr));
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) {
        omp_set_num_threads(saved_threads);
        return rc;
    }
    step *s = new_step(e, ST_CONVERT, ni, err);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        omp_set_num_threads(saved_threads);
        return LS_ERR_NOMEM;
    }
    s->src = src;
    s->dst = dst;
    s->per_item = per_item;
    s->n_exec = per_item ? (int)x->n : 1;
    s->threads = threads;
    s->src_md = smd;
    s->dst_md = dmd;
    s->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = dnnl_memory_desc_get_size(&s->scratch_md);
    if (sbytes > e->scratch_bytes) e->scratch_bytes = sbytes;
    snprintf(s->impl, sizeof s->impl, "%s", pd_impl(pd));
    rc = DN_STATUS(dnnl_primitive_create(&s->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    omp_set_num_threads(saved_threads);
    if (rc) return rc;
    return dst != out ? add_copy(e, ni, dst, out, 0, err) : LS_OK;
}

/* Conv node ni may run in int8: a 4-D conv, dense with at least 8 input
 * channels or depthwise, whose source was calibrated, with no logistic after
 * it (the output layer). In a network of several resolutions (its smallest
 * activations at most 1/16 of the largest's pixels), convs reading
 * the full-resolution activations stay float: there each pixel's error shows
 * in the output directly (on the demo UNet's real inputs, int8 there cost 1.0,
 * 1.8 and 3.1 of mean error per 255 in its first, second and last blocks, and
 * 0.8 in all the others together). The first conv, on the image's few
 * channels, is one of them. */
static int int8_candidate(const ls_engine *e, int ni)
{
    const ls_graph *g = e->g;
    const ls_node *n = &g->nodes[ni];
    if (!is_conv4(g, n) || n->attr.conv.fuse_sigmoid) return 0;
    const ls_value *x = &g->values[n->in[0]];
    int64_t IC = x->dims[1], OC = g->values[n->out].dims[1], G = n->attr.conv.group;
    int depthwise = G > 1 && G == IC && G == OC;
    if (x->dims[2] * x->dims[3] >= e->full_hw && e->multires) return 0;
    return x->has_range && ((G == 1 && IC >= 8) || depthwise);
}

/* Value v is stored as int8: an int8 conv writes it, only int8 convs read
 * it (as their source), it is calibrated, and it is no graph output, no
 * residual and no concat input (those our float kernels or post-ops read). */
static int int8_value(const ls_engine *e, int v)
{
    const ls_graph *g = e->g;
    int p = e->producer[v];
    if (p < 0 || !e->qconv[p] || !g->values[v].has_range || e->consumers[v] < 1 ||
        g->nodes[p].attr.conv.residual >= 0 || is_graph_output(g, v))
        return 0;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const ls_node *n = &g->nodes[ni];
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == v && (k != 0 || n->op != LS_OP_CONV || !e->qconv[ni])) return 0;
    }
    return 1;
}

/* Conv node ni in int8: weights quantized per output channel (s8, steps
 * max|w| / 127), the source quantized to its calibrated range (a convert
 * step unless its producer wrote it as int8), the destination int8 when
 * int8_value says so, else the engine's float or bfloat16. LS_ERR_UNSUPPORTED,
 * having added nothing, where oneDNN has no fast int8 kernel for it: the
 * caller compiles it in float. */
static int compile_conv_int8(ls_engine *e, int ni, ls_error *err)
{
    const ls_graph *g = e->g;
    const ls_node *n = &g->nodes[ni];
    const ls_conv_attr *a = &n->attr.conv;
    const ls_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]], *y = &g->values[n->out];
    int src = n->in[0], dst = n->out;
    const ev *sv = &e->evs[src], *dv = &e->evs[dst];
    /* Whole batches only: the int8 conv reads and writes dense temporaries
     * where the values are slots (oneDNN 2.6 crashed creating a per-item
     * int8 depthwise brdgmm kernel). */
    int64_t N = y->dims[0], OC = y->dims[1], per_oc = ls_value_count(w) / OC;
    int sq = sv->q ? sv->q : q_type(x);
    const float *sstep = sv->q ? sv->qstep : q_steps(e, x, x->dims[1]);
    float *scales = malloc((size_t)OC * sizeof *scales);
    float *wscale = malloc((size_t)OC * sizeof *wscale);
    float *bias = malloc((size_t)OC * sizeof *bias);
    float *wfold = malloc((size_t)ls_value_count(w) * sizeof *wfold);
    if (!sstep || !scales || !wscale || !bias || !wfold) {
        free(scales);
        free(wscale);
        free(bias);
        free(wfold);
        return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    }
    /* The source's step per channel folds into the weights (the conv then
     * sums int8 sources against weights that carry their scale), so one
     * output scale per channel is all oneDNN needs. */
    int bslot = ls_conv_bias_input(n);
    int64_t icg = w->dims[1], ocg = OC / a->group, khw = per_oc / icg;
    for (int64_t oc = 0; oc < OC; oc++) {
        float top = 0;
        for (int64_t i = 0; i < per_oc; i++) {
            int64_t ic = oc / ocg * icg + i / khw;
            /* A channel calibration never saw other than 0 (a dead ReLU)
             * contributes nothing: its step (1) must not set the scale. */
            int dead = x->range_channels == x->dims[1] && x->chan_lo[ic] == 0 && x->chan_hi[ic] == 0;
            float m = wfold[oc * per_oc + i] = dead ? 0.0f : w->data[oc * per_oc + i] * sstep[ic];
            top = fabsf(m) > top ? fabsf(m) : top;
        }
        float wstep = top > 0 ? top / 127.0f : 1.0f;
        wscale[oc] = 1.0f / wstep;
        scales[oc] = wstep / (dv->q ? dv->qstep[oc] : 1.0f);
        bias[oc] = (bslot >= 0 ? g->values[n->in[bslot]].data[oc] : 0.0f) / wstep;
    }
    /* int8 engines keep float between int8 values (engine.h) */
    conv_q q = {sq == Q_U8 ? dnnl_u8 : dnnl_s8,
                dv->q == Q_U8 ? dnnl_u8 : dv->q == Q_S8 ? dnnl_s8 : dnnl_f32, scales, OC};
    int threads = conv_flops(g, n) < SMALL_CONV_FLOPS ? 1 : e->threads;
    omp_set_num_threads(threads);
    /* A residual is summed in place (oneDNN's sum post-op into a copy of it):
     * a binary post-op's operand would need the layout oneDNN picks. */
    int res = a->residual >= 0 ? n->in[a->residual] : -1;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t sd = {N, x->dims[1], x->dims[2], x->dims[3]},
                dd = {N, y->dims[1], y->dims[2], y->dims[3]};
    /* oneDNN's own layouts (its int8 kernels are nhwc ones), kept if they are
     * ours: converts and copies meet the values' layouts. */
    int found = try_conv_pd(e, n, NULL, N, dnnl_format_tag_any, dnnl_format_tag_any, 1, NULL, 0,
                            0, &q, &pd) == dnnl_success &&
                strncmp(pd_impl(pd), "ref", 3) &&
                md_layout(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), sd) >= 0 &&
                md_layout(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), dd) >= 0;
    if (!found && pd) dnnl_primitive_desc_destroy(pd);
    free(scales);
    if (!found) {
        free(wscale);
        free(bias);
        free(wfold);
        return LS_ERR_UNSUPPORTED;
    }
    int src_lay = md_layout(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), sd);
    const dnnl_memory_desc_t *dst_md =
        dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_DST);
    int dst_lay = md_layout(dst_md, dd);
    int rc = LS_OK;
    /* The source as int8, in the conv's layout, each item one block. */
    int csrc = src;
    if (!sv->q || sv->lay != src_lay) {
        csrc = temp_like(e, src, src_lay, err);
        if (csrc < 0) rc = csrc;
        else {
            e->evs[csrc].q = sq;
            e->evs[csrc].qstep = sstep;
            rc = add_copy(e, ni, src, csrc, 0, err);
        }
    }
    int cdst = dst;
    if (!rc && (e->evs[dst].lay != dst_lay || !dense(&e->evs[dst]))) {
        cdst = temp_like(e, dst, dst_lay, err);
        if (cdst < 0) rc = cdst;
        else {
            e->evs[cdst].q = e->evs[dst].q;
            e->evs[cdst].qstep = e->evs[dst].qstep;
        }
    }
    if (!rc && res >= 0 && !same_storage(e, res, cdst))
        rc = add_copy(e, ni, res, cdst, 0, err);
    step *s = rc ? NULL : new_step(e, ST_CONV, ni, err);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        free(wscale);
        free(bias);
        free(wfold);
        return rc ? rc : LS_ERR_NOMEM;
    }
    fill_conv_step(e, s, pd, csrc, cdst, -1, 0, threads);
    s->int8 = 1;
    /* Weights: float to s8 by oneDNN's reorder, scaled per output channel
     * (mask: dim 0 of oihw, dims 0-1 of goihw). */
    dnnl_primitive_attr_t wattr = NULL;
    rc = DN_STATUS(dnnl_primitive_attr_create(&wattr));
    if (!rc)
        rc = DN_STATUS(
            dnnl_primitive_attr_set_output_scales(wattr, OC, a->group > 1 ? 3 : 1, wscale));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!rc && a->group > 1) {
        dnnl_dims_t wd = {a->group, OC / a->group, w->dims[1], w->dims[2], w->dims[3]};
        rc = upload(e, ni, wfold, 5, wd, dnnl_goihw, wmd, wattr, &s->wei, err);
    } else if (!rc) {
        dnnl_dims_t wd = {OC, w->dims[1], w->dims[2], w->dims[3]};
        rc = upload(e, ni, wfold, 4, wd, dnnl_oihw, wmd, wattr, &s->wei, err);
    }
    if (wattr) dnnl_primitive_attr_destroy(wattr);
    dnnl_dims_t bd = {OC};
    if (!rc)
        rc = upload(e, ni, bias, 1, bd, dnnl_a,
                    dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), NULL, &s->bias,
                    err);
    free(wscale);
    free(bias);
    free(wfold);
    if (!rc) rc = DN_STATUS(dnnl_primitive_create(&s->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    if (rc) return rc;
    s->flops = conv_flops(g, n);
    e->flops += s->flops;
    return cdst != dst ? add_copy(e, ni, cdst, dst, 0, err) : LS_OK;
}

static int compile_conv(ls_engine *e, int ni, ls_error *err)
{
    if (e->qconv[ni]) {
        int rc = compile_conv_int8(e, ni, err);
        if (rc != LS_ERR_UNSUPPORTED) return rc;
        /* No fast int8 kernel: float, and its output too. */
        e->qconv[ni] = 0;
        e->evs[e->g->nodes[ni].out].q = 0;
    }
    const ls_node *n = &e->g->nodes[ni];
    const ls_conv_attr *a = &n->attr.conv;
    const ls_node *dw = e->dw_of[ni] >= 0 ? &e->g->nodes[e->dw_of[ni]] : NULL;
    const ls_value *x = &e->g->values[n->in[0]], *w = &e->g->values[n->in[1]];
    const ls_value *y = &e->g->values[dw ? dw->out : n->out];
    int bslot = ls_conv_bias_input(n);
    int64_t N = y->dims[0];
    int src = n->in[0], dst = dw ? dw->out : n->out;
    const ev *sv = &e->evs[src], *dv = &e->evs[dst];
    /* An nhwc slot of a concat is read or written through a dense temporary
     * (oneDNN 2.6 has only reference code for strided nhwc), so it counts as
     * dense here. */
    int per_item = N > 1 && !(sv->kind == EV_ARENA && (dense(sv) || !item_contig(sv)) &&
                              (dense(dv) || !item_contig(dv)));
    int64_t nb = per_item ? 1 : N;
    /* The layouts the propagation gave the two values. */
    dnnl_format_tag_t src_tag = tag_of(sv->lay), dst_tag = tag_of(dv->lay);

    /* The values' layouts on both sides first; if that only has reference
     * code, let oneDNN choose and convert around it. */
    dnnl_primitive_desc_t pd = NULL;
    /* oneDNN sizes its work split (and scratchpad) for the threads current
     * when the primitive is created: create it for the threads it runs on. */
    int threads =
        conv_flops(e->g, n) + (dw ? conv_flops(e->g, dw) : 0) < SMALL_CONV_FLOPS ? 1 : e->threads;
    omp_set_num_threads(threads);
    /* oneDNN 2.6's fused 1x1+depthwise kernel corrupts memory when the 1x1
     * has no bias: fused pairs always get one (zeros if the model has none). */
    int with_bias = bslot >= 0 || dw;
    /* A residual that cannot be summed in place (it is read again later, as
     * a block's own input is) goes to a binary-add post-op where oneDNN has a
     * JIT kernel for it (AVX-512), rather than being copied into dst first. */
    int res = a->residual >= 0 ? n->in[a->residual] : -1;
    const ev *rv = res >= 0 ? &e->evs[res] : NULL;
    int binary = rv && !dw && rv->kind == EV_ARENA && !is_plain(rv) && rv->lay == dv->lay &&
                 !same_storage(e, res, dst) && (per_item ? item_contig(rv) : dense(rv));
    dnnl_status_t st = dnnl_unimplemented;
    if (binary) {
        st = try_conv_pd(e, n, dw, nb, src_tag, dst_tag, with_bias, NULL, 0, 1, NULL, &pd);
        if (st != dnnl_success || !strncmp(pd_impl(pd), "ref", 3)) {
            if (pd) dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            binary = 0;
        }
    }
    if (!binary) st = try_conv_pd(e, n, dw, nb, src_tag, dst_tag, with_bias, NULL, 0, 0, NULL, &pd);
    /* oneDNN 2.6 offers its fused 1x1+depthwise kernel on nhwc too, but it
     * computes garbage there (test_expand_depthwise: errors of 1e12 at batch
     * 3): fused pairs only between blocked layouts. */
    if (dw && (sv->lay == LAY_NHWC || dv->lay == LAY_NHWC)) st = dnnl_unimplemented;
    if (dw && (st != dnnl_success || !strncmp(pd_impl(pd), "ref", 3))) {
        /* No fast fused kernel: run the two convs apart. */
        if (pd) dnnl_primitive_desc_destroy(pd);
        e->skip[e->dw_of[ni]] = 0;
        e->dw_of[ni] = -1;
        return compile_conv(e, ni, err);
    }
    /* A plain source (few input channels: the first conv of a network), then
     * whatever oneDNN likes, if both sides are layouts we keep. */
    const dnnl_format_tag_t alt_src[2] = {dnnl_nchw, dnnl_format_tag_any};
    const dnnl_format_tag_t alt_dst[2] = {dst_tag, dnnl_format_tag_any};
    for (int k = 0; k < 2 && st == dnnl_success && !strncmp(pd_impl(pd), "ref", 3); k++) {
        dnnl_primitive_desc_t alt = NULL;
        if (try_conv_pd(e, n, NULL, nb, alt_src[k], alt_dst[k], bslot >= 0, NULL, 0, 0, NULL, &alt) ==
            dnnl_success) {
            dnnl_dims_t sd = {nb, x->dims[1], x->dims[2], x->dims[3]},
                        dd = {nb, y->dims[1], y->dims[2], y->dims[3]};
            int sl = md_layout(dnnl_primitive_desc_query_md(alt, dnnl_query_src_md, 0), sd),
                dl = md_layout(dnnl_primitive_desc_query_md(alt, dnnl_query_dst_md, 0), dd);
            /* The blocked policy is the engine as it was: no nhwc even here
             * (it takes the float fallback below instead). */
            int kept = sl >= 0 && dl >= 0 &&
                       !(e->layout == LS_LAYOUT_BLOCKED && (sl == LAY_NHWC || dl == LAY_NHWC));
            if (strncmp(pd_impl(alt), "ref", 3) && kept) {
                dnnl_primitive_desc_destroy(pd);
                pd = alt;
            } else {
                dnnl_primitive_desc_destroy(alt);
            }
        }
    }
    /* oneDNN's AVX-512 JIT convs take at most kernel-1 padding (its AVX2 ones
     * take more): move the rest into a zero border written around the source,
     * the same sums with the same rounding. */
    conv_prepad pre = {{0, 0, 0, 0}};
    if (st == dnnl_success && !strncmp(pd_impl(pd), "ref", 3) && !dw) {
        int moved = 0;
        for (int k = 0; k < 4; k++) {
            int kk = a->kernel[k % 2] - 1;
            pre.pad[k] = a->pad[k] > kk ? a->pad[k] - kk : 0;
            moved |= pre.pad[k];
        }
        dnnl_primitive_desc_t padded = NULL;
        if (moved && try_conv_pd(e, n, NULL, nb, src_tag, dst_tag, with_bias, &pre, 0, 0, NULL,
                                 &padded) == dnnl_success &&
            strncmp(pd_impl(padded), "ref", 3)) {
            dnnl_primitive_desc_destroy(pd);
            pd = padded;
        } else {
            if (padded) dnnl_primitive_desc_destroy(padded);
            memset(&pre, 0, sizeof pre);
        }
    }
    /* Native bf16 without a bf16 kernel for this shape (a 1-channel first
     * conv): a float conv, converting around it, beats reference code. */
    int f32 = 0;
    for (int k = 0; k < 2 && e->native_bf16 && !dw && st == dnnl_success &&
                    !strncmp(pd_impl(pd), "ref", 3);
         k++) {
        dnnl_primitive_desc_t alt = NULL;
        if (try_conv_pd(e, n, NULL, nb, k ? src_tag : dnnl_nchw, dst_tag, with_bias, NULL, 1, 0, NULL,
                        &alt) == dnnl_success &&
            strncmp(pd_impl(alt), "ref", 3)) {
            dnnl_primitive_desc_destroy(pd);
            pd = alt;
            f32 = 1;
        } else if (alt) {
            dnnl_primitive_desc_destroy(alt);
        }
    }
    if (st != dnnl_success) return compile_ref(e, ni, err);

    dnnl_dims_t sd = {nb, x->dims[1], x->dims[2] + pre.pad[0] + pre.pad[2],
                      x->dims[3] + pre.pad[1] + pre.pad[3]},
                dd = {nb, y->dims[1], y->dims[2], y->dims[3]};
    const dnnl_memory_desc_t *dst_md =
        dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_DST);
    int src_lay = md_layout(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), sd);
    int dst_lay = md_layout(dst_md, dd);
    int rc = LS_OK;
    if (src_lay < 0 || dst_lay < 0) { /* only a layout we do not keep: cannot happen (the tries
                                         above ask for ours, "any" only if it gives ours) */
        dnnl_primitive_desc_destroy(pd);
        return ls_error_set(err, LS_ERR_INTERNAL, "node '%s': oneDNN chose a layout we do not keep",
                            node_name(e, ni));
    }
    int csrc = pre.pad[0] | pre.pad[1] | pre.pad[2] | pre.pad[3]
                   ? add_border(e, ni, src, src_lay, pre.pad, err)
               : f32 && src_lay != 1
                   ? float_temp(e, ni, src, src_lay, err)
                   : in_layout(e, ni, src, src_lay, per_item ? NEED_ITEM : NEED_DENSE, err);
    if (csrc < 0) rc = csrc;
    int cdst = dst;
    if (!rc && (e->evs[dst].lay != dst_lay || (f32 && dst_lay != 1) || !item_contig(&e->evs[dst]))) {
        cdst = temp_like(e, dst, dst_lay, err);
        if (cdst < 0) rc = cdst;
        else e->evs[cdst].f32 = f32;
    }
    if (!rc && a->residual >= 0 && !binary && !same_storage(e, n->in[a->residual], cdst))
        rc = add_copy(e, ni, n->in[a->residual], cdst, 0, err);
    step *s = rc ? NULL : new_step(e, ST_CONV, ni, err);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return rc ? rc : LS_ERR_NOMEM;
    }
    fill_conv_step(e, s, pd, csrc, cdst, binary ? res : -1, per_item ? (int)N : 0, threads);

    rc = upload_weights(e, ni, w, a->group,
                        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &s->wei, err);
    if (!rc && with_bias) rc = upload_bias(e, ni, n, pd, dnnl_query_weights_md, 1, &s->bias, err);
    if (!rc && dw) {
        int arg = DNNL_ARG_ATTR_POST_OP_DW;
        rc = upload_weights(
            e, ni, &e->g->values[dw->in[1]], dw->attr.conv.group,
            dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg | DNNL_ARG_WEIGHTS),
            &s->dw_wei, err);
        /* The fused depthwise always takes a bias too. */
        if (!rc)
            rc = upload_bias(e, ni, dw, pd, dnnl_query_exec_arg_md, arg | DNNL_ARG_BIAS,
                             &s->dw_bias, err);
        if (!rc) snprintf(s->impl + strlen(s->impl), sizeof s->impl - strlen(s->impl), "+dw");
    }
    if (!rc) rc = DN_STATUS(dnnl_primitive_create(&s->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    if (rc) return rc;
    s->flops = conv_flops(e->g, n) + (dw ? conv_flops(e->g, dw) : 0);
    e->flops += s->flops;
    return cdst != dst ? add_copy(e, ni, cdst, dst, 0, err) : LS_OK;
}

/* Elementwise own kernels read src in dst's layout (converted if needed). */
static int compile_elementwise(ls_engine *e, int ni, ls_error *err)
{
    const ls_node *n = &e->g->nodes[ni];
    int dst = n->out;
    int lay = e->evs[dst].lay;
    int src = in_layout(e, ni, n->in[0], lay, NEED_VIEW, err);
    if (src < 0) return src;
    step *s;
    switch (n->op) {
    case LS_OP_BATCHNORM: {
        s = new_step(e, ST_AFFINE, ni, err);
        if (!s) return LS_ERR_NOMEM;
        int64_t C = e->evs[dst].c, cpad = ls_round_up(C, cb_of(lay));
        s->scale = calloc((size_t)cpad, sizeof(float));
        s->shift = calloc((size_t)cpad, sizeof(float));
        if (!s->scale || !s->shift) return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
        const ls_graph *g = e->g;
        const float *gam = g->values[n->in[1]].data, *bet = g->values[n->in[2]].data;
        const float *mean = g->values[n->in[3]].data, *var = g->values[n->in[4]].data;
        for (int64_t c = 0; c < C; c++) {
            s->scale[c] = gam[c] / sqrtf(var[c] + n->attr.bn_eps);
            s->shift[c] = bet[c] - mean[c] * s->scale[c];
        }
        break;
    }
    case LS_OP_RELU:
    case LS_OP_SIGMOID:
        s = new_step(e, ST_UNARY, ni, err);
        if (!s) return LS_ERR_NOMEM;
        s->unary = n->op == LS_OP_RELU ? LS_K_RELU : LS_K_SIGMOID;
        break;
    default: return ls_error_set(err, LS_ERR_INTERNAL, "engine: not elementwise");
    }
    s->src = src;
    s->dst = dst;
    return LS_OK;
}

static int compile_add(ls_engine *e, int ni, ls_error *err)
{
    const ls_node *n = &e->g->nodes[ni];
    const ls_value *a = &e->g->values[n->in[0]], *b = &e->g->values[n->in[1]];
    if (a->ndim != b->ndim || memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
        return compile_ref(e, ni, err); /* broadcast */
    int lay = e->evs[n->out].lay;
    int sa = in_layout(e, ni, n->in[0], lay, NEED_VIEW, err);
    if (sa < 0) return sa;
    int sb = in_layout(e, ni, n->in[1], lay, NEED_VIEW, err);
    if (sb < 0) return sb;
    step *s = new_step(e, ST_ADD, ni, err);
    if (!s) return LS_ERR_NOMEM;
    s->src = sa;
    s->src2 = sb;
    s->dst = n->out;
    return LS_OK;
}

static int concat_axis(const ls_graph *g, const ls_node *n)
{
    int nd = g->values[n->out].ndim;
    return n->attr.concat_axis < 0 ? n->attr.concat_axis + nd : n->attr.concat_axis;
}

static int compile_concat(ls_engine *e, int ni, ls_error *err)
{
    const ls_node *n = &e->g->nodes[ni];
    if (e->g->values[n->out].ndim != 4 || concat_axis(e->g, n) != 1) return compile_ref(e, ni, err);
    int64_t c_off = 0;
    for (int k = 0; k < n->n_in; k++) {
        int v = n->in[k];
        const ev *x = &e->evs[v];
        /* Inputs placed in their slot by their producer need nothing. */
        int64_t slot_off = x->lay == LAY_NHWC ? c_off : c_off * x->h * x->w;
        if (!(x->alias == n->out && x->alias_off == slot_off)) {
            int rc = add_copy(e, ni, v, n->out, c_off, err);
            if (rc) return rc;
        }
        c_off += x->c;
    }
    return LS_OK;
}

/* Spatial-only pads of a 4-D Pad node, or 0 if it pads N or C. */
static int spatial_pad(const ls_graph *g, const ls_node *n)
{
    const ls_value *x = &g->values[n->in[0]];
    const int64_t *p = n->attr.pad.pads;
    return x->ndim == 4 && !p[0] && !p[1] && !p[4] && !p[5];
}

/* Resize node ni writes straight into the Pad that consumes it? */
static int resize_folds_into_pad(const ls_engine *e, int ni)
{
    const ls_graph *g = e->g;
    const ls_node *n = &g->nodes[ni];
    int out = n->out;
    if (n->op != LS_OP_RESIZE || e->consumers[out] != 1) return 0;
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == out) return 0;
    const ls_node *c = &g->nodes[e->last_consumer[out]];
    return c->op == LS_OP_PAD && c->in[0] == out && spatial_pad(g, c);
}

/* Resize (node rz, may be -1) then pad (node pd, may be -1) as one step. */
static int compile_resize_pad(ls_engine *e, int ni, int rz, int pd, ls_error *err)
{
    const ls_graph *g = e->g;
    int src = g->nodes[rz >= 0 ? rz : pd].in[0];
    int dst = g->nodes[pd >= 0 ? pd : rz].out;
    /* mid: the tensor between the two (the resize's output, or the pad's input) */
    const ls_value *x = &g->values[src], *mid = rz >= 0 ? &g->values[g->nodes[rz].out] : x;
    const ls_value *y = &g->values[dst];
    const int64_t *p = pd >= 0 ? g->nodes[pd].attr.pad.pads : NULL;
    const ls_resize_attr *a = rz >= 0 ? &g->nodes[rz].attr.resize : NULL;
    int s_in = in_layout(e, ni, src, e->evs[dst].lay, NEED_VIEW, err);
    if (s_in < 0) return s_in;
    step *s = new_step(e, ST_RESIZE, ni, err);
    if (!s) return LS_ERR_NOMEM;
    s->src = s_in;
    s->dst = dst;
    s->border = pd >= 0 ? g->nodes[pd].attr.pad.value : 0.0f;
    if (build_taps(&s->th, y->dims[2], p ? p[2] : 0, mid->dims[2], x->dims[2], a,
                   a ? a->scale[0] : 0) ||
        build_taps(&s->tw, y->dims[3], p ? p[3] : 0, mid->dims[3], x->dims[3], a,
                   a ? a->scale[1] : 0))
        return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    return LS_OK;
}

/* A reshape keeps the plain (NCHW) bytes: src is copied, converted to
 * plain, into dst's buffer viewed with src's shape (or, when dst is blocked,
 * into a plain temporary that is then converted into dst). */
static int compile_reshape(ls_engine *e, int ni, ls_error *err)
{
    const ls_node *n = &e->g->nodes[ni];
    int src = n->in[0], dst = n->out;
    if (e->evs[dst].alias == src) return LS_OK; /* a view */
    int plain = is_plain(&e->evs[dst]) && dense(&e->evs[dst]) ? dst : temp_like(e, dst, 1, err);
    if (plain < 0) return plain;
    int view = new_ev(e, err);
    if (view < 0) return view;
    ev *v = &e->evs[view];
    *v = e->evs[src];
    v->kind = EV_ARENA;
    v->lay = 1;
    v->isize = v->c * v->h * v->w;
    v->alias = plain;
    v->alias_off = 0;
    v->flat = 1;
    v->root = view;
    v->first = v->last = -1;
    int rc = add_copy(e, ni, src, view, 0, err);
    if (!rc && plain != dst) rc = add_copy(e, ni, plain, dst, 0, err);
    return rc;
}

static int compile_node(ls_engine *e, int ni, ls_error *err)
{
    const ls_graph *g = e->g;
    const ls_node *n = &g->nodes[ni];
    switch (n->op) {
    case LS_OP_CONV: return compile_conv(e, ni, err);
    /* Elementwise kernels are float-only: in native bf16 the (rare) unfused
     * ones run as reference ops on float temporaries. */
    case LS_OP_BATCHNORM:
        if (g->values[n->in[0]].ndim != 4 || e->native_bf16) return compile_ref(e, ni, err);
        return compile_elementwise(e, ni, err);
    case LS_OP_RELU:
    case LS_OP_SIGMOID:
        return e->native_bf16 ? compile_ref(e, ni, err) : compile_elementwise(e, ni, err);
    case LS_OP_ADD: return e->native_bf16 ? compile_ref(e, ni, err) : compile_add(e, ni, err);
    case LS_OP_CONCAT: return compile_concat(e, ni, err);
    case LS_OP_RESIZE: return compile_resize_pad(e, ni, ni, -1, err);
    case LS_OP_PAD: {
        if (!spatial_pad(g, n)) return compile_ref(e, ni, err);
        int prod = -1;
        for (int k = 0; k < ni; k++)
            if (g->nodes[k].out == n->in[0]) prod = k;
        return compile_resize_pad(e, ni, prod >= 0 && e->skip[prod] ? prod : -1, ni, err);
    }
    case LS_OP_RESHAPE: return compile_reshape(e, ni, err);
    }
    return ls_error_set(err, LS_ERR_UNSUPPORTED, "node '%s': unsupported op", node_name(e, ni));
}

/* ---- compile: layouts ---- */

/* The layouts oneDNN picks for conv node ni's source and destination when
 * left to it (format_tag_any, this precision, this CPU's ISA), as layout
 * codes; -1 where it has only reference code or a layout we do not keep. */
static void conv_pref(ls_engine *e, int ni, int *src_lay, int *dst_lay)
{
    const ls_node *n = &e->g->nodes[ni];
    const ls_value *x = &e->g->values[n->in[0]], *y = &e->g->values[n->out];
    *src_lay = *dst_lay = -1;
    /* oneDNN's choice may depend on the threads it is created for. */
    omp_set_num_threads(conv_flops(e->g, n) < SMALL_CONV_FLOPS ? 1 : e->threads);
    dnnl_primitive_desc_t pd = NULL;
    /* An int8 conv as it will run: int8 source, float or bf16 destination. */
    float one = 1.0f;
    conv_q q = {q_type(x) == Q_U8 ? dnnl_u8 : dnnl_s8,
                e->native_bf16 ? dnnl_bf16 : dnnl_f32, &one, 1};
    if (try_conv_pd(e, n, NULL, y->dims[0], dnnl_format_tag_any, dnnl_format_tag_any,
                    ls_conv_bias_input(n) >= 0 || e->qconv[ni], NULL, 0, 0,
                    e->qconv[ni] ? &q : NULL, &pd) == dnnl_success &&
        strncmp(pd_impl(pd), "ref", 3)) {
        dnnl_dims_t sd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]},
                    dd = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
        *src_lay = md_layout(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), sd);
        *dst_lay = md_layout(dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), dd);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
}

/* Layout propagation: every 4-D activation gets one layout (e->vlay), so
 * that a reorder is needed only where two steps really disagree.
 *  1. each conv says what it wants on both sides (the policy: oneDNN's
 *     format_tag_any choice, or a fixed layout);
 *  2. a conv's output takes the layout its conv writes; a graph input, a
 *     concat, a resize/pad and a reshape take what the first conv reading it
 *     wants (else: a resize/pad keeps its input's layout, the rest the layout
 *     most convs write); elementwise ops keep their input's layout (our
 *     kernels run on any);
 *  3. concat rule: a channel concat is one buffer in one layout, the one its
 *     consumer conv reads (it reads the whole buffer, its producers write
 *     only their slot). Producers that are our kernels (resize, pad, copies,
 *     elementwise) take the concat's layout and write straight into their
 *     slot; a conv producer keeps its own choice and writes its slot in
 *     place only where oneDNN can (a blocked slot starting at a whole block,
 *     see plan_aliases), else the concat copies it in. Walked from the last
 *     node back so that a concat inside a concat follows the outer one.
 * Whatever is chosen, compile_conv asks oneDNN for these layouts and falls
 * back (with reorders) where it has no fast kernel for them. */
static int assign_layouts(ls_engine *e, ls_error *err)
{
    const ls_graph *g = e->g;
    int *psrc = malloc(((size_t)g->n_nodes + 1) * sizeof *psrc);
    int *pdst = malloc(((size_t)g->n_nodes + 1) * sizeof *pdst);
    if (!psrc || !pdst) {
        free(psrc);
        free(pdst);
        return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    }
    int votes[17] = {0}, convs = 0;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const ls_node *n = &g->nodes[ni];
        psrc[ni] = pdst[ni] = -1;
        if (!is_conv4(g, n)) continue;
        switch (e->layout) {
        case LS_LAYOUT_NHWC: psrc[ni] = pdst[ni] = LAY_NHWC; break;
        case LS_LAYOUT_MIXED: psrc[ni] = pdst[ni] = convs % 2 ? e->cb : LAY_NHWC; break;
        case LS_LAYOUT_ANY: conv_pref(e, ni, &psrc[ni], &pdst[ni]); break;
        default: psrc[ni] = pdst[ni] = e->cb; break;
        }
        convs++;
        if (pdst[ni] >= 0) votes[pdst[ni]]++;
    }
    /* The layout of values no conv decides: ANY's is the one most convs
     * write (ties: blocked); MIXED's nhwc (its convs make the blocked ones). */
    int def = e->layout == LS_LAYOUT_NHWC || e->layout == LS_LAYOUT_MIXED ? LAY_NHWC : e->cb;
    static const int cands[3] = {LAY_NHWC, 8, 16};
    for (int k = 0; k < 3 && e->layout == LS_LAYOUT_ANY; k++)
        if (votes[cands[k]] > votes[def]) def = cands[k];
    for (int i = 0; i < g->n_values; i++) e->vlay[i] = 1;
    /* first conv reading value v as its source: its wish, or -1 */
#define READER_WANTS(v, out)                                                                       \
    do {                                                                                           \
        out = -1;                                                                                  \
        for (int k_ = 0; k_ < g->n_nodes && out < 0; k_++)                                         \
            if (g->nodes[k_].op == LS_OP_CONV && g->nodes[k_].in[0] == (v)) out = psrc[k_];        \
    } while (0)
    for (int k = 0; k < g->n_inputs; k++) {
        int v = g->inputs[k], want;
        if (g->values[v].ndim != 4) continue;
        READER_WANTS(v, want);
        e->vlay[v] = want >= 0 ? want : def;
    }
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const ls_node *n = &g->nodes[ni];
        int out = n->out, want;
        if (g->values[out].ndim != 4) continue;
        int in0 = n->in[0] >= 0 && g->values[n->in[0]].ndim == 4 && !g->values[n->in[0]].data
                      ? e->vlay[n->in[0]]
                      : def;
        switch (n->op) {
        case LS_OP_CONV: e->vlay[out] = pdst[ni] >= 0 ? pdst[ni] : def; break;
        case LS_OP_RESIZE:
        case LS_OP_PAD:
            READER_WANTS(out, want);
            e->vlay[out] = want >= 0 ? want : in0;
            break;
        case LS_OP_CONCAT:
        case LS_OP_RESHAPE:
            READER_WANTS(out, want);
            e->vlay[out] = want >= 0 ? want : def;
            break;
        default: e->vlay[out] = in0; break; /* elementwise */
        }
    }
#undef READER_WANTS
    for (int ni = g->n_nodes - 1; ni >= 0; ni--) {
        const ls_node *n = &g->nodes[ni];
        if (n->op != LS_OP_CONCAT || g->values[n->out].ndim != 4 || concat_axis(g, n) != 1)
            continue;
        for (int k = 0; k < n->n_in; k++) {
            int v = n->in[k], p = e->producer[v];
            if (!g->values[v].data && (p < 0 || g->nodes[p].op != LS_OP_CONV))
                e->vlay[v] = e->vlay[n->out];
        }
    }
    free(psrc);
    free(pdst);
    return LS_OK;
}

/* ---- compile: storage ---- */

static void plan_aliases(ls_engine *e)
{
    const ls_graph *g = e->g;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const ls_node *n = &g->nodes[ni];
        if (n->op == LS_OP_CONCAT && g->values[n->out].ndim == 4 && concat_axis(g, n) == 1) {
            const ev *cat = &e->evs[n->out];
            int64_t c_off = 0;
            for (int k = 0; k < n->n_in; k++) {
                ev *x = &e->evs[n->in[k]];
                int dup = 0;
                for (int j = 0; j < k; j++) dup |= n->in[j] == n->in[k];
                int is_last = k == n->n_in - 1;
                /* Blocked: a slot starts at a whole channel block (and only
                 * the last may end inside one). nhwc: any channel offset, but
                 * not for a conv's output: oneDNN 2.6 runs a conv writing a
                 * strided nhwc slot as reference code, so the concat copies
                 * that input into its slot (the rule: a concat's layout is
                 * what its consumer conv wants, see assign_layouts; its
                 * producers follow where they can write it in place). */
                int in_place;
                if (x->lay == LAY_NHWC) {
                    int p = g->values[n->in[k]].producer;
                    in_place = p < 0 || g->nodes[p].op != LS_OP_CONV;
                } else {
                    int cb = cb_of(x->lay);
                    in_place = c_off % cb == 0 && (x->c % cb == 0 || is_last);
                }
                if (x->kind == EV_ARENA && x->alias < 0 && !dup && x->lay == cat->lay && in_place) {
                    x->alias = n->out;
                    x->alias_off = x->lay == LAY_NHWC ? c_off : c_off * x->h * x->w;
                }
                c_off += x->c;
            }
        }
    }
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const ls_node *n = &g->nodes[ni];
        if (n->op == LS_OP_CONV && n->attr.conv.residual >= 0) {
            int r = n->in[n->attr.conv.residual];
            ev *x = &e->evs[r], *y = &e->evs[n->out];
            if (x->kind == EV_ARENA && x->alias < 0 && r != n->in[0] && e->last_consumer[r] == ni &&
                !is_graph_output(g, r) && x->lay == y->lay && x->isize == y->isize && x->n == y->n)
                x->alias = n->out;
        }
        if (n->op == LS_OP_RESHAPE) {
            ev *x = &e->evs[n->in[0]], *y = &e->evs[n->out];
            if (x->kind == EV_ARENA && is_plain(x) && is_plain(y) && x->n == y->n &&
                x->isize == y->isize && y->alias < 0)
                y->alias = n->in[0];
        }
    }
}

static void resolve(ls_engine *e)
{
    for (int i = 0; i < e->n_evs; i++) {
        ev *v = &e->evs[i];
        if (v->kind != EV_ARENA) {
            v->root = i;
            v->off = 0;
            v->istride = v->isize;
            v->ps = v->c;
            continue;
        }
        int r = i;
        int64_t off = 0;
        while (e->evs[r].alias >= 0) {
            off += e->evs[r].alias_off;
            r = e->evs[r].alias;
        }
        v->root = r;
        v->off = off;
        v->istride = v->flat ? v->isize : e->evs[r].isize;
        v->ps = e->evs[r].c; /* nhwc aliases are all nhwc: concat slots and in-place sums */
    }
}

/* ---- program ---- */

void ls_engine_lower_free(ls_engine *e)
{
    if (!e) return;
    for (int i = 0; i < e->n_steps; i++) {
        step *s = &e->steps[i];
        if (s->prim) dnnl_primitive_destroy(s->prim);
        if (s->wei) dnnl_memory_destroy(s->wei);
        if (s->bias) dnnl_memory_destroy(s->bias);
        if (s->dw_wei) dnnl_memory_destroy(s->dw_wei);
        if (s->dw_bias) dnnl_memory_destroy(s->dw_bias);
        free_taps(&s->th);
        free_taps(&s->tw);
        free(s->scale);
        free(s->shift);
    }
    if (e->stream) dnnl_stream_destroy(e->stream);
    if (e->dnnl) dnnl_engine_destroy(e->dnnl);
    free(e->steps);
    free(e->evs);
    free(e->consumers);
    free(e->last_consumer);
    free(e->producer);
    free(e->vlay);
    free(e->skip);
    free(e->dw_of);
    free(e->qconv);
    for (int i = 0; i < e->n_steps_owned; i++) free(e->steps_owned[i]);
    free(e->steps_owned);
    free(e);
}

static int setup_values(ls_engine *e, ls_error *err)
{
    const ls_graph *g = e->g;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const ls_node *n = &g->nodes[ni];
        e->producer[n->out] = ni;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) {
                e->consumers[n->in[k]]++;
                e->last_consumer[n->in[k]] = ni;
            }
    }
    for (int k = 0; k < g->n_outputs; k++) e->consumers[g->outputs[k]]++;
    int64_t smallest = INT64_MAX;
    for (int i = 0; i < g->n_values; i++) {
        const ls_value *v = &g->values[i];
        if (v->ndim != 4 || v->data) continue;
        int64_t hw = v->dims[2] * v->dims[3];
        e->full_hw = hw > e->full_hw ? hw : e->full_hw;
        smallest = hw < smallest ? hw : smallest;
    }
    /* several resolutions: two 2x downsamplings or more */
    e->multires = smallest <= e->full_hw / 16;
    int n_int8 = 0;
    for (int ni = 0; e->int8 && ni < g->n_nodes; ni++) n_int8 += e->qconv[ni] = int8_candidate(e, ni);
    if (e->int8 && !n_int8)
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "int8: no convolution has a calibrated source range (calibrate the "
                            "model first: lipsync quantize)");
    int rc = assign_layouts(e, err);
    if (rc) return rc;
    for (int i = 0; i < g->n_values; i++) {
        int v = new_ev(e, err);
        if (v < 0) return v;
        const ls_value *gv = &g->values[i];
        ev *x = &e->evs[v];
        if (gv->data) {
            x->kind = EV_CONST;
            x->cdata = gv->data;
            shape_ev(x, gv, 1);
        } else {
            x->kind = EV_ARENA;
            shape_ev(x, gv, gv->ndim == 4 ? e->vlay[i] : 1);
            if (e->int8 && int8_value(e, i)) {
                x->q = q_type(gv);
                if (!(x->qstep = q_steps(e, gv, x->c)))
                    return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
            }
        }
        for (int d = 0; d < gv->ndim; d++)
            if (gv->dims[d] < 1 || gv->dims[d] > ((int64_t)1 << 31))
                return ls_error_set(err, LS_ERR_FORMAT, "value '%s' has a bad dimension",
                                    gv->name ? gv->name : "?");
    }
    return LS_OK;
}

static int compile(ls_engine *e, ls_error *err)
{
    const ls_graph *g = e->g;
    int ni = -1;
    int rc = setup_values(e, err);
    if (rc) return rc;
    for (int k = 0; k < g->n_nodes; k++) e->skip[k] = resize_folds_into_pad(e, k);
    for (int k = 0; k < g->n_nodes; k++) {
        e->dw_of[k] = dw_partner(e, k);
        if (e->dw_of[k] >= 0) e->skip[e->dw_of[k]] = 1;
    }
    /* Graph inputs and outputs are the caller's dense NCHW buffers. */
    int ext_in[LS_NN_MAX_INPUTS], ext_out[LS_NN_MAX_INPUTS];
    for (int k = 0; k < g->n_inputs + g->n_outputs; k++) {
        int is_in = k < g->n_inputs;
        int gv = is_in ? g->inputs[k] : g->outputs[k - g->n_inputs];
        int v = new_ev(e, err);
        if (v < 0) return v;
        ev *x = &e->evs[v];
        shape_ev(x, &g->values[gv], 1);
        x->kind = is_in ? EV_INPUT : EV_OUTPUT;
        x->ext = is_in ? k : k - g->n_inputs;
        if (is_in)
            ext_in[k] = v;
        else
            ext_out[k - g->n_inputs] = v;
    }
    plan_aliases(e);
    resolve(e);
    for (int k = 0; k < g->n_inputs; k++)
        if ((rc = add_copy(e, -1, ext_in[k], g->inputs[k], 0, err))) return rc;
    for (ni = 0; ni < g->n_nodes; ni++) {
        if (e->skip[ni]) continue;
        int before = e->n_evs;
        if ((rc = compile_node(e, ni, err))) return rc;
        if (e->n_evs != before) resolve(e); /* new temporaries */
        int out = g->nodes[e->dw_of[ni] >= 0 ? e->dw_of[ni] : ni].out;
        int is_output = 0;
        for (int k = 0; k < g->n_outputs; k++) is_output |= g->outputs[k] == out;
        if (e->prec == LS_PREC_BF16 && !e->native_bf16 && !is_output) {
            step *s = new_step(e, ST_ROUND, ni, err);
            if (!s) return LS_ERR_NOMEM;
            s->dst = out;
        }
    }
    for (int k = 0; k < g->n_outputs; k++)
        if ((rc = add_copy(e, -1, g->outputs[k], ext_out[k], 0, err))) return rc;
    for (int i = 0; i < e->n_steps; i++) {
        step *s = &e->steps[i];
        const ev *v = &e->evs[s->dst >= 0 ? s->dst : s->src];
        if (s->kind != ST_CONV && s->kind != ST_CONVERT)
            s->threads = v->n * v->isize < SMALL_KERNEL_ELEMS ? 1 : e->threads;
    }
    resolve(e);
    return LS_OK;
}

/* LS_LAYOUT_AUTO: which policy runs on this CPU class, by measurement.
 * - AVX-512 (with or without BF16), no AMX: blocked, in fp32 and bf16.
 *   bench/engine_ab.py on the UNet test model, 2 threads, 2-core AVX-512
 *   BF16 EPYC (Zen 5 class) shared with other jobs (load 8-12): any (nhwc,
 *   oneDNN's brgemm kernels) / blocked, best runs of 30: 0.84 (fp32 b1),
 *   0.81 (fp32 b8), 0.83 (bf16 b1), 0.80 (bf16 b8), medians 0.88-1.04; a
 *   second pass of 20: 0.69 (bf16 b1), 1.04 (fp32 b8; median 1.23). Not
 *   faster, so blocked stays (main's plan, step for step): on nhwc the
 *   1x1+depthwise pairs cannot fuse, conv-made skips are copied into their
 *   concat, and the AVX-512 brgemm kernels are no faster here than the
 *   blocked JIT ones. Worth remeasuring on an idle host (fp32 batch 8).
 * - AVX2: any gives nChw8c, the blocked layout, for all but a first conv's
 *   few-channel source: blocked.
 * - AMX: any. oneDNN 2.6 runs its AMX kernels only on layouts it picks (nhwc);
 *   issue 15's single-conv figures there: bf16 3x3 5,054 GFLOP/s, 1x1 1,724,
 *   against fp32's 395 and 347. Not measured end to end (no AMX machine). */
static ls_layout_policy auto_layout(dnnl_cpu_isa_t isa, ls_precision precision)
{
    int amx = (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
    return amx || precision == LS_PREC_INT8 ? LS_LAYOUT_ANY : LS_LAYOUT_BLOCKED;
}

int ls_engine_lower(const ls_graph *g, ls_precision precision, int threads,
                    ls_layout_policy layout, ls_engine **out, ls_error *err)
{
    *out = NULL;
    int rc;
    ls_engine *e = calloc(1, sizeof *e);
    if (!e) return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    e->g = g;
    e->prec = precision;
    e->threads = threads;
    /* The block oneDNN's JIT convolutions use on this CPU (ONEDNN_MAX_CPU_ISA
     * lowers it, e.g. to test the AVX2 layout on an AVX-512 machine). */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int avx512 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
    e->cb = avx512 ? 16 : 8;
    e->block_tag = avx512 ? dnnl_nChw16c : dnnl_nChw8c;
    e->native_bf16 = precision == LS_PREC_BF16 &&
                     (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    e->int8 = precision == LS_PREC_INT8;
    e->policy = layout;
    e->layout = layout == LS_LAYOUT_AUTO ? auto_layout(isa, precision) : layout;
    e->consumers = calloc((size_t)g->n_values + 1, sizeof(int));
    e->last_consumer = calloc((size_t)g->n_values + 1, sizeof(int));
    e->producer = malloc(((size_t)g->n_values + 1) * sizeof(int));
    e->vlay = calloc((size_t)g->n_values + 1, sizeof(int));
    e->skip = calloc((size_t)g->n_nodes + 1, sizeof(int));
    e->dw_of = calloc((size_t)g->n_nodes + 1, sizeof(int));
    e->qconv = calloc((size_t)g->n_nodes + 1, sizeof(int));
    if (e->producer)
        for (int i = 0; i < g->n_values; i++) e->producer[i] = -1;
    if (!e->consumers || !e->last_consumer || !e->producer || !e->vlay || !e->skip || !e->dw_of ||
        !e->qconv) {
        ls_engine_lower_free(e);
        return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    }
    if (dnnl_engine_create(&e->dnnl, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&e->stream, e->dnnl, dnnl_stream_default_flags) != dnnl_success) {
        ls_engine_lower_free(e);
        return ls_error_set(err, LS_ERR_INTERNAL, "engine: cannot create a oneDNN CPU engine");
    }
    int saved_threads = omp_get_max_threads();
    rc = compile(e, err);
    omp_set_num_threads(saved_threads);
    if (rc) {
        ls_engine_lower_free(e);
        return rc;
    }
    *out = e;
    return LS_OK;
}
