/* engine.c - the executor: an ls_graph lowered (engine_lower.h) and its
 * storage planned (plan.h), then run through per-caller contexts.
 *
 * Creating an engine checks the graph (shape.h), lowers it to steps over
 * engine values (engine_lower.c), and plans one arena per context: each
 * buffer's lifetime is its steps' span, and buffers whose lifetimes do not
 * overlap share bytes (plan.h: greedy by size). A run walks the steps:
 * oneDNN primitives on memory objects made once per context, the engine's
 * own kernels (engine_kernels.h) on views of the arena, and the reference
 * op (ref.h's ls_ref_node, the one dependency on the reference executor)
 * for the steps lowering left to it.
 */
#include "nn/engine.h"

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "nn/engine_kernels.h"
#include "nn/engine_lower.h"
#include "nn/plan.h"
#include "nn/ref.h"
#include "nn/shape.h"

#define ALIGN_ELEMS 16 /* 64-byte alignment of arena buffers */

struct ls_engine_ctx {
    const ls_engine *e;
    float *arena;
    void *scratch;
    dnnl_stream_t stream;
    dnnl_memory_t *mem; /* conv steps: per exec src, dst; then scratchpad */
    int *mem_base;      /* per step: first index into mem */
    int n_mem;
    const float *const *inputs;
    float *const *outputs;
    int profiling;
    int profiled_runs;
    double *step_ms; /* per step, summed over profiled runs */
};

const char *ls_precision_name(ls_precision p)
{
    return p == LS_PREC_BF16 ? "bf16" : p == LS_PREC_INT8 ? "int8" : "fp32";
}

static const char *const layout_names[] = {"auto", "any", "blocked", "nhwc", "mixed"};

const char *ls_layout_name(ls_layout_policy p)
{
    return (int)p >= 0 && p <= LS_LAYOUT_MIXED ? layout_names[p] : "?";
}

int ls_layout_parse(const char *text, ls_layout_policy *out, ls_error *err)
{
    for (int k = 0; k <= LS_LAYOUT_MIXED; k++)
        if (text && !strcmp(text, layout_names[k])) {
            *out = (ls_layout_policy)k;
            return LS_OK;
        }
    return ls_error_set(err, LS_ERR_INVALID_ARG,
                        "layout must be auto, any, blocked, nhwc or mixed, got '%s'",
                        text ? text : "");
}

ls_layout_policy ls_engine_layout(const ls_engine *e) { return e ? e->layout : LS_LAYOUT_AUTO; }

int ls_precision_parse(const char *text, ls_precision *out, ls_error *err)
{
    if (text && !strcmp(text, "fp32"))
        *out = LS_PREC_FP32;
    else if (text && !strcmp(text, "bf16"))
        *out = LS_PREC_BF16;
    else if (text && !strcmp(text, "int8"))
        *out = LS_PREC_INT8;
    else
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "precision must be fp32, bf16 or int8, got '%s'", text ? text : "");
    return LS_OK;
}

/* ---- storage ---- */

static void touch(ls_engine *e, int evi, int st)
{
    if (evi < 0) return;
    ev *v = &e->evs[evi];
    if (v->first < 0 || st < v->first) v->first = st;
    if (st > v->last) v->last = st;
}

/* Storage: one arena buffer per root (a class of evs sharing storage, see
 * plan_aliases), live from the first to the last step touching any member;
 * the planner (plan.h) gives each its offset. */
static int plan_arena(ls_engine *e, ls_error *err)
{
    for (int s = 0; s < e->n_steps; s++) {
        step *st = &e->steps[s];
        touch(e, st->src, s);
        touch(e, st->src2, s);
        touch(e, st->dst, s);
        for (int k = 0; k < LS_NN_MAX_INPUTS; k++) touch(e, st->ref_in[k], s);
    }
    /* Class lifetime: the union of its members'. */
    for (int i = 0; i < e->n_evs; i++) {
        ev *v = &e->evs[i];
        if (v->kind != EV_ARENA || v->first < 0 || v->root == i) continue;
        ev *r = &e->evs[v->root];
        if (r->first < 0 || v->first < r->first) r->first = v->first;
        if (v->last > r->last) r->last = v->last;
    }
    ls_plan_buf *bufs = malloc(((size_t)e->n_evs + 1) * sizeof *bufs);
    int64_t *offs = malloc(((size_t)e->n_evs + 1) * sizeof *offs);
    if (!bufs || !offs) {
        free(bufs);
        free(offs);
        return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    }
    for (int i = 0; i < e->n_evs; i++) {
        const ev *v = &e->evs[i];
        int used = v->kind == EV_ARENA && v->root == i && v->first >= 0;
        bufs[i] = used ? (ls_plan_buf){v->isize * v->n, v->first, v->last}
                       : (ls_plan_buf){0, -1, -1};
    }
    int rc = ls_plan_arena(bufs, e->n_evs, ALIGN_ELEMS, offs, &e->arena_elems, err);
    for (int i = 0; !rc && i < e->n_evs; i++)
        if (bufs[i].first >= 0) e->evs[i].arena_off = offs[i];
    free(bufs);
    free(offs);
    return rc;
}

