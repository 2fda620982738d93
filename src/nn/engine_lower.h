/* engine_lower.h - an ls_graph lowered onto oneDNN: what lowering
 * (engine_lower.c) hands the executor (engine.c).
 *
 * ls_engine_lower turns a checked graph (shape.h) into a program: engine
 * values (evs: each activation, constant, graph input or output, and every
 * temporary, with its shape, layout and the storage it shares with others)
 * and steps in execution order (oneDNN convolutions with their primitives
 * and uploaded weights, the engine's own kernels, and reference-op steps,
 * ST_REF, which the executor runs through ref.h's ls_ref_node where the fast
 * path has no kernel). Storage sharing is resolved (every arena ev knows its
 * root, offset and strides); the arena offsets of the roots are left to the
 * planner (plan.h), which the executor runs over the steps' lifetimes. The
 * program is read-only once planned.
 */
#ifndef LS_NN_ENGINE_LOWER_H
#define LS_NN_ENGINE_LOWER_H

#include <dnnl.h>
#include <stdint.h>

#include "core/error.h"
#include "nn/engine.h"
#include "nn/engine_kernels.h"
#include "nn/graph.h"

typedef enum { EV_ARENA, EV_INPUT, EV_OUTPUT, EV_CONST } ev_kind;

typedef struct ev {
    ev_kind kind;
    int ext;            /* EV_INPUT / EV_OUTPUT: index in the run's arrays */
    const float *cdata; /* EV_CONST */
    int64_t n, c, h, w;
    int lay;           /* layout: LAY_NHWC or the channel block (1: plain NCHW, 8, 16) */
    int f32;           /* float even where native bf16 keeps activations in bfloat16 */
    int q;             /* int8 engines: Q_U8 / Q_S8 for a value stored quantized, else 0 */
    const float *qstep; /* q: per channel, the real value of one step (x = q * qstep[c]);
                           owned by the engine (its steps list) */
    int64_t isize;     /* elements per item, channel padding included */
    int alias;         /* ev this one lives inside, or -1 */
    int64_t alias_off; /* element offset inside that ev's item */
    int flat;          /* a reshape's view: items of its own size back to back */
    int root;          /* resolved storage: root ev, offset, item stride */
    int64_t off, istride;
    int64_t ps;        /* nhwc: pixel stride, the root's channels */
    int first, last;   /* steps touching it (roots: their whole class); set by the planning */
    int64_t arena_off; /* roots only: offset in the arena (plan.h, through engine.c) */
} ev;

typedef enum {
    ST_CONV,
    ST_COPY,
    ST_RESIZE,
    ST_AFFINE,
    ST_UNARY,
    ST_ADD,
    ST_ROUND,
    ST_REF,
    ST_CONVERT /* a oneDNN reorder to or from int8 (scaled), like a conv step without weights */
} st_kind;
#define ST_KINDS 9

/* Int8 element types of an ev's q. */
enum { Q_U8 = 1, Q_S8 = 2 };

typedef struct step {
    st_kind kind;
    int node;
    int threads;        /* OpenMP threads it runs on */
    int src, src2, dst; /* ev indices, -1 when unused */
    int64_t c_off;      /* ST_COPY */
    /* ST_CONV */
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src_md, dst_md, scratch_md;
    dnnl_memory_t wei, bias;
    dnnl_memory_t dw_wei, dw_bias; /* a depthwise conv fused as a post-op */
    int per_item, n_exec;
    int int8;           /* an int8 convolution */
    dnnl_memory_desc_t res_md; /* src2 >= 0: the residual, read by a binary-add post-op */
    char impl[48];
    double flops;       /* per run */
    /* ST_RESIZE */
    ls_taps th, tw;
    float border;
    /* ST_AFFINE */
    float *scale, *shift;
    ls_k_unary unary;
    /* ST_REF: ev of each node input (-1 for absent ones) */
    int ref_in[LS_NN_MAX_INPUTS];
} step;

struct ls_engine {
    const ls_graph *g;
    ls_precision prec;
    int threads;
    int cb;                  /* oneDNN's channel block on this CPU: 8 or 16 */
    int native_bf16;         /* bf16 on a CPU with bf16 instructions: activations (all but
                                plain ones) are bfloat16 in memory, convs run oneDNN's bf16 kernels */
    int int8;                /* LS_PREC_INT8 */
    int *qconv;              /* per node: a conv that runs in int8 (int8 engines) */
    int64_t full_hw;         /* the largest H*W of the graph's activations */
    int multires;            /* some activations have at most 1/16 of that H*W */
    float **steps_owned;     /* int8 step arrays the evs point to */
    int n_steps_owned, cap_steps_owned;
    dnnl_format_tag_t block_tag; /* dnnl_nChw8c or dnnl_nChw16c */
    ls_layout_policy policy; /* as asked */
    ls_layout_policy layout; /* what runs: AUTO resolved to ANY or BLOCKED */
    int *vlay;               /* per graph value: the layout propagation's choice */
    dnnl_engine_t dnnl;
    dnnl_stream_t stream; /* compile-time weight reorders */
    ev *evs;
    int n_evs, cap_evs;
    step *steps;
    int n_steps, cap_steps;
    int *consumers, *last_consumer; /* per graph value */
    int *producer;                  /* per graph value: node, or -1 */
    int *skip;                      /* per node: absorbed into another step */
    int *dw_of;                     /* per node: depthwise conv fused into it, or -1 */
    int64_t arena_elems;     /* the planned arena (engine.c), in float elements */
    size_t scratch_bytes;
    double flops;
};

/* Layout codes: the channel block (1: plain NCHW, 8: nChw8c, 16: nChw16c),
 * or LAY_NHWC. */
#define LAY_NHWC 0

static inline int64_t ls_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Channel block of a layout (nhwc pads no channels). */
static inline int cb_of(int lay) { return lay == LAY_NHWC ? 1 : lay; }

static inline const char *lay_name(int lay)
{
    return lay == LAY_NHWC ? "nhwc" : lay == 16 ? "nChw16c" : lay == 8 ? "nChw8c" : "nchw";
}

static inline int is_plain(const ev *v) { return v->lay == 1; }

/* Native bf16 keeps every blocked and nhwc activation in bfloat16; plain
 * ones (graph inputs and outputs, reference-op temporaries) stay float. The
 * arena still reserves float-sized room for them. */
static inline int ev_bf16(const ls_engine *e, const ev *v)
{
    return e->native_bf16 && v->kind == EV_ARENA && !is_plain(v) && !v->f32 && !v->q;
}

static inline const char *node_name(const ls_engine *e, int ni)
{
    const char *s = e->g->nodes[ni].name;
    return s ? s : "?";
}

/* Lowers g (checked: ls_shape_check_graph) for this precision, thread
 * count (1..1024) and layout policy (LS_LAYOUT_AUTO resolved for this CPU)
 * into *out; every ev's storage resolved but no arena offset planned
 * (arena_elems 0). oneDNN failures as LS_ERR_INTERNAL naming the node. The
 * calling thread's OpenMP thread count is restored before it returns. */
int ls_engine_lower(const ls_graph *g, ls_precision precision, int threads,
                    ls_layout_policy layout, ls_engine **out, ls_error *err);
/* Frees a lowered program (its primitives, weights and tables); NULL is a no-op. */
void ls_engine_lower_free(ls_engine *e);

#endif