/* ---- create / destroy ---- */

void ls_engine_destroy(ls_engine *e) { ls_engine_lower_free(e); }

int ls_engine_create(const ls_graph *g, ls_precision precision, int threads, ls_engine **out,
                     ls_error *err)
{
    return ls_engine_create_ex(g, precision, threads, LS_LAYOUT_AUTO, out, err);
}

int ls_engine_create_ex(const ls_graph *g, ls_precision precision, int threads,
                        ls_layout_policy layout, ls_engine **out, ls_error *err)
{
    if (!out) return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_engine_create: NULL out");
    *out = NULL;
    if (!g || (precision != LS_PREC_FP32 && precision != LS_PREC_BF16 &&
               precision != LS_PREC_INT8) ||
        threads < 1 ||
        threads > 1024 || (int)layout < LS_LAYOUT_AUTO || layout > LS_LAYOUT_MIXED)
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "ls_engine_create: bad graph, precision or thread count");
    int rc = ls_shape_check_graph(g, err);
    if (rc) return rc;
    ls_engine *e;
    if ((rc = ls_engine_lower(g, precision, threads, layout, &e, err))) return rc;
    if ((rc = plan_arena(e, err))) {
        ls_engine_lower_free(e);
        return rc;
    }
    *out = e;
    return LS_OK;
}

/* ---- contexts and runs ---- */

static ls_view view_of(const ls_engine_ctx *c, int evi)
{
    const ev *v = &c->e->evs[evi];
    ls_view out = {NULL,         v->istride,       v->n, v->c, v->h, v->w, cb_of(v->lay),
                   ev_bf16(c->e, v), v->lay == LAY_NHWC, v->ps};
    switch (v->kind) {
    case EV_ARENA: {
        ls_view root = out;
        root.base = c->arena + c->e->evs[v->root].arena_off;
        out.base = ls_view_at(&root, v->off);
        break;
    }
    case EV_INPUT: out.base = (float *)c->inputs[v->ext]; break;
    case EV_OUTPUT: out.base = c->outputs[v->ext]; break;
    case EV_CONST: out.base = (float *)v->cdata; break;
    }
    return out;
}

/* Item k of ev evi (int8 values count bytes, their views do not know). */
static void *item_at(const ls_engine_ctx *c, int evi, int64_t k)
{
    ls_view v = view_of(c, evi);
    if (c->e->evs[evi].q) return (uint8_t *)(void *)v.base + k * v.istride;
    return ls_view_at(&v, k * v.istride);
}

void ls_engine_ctx_destroy(ls_engine_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_mem; i++)
        if (c->mem[i]) dnnl_memory_destroy(c->mem[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c->mem);
    free(c->mem_base);
    free(c->step_ms);
    free(c->arena);
    free(c->scratch);
    free(c);
}

int ls_engine_ctx_create(const ls_engine *e, ls_engine_ctx **out, ls_error *err)
{
    if (!out) return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_engine_ctx_create: NULL out");
    *out = NULL;
    if (!e) return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_engine_ctx_create: NULL engine");
    ls_engine_ctx *c = calloc(1, sizeof *c);
    if (!c) return ls_error_set(err, LS_ERR_NOMEM, "engine: out of memory");
    c->e = e;
    size_t abytes = (size_t)(e->arena_elems > 0 ? e->arena_elems : ALIGN_ELEMS) * sizeof(float);
    c->arena = aligned_alloc(64, abytes);
    c->scratch =
        e->scratch_bytes ? aligned_alloc(64, ls_round_up((int64_t)e->scratch_bytes, 64)) : NULL;
    c->mem_base = calloc((size_t)e->n_steps + 1, sizeof(int));
    int n_mem = 0;
    for (int i = 0; i < e->n_steps; i++) {
        c->mem_base[i] = n_mem;
        if (e->steps[i].kind == ST_CONV || e->steps[i].kind == ST_CONVERT)
            n_mem += (e->steps[i].src2 >= 0 ? 3 : 2) * e->steps[i].n_exec + 1;
    }
    c->mem = calloc((size_t)n_mem + 1, sizeof *c->mem);
    c->step_ms = calloc((size_t)e->n_steps + 1, sizeof *c->step_ms);
    if (!c->arena || (e->scratch_bytes && !c->scratch) || !c->mem_base || !c->mem || !c->step_ms) {
        ls_engine_ctx_destroy(c);
        return ls_error_set(err, LS_ERR_NOMEM, "engine: cannot allocate %zu bytes of activations",
                            abytes);
    }
    /* Zeroed once so channel padding reads as zeros in every layout. */
    memset(c->arena, 0, abytes);
    c->n_mem = n_mem;
    if (dnnl_stream_create(&c->stream, e->dnnl, dnnl_stream_default_flags) != dnnl_success) {
        ls_engine_ctx_destroy(c);
        return ls_error_set(err, LS_ERR_INTERNAL, "engine: cannot create a oneDNN stream");
    }
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        if (s->kind != ST_CONV && s->kind != ST_CONVERT) continue;
        dnnl_memory_t *m = &c->mem[c->mem_base[i]];
        dnnl_status_t st = dnnl_success;
        for (int k = 0; k < s->n_exec && st == dnnl_success; k++) {
            st = dnnl_memory_create(&m[2 * k], &s->src_md, e->dnnl,
                                    item_at(c, s->src, s->per_item ? k : 0));
            if (st == dnnl_success)
                st = dnnl_memory_create(&m[2 * k + 1], &s->dst_md, e->dnnl,
                                        item_at(c, s->dst, s->per_item ? k : 0));
        }
        if (st == dnnl_success)
            st = dnnl_memory_create(&m[2 * s->n_exec], &s->scratch_md, e->dnnl, c->scratch);
        if (s->src2 >= 0) { /* the binary post-op's residual, after the scratchpad */
            ls_view rv = view_of(c, s->src2);
            for (int k = 0; k < s->n_exec && st == dnnl_success; k++)
                st = dnnl_memory_create(&m[2 * s->n_exec + 1 + k], &s->res_md, e->dnnl,
                                        ls_view_at(&rv, s->per_item ? k * rv.istride : 0));
        }
        if (st != dnnl_success) {
            ls_engine_ctx_destroy(c);
            return ls_error_set(err, LS_ERR_INTERNAL,
                                "engine: cannot create oneDNN memory (status %d)", (int)st);
        }
    }
    *out = c;
    return LS_OK;
}

static int run_ref_step(ls_engine_ctx *c, const step *s, ls_error *err)
{
    const ls_node *n = &c->e->g->nodes[s->node];
    const float *in[LS_NN_MAX_INPUTS] = {0};
    for (int k = 0; k < n->n_in; k++)
        if (s->ref_in[k] >= 0) in[k] = view_of(c, s->ref_in[k]).base;
    return ls_ref_node(c->e->g, s->node, in, view_of(c, s->dst).base, err);
}

int ls_engine_run(ls_engine_ctx *c, const float *const *inputs, float *const *outputs,
                  ls_error *err)
{
    if (!c || (!inputs && c->e->g->n_inputs) || !outputs)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_engine_run: NULL argument");
    const ls_engine *e = c->e;
    for (int k = 0; k < e->g->n_inputs; k++)
        if (!inputs[k])
            return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_engine_run: input %d is NULL", k);
    for (int k = 0; k < e->g->n_outputs; k++)
        if (!outputs[k])
            return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_engine_run: output %d is NULL", k);
    c->inputs = inputs;
    c->outputs = outputs;
    int rc = LS_OK, omp_threads = -1;
    double t0 = c->profiling ? ls_now() : 0;
    for (int i = 0; i < e->n_steps && !rc; i++) {
        const step *s = &e->steps[i];
        if (c->profiling) {
            double t1 = ls_now();
            if (i > 0) c->step_ms[i - 1] += (t1 - t0) * 1e3;
            t0 = t1;
        }
        int T = s->threads;
        switch (s->kind) {
        case ST_CONV: {
            dnnl_memory_t *m = &c->mem[c->mem_base[i]];
            if (T != omp_threads) omp_set_num_threads(omp_threads = T); /* what oneDNN reads */
            for (int k = 0; k < s->n_exec && !rc; k++) {
                dnnl_exec_arg_t args[8] = {{DNNL_ARG_SRC, m[2 * k]},
                                           {DNNL_ARG_DST, m[2 * k + 1]},
                                           {DNNL_ARG_SCRATCHPAD, m[2 * s->n_exec]},
                                           {DNNL_ARG_WEIGHTS, s->wei},
                                           {DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS, s->dw_wei},
                                           {DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS, s->dw_bias}};
                int nargs = s->dw_wei ? 6 : 4;
                if (s->bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, s->bias};
                if (s->src2 >= 0)
                    args[nargs++] = (dnnl_exec_arg_t){
                        DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, m[2 * s->n_exec + 1 + k]};
                dnnl_status_t st = dnnl_primitive_execute(s->prim, c->stream, nargs, args);
                if (st != dnnl_success)
                    rc = ls_error_set(err, LS_ERR_INTERNAL,
                                      "node '%s': oneDNN convolution failed (status %d)",
                                      node_name(e, s->node), (int)st);
            }
            break;
        }
        case ST_COPY: {
            ls_view a = view_of(c, s->src), b = view_of(c, s->dst);
            ls_k_copy(&a, &b, s->c_off, T);
            break;
        }
        case ST_RESIZE: {
            ls_view a = view_of(c, s->src), b = view_of(c, s->dst);
            ls_k_resize(&a, &b, &s->th, &s->tw, s->border, T);
            break;
        }
        case ST_AFFINE: {
            ls_view a = view_of(c, s->src), b = view_of(c, s->dst);
            ls_k_affine(&a, &b, s->scale, s->shift, T);
            break;
        }
        case ST_UNARY: {
            ls_view a = view_of(c, s->src), b = view_of(c, s->dst);
            ls_k_unary_op(s->unary, &a, &b, T);
            break;
        }
        case ST_ADD: {
            ls_view a = view_of(c, s->src), b = view_of(c, s->src2), d = view_of(c, s->dst);
            ls_k_add(&a, &b, &d, T);
            break;
        }
        case ST_ROUND: {
            ls_view d = view_of(c, s->dst);
            ls_k_unary_op(LS_K_ROUND_BF16, &d, &d, T);
            break;
        }
        case ST_REF: rc = run_ref_step(c, s, err); break;
        case ST_CONVERT: {
            dnnl_memory_t *m = &c->mem[c->mem_base[i]];
            if (T != omp_threads) omp_set_num_threads(omp_threads = T);
            for (int k = 0; k < s->n_exec && !rc; k++) {
                dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, m[2 * k]},
                                           {DNNL_ARG_TO, m[2 * k + 1]},
                                           {DNNL_ARG_SCRATCHPAD, m[2 * s->n_exec]}};
                dnnl_status_t st = dnnl_primitive_execute(s->prim, c->stream, 3, args);
                if (st != dnnl_success)
                    rc = ls_error_set(err, LS_ERR_INTERNAL,
                                      "node '%s': oneDNN int8 conversion failed (status %d)",
                                      s->node >= 0 ? node_name(e, s->node) : "(io)", (int)st);
            }
            break;
        }
        }
    }
    dnnl_stream_wait(c->stream);
    if (c->profiling) {
        c->step_ms[e->n_steps - 1] += (ls_now() - t0) * 1e3;
        c->profiled_runs++;
    }
    c->inputs = NULL;
    c->outputs = NULL;
    return rc;
}

/* ---- introspection ---- */

static const char *const step_kind_names[ST_KINDS] = {
    "conv", "copy", "resize", "affine", "unary", "add", "round-bf16", "reference", "convert"};

void ls_engine_ctx_profile(ls_engine_ctx *c, int enable)
{
    c->profiling = enable;
    c->profiled_runs = 0;
    memset(c->step_ms, 0, (size_t)c->e->n_steps * sizeof *c->step_ms);
}

void ls_engine_ctx_print_profile(const ls_engine_ctx *c, FILE *out)
{
    const ls_engine *e = c->e;
    int runs = c->profiled_runs ? c->profiled_runs : 1;
    double by_kind[ST_KINDS] = {0}, total = 0;
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        double ms = c->step_ms[i] / runs;
        by_kind[s->kind] += ms;
        total += ms;
        fprintf(out, "%3d %-10s %-24s %8.3f ms %s\n", i, step_kind_names[s->kind],
                s->node >= 0 ? node_name(e, s->node) : "(io)", ms,
                s->kind == ST_CONV || s->kind == ST_CONVERT ? s->impl : "");
    }
    fprintf(out, "mean of %d runs: %.2f ms;", runs, total);
    for (int k = 0; k < ST_KINDS; k++)
        if (by_kind[k] > 0) fprintf(out, " %s %.2f", step_kind_names[k], by_kind[k]);
    fputc('\n', out);
    /* Convs by class: time, share of the FLOPs and GFLOP/s. */
    static const char *const classes[4] = {"1x1", "1x1+dw", "depthwise", "dense"};
    double ms[4] = {0}, fl[4] = {0};
    int count[4] = {0};
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        if (s->kind != ST_CONV) continue;
        const ls_node *n = &e->g->nodes[s->node];
        const ls_conv_attr *a = &n->attr.conv;
        int k = s->dw_wei                                                            ? 1
                : a->kernel[0] == 1 && a->kernel[1] == 1 && a->group == 1            ? 0
                : a->group > 1 && a->group == e->g->values[n->in[0]].dims[1] ? 2
                                                                                     : 3;
        ms[k] += c->step_ms[i] / runs;
        fl[k] += s->flops;
        count[k]++;
    }
    fprintf(out, "conv classes:");
    for (int k = 0; k < 4; k++)
        if (count[k])
            fprintf(out, " %s %d convs %.2f ms %.3f GFLOP %.1f GFLOP/s;", classes[k], count[k],
                    ms[k], fl[k] / 1e9, ms[k] > 0 ? fl[k] / (ms[k] * 1e6) : 0.0);
    fputc('\n', out);
}

double ls_engine_flops(const ls_engine *e) { return e ? e->flops : 0; }

size_t ls_engine_arena_bytes(const ls_engine *e)
{
    return e ? (size_t)e->arena_elems * sizeof(float) : 0;
}

int ls_engine_dnnl_calls(const ls_engine *e)
{
    int n = 0;
    for (int i = 0; e && i < e->n_steps; i++)
        if (e->steps[i].kind == ST_CONV) n += e->steps[i].n_exec;
    return n;
}

int ls_engine_ref_convs(const ls_engine *e)
{
    int n = 0;
    for (int i = 0; e && i < e->n_steps; i++)
        n += e->steps[i].kind == ST_CONV && !strncmp(e->steps[i].impl, "ref", 3);
    return n;
}

int ls_engine_int8_convs(const ls_engine *e)
{
    int n = 0;
    for (int i = 0; e && i < e->n_steps; i++) n += e->steps[i].kind == ST_CONV && e->steps[i].int8;
    return n;
}

int ls_engine_fused_convs(const ls_engine *e)
{
    int n = 0;
    for (int i = 0; e && i < e->n_steps; i++) n += e->steps[i].dw_wei != NULL;
    return n;
}

void ls_engine_describe(const ls_engine *e, FILE *out)
{
    const char *const *kinds = step_kind_names;
    int counts[ST_KINDS] = {0};
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        counts[s->kind]++;
        const ev *d = s->dst >= 0 ? &e->evs[s->dst] : NULL;
        fprintf(out, "%3d %-10s %-24s", i, kinds[s->kind],
                s->node >= 0 ? node_name(e, s->node) : "(io)");
        if (d)
            fprintf(out, " -> [%ld,%ld,%ld,%ld]/%s%s", (long)d->n, (long)d->c, (long)d->h,
                    (long)d->w, d->kind != EV_ARENA ? "nchw-io" : lay_name(d->lay),
                    d->lay == LAY_NHWC && d->ps != d->c ? "-slot" : "");
        if (d && ev_bf16(e, d)) fputs("/bf16", out);
        if (d && d->q) fputs(d->q == Q_U8 ? "/u8" : "/s8", out);
        if (s->kind == ST_CONV || s->kind == ST_CONVERT) fprintf(out, " %s%s", s->impl, s->per_item ? " per-item" : "");
        fprintf(out, " threads=%d", s->threads);
        if (s->kind == ST_COPY) fprintf(out, " c_off=%ld", (long)s->c_off);
        fputc('\n', out);
    }
    fprintf(out,
            "steps %d: conv %d, copy %d, resize %d, other %d; reference convs %d; arena %.1f MB; "
            "%.3f GFLOP per run; precision %s%s; layouts %s\n",
            e->n_steps, counts[ST_CONV], counts[ST_COPY], counts[ST_RESIZE],
            e->n_steps - counts[ST_CONV] - counts[ST_COPY] - counts[ST_RESIZE],
            ls_engine_ref_convs(e), (double)ls_engine_arena_bytes(e) / 1e6, e->flops / 1e9,
            ls_precision_name(e->prec),
            e->int8 && e->native_bf16 ? " (int8 convs where calibrated, bfloat16 elsewhere)"
            : e->int8                 ? " (int8 convs where calibrated, float elsewhere)" :
            e->native_bf16              ? " (native: bfloat16 activations and kernels)"
            : e->prec == LS_PREC_BF16   ? " (emulated: float kernels, values rounded to bfloat16)"
                                        : "",
            ls_layout_name(e->layout));
}
