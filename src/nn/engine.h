/* engine.h - the fast CPU executor: an ls_graph compiled onto oneDNN.
 *
 * ls_engine_create compiles one graph (one batch size, one precision) into
 * oneDNN convolution primitives with fused post-ops (ReLU; sum for a fused
 * residual, computed in place in the residual's buffer), activations kept in
 * one layout per value chosen from the convs around it (by default nChw16c
 * on AVX-512 CPUs, nChw8c on AVX2 ones, oneDNN's own nhwc with AMX; see
 * ls_layout_policy), and the engine's own kernels, which run on every layout,
 * for everything else: a table-driven resize that writes straight into its
 * slot of a concat buffer (with any zero Pad after it folded into the write),
 * so a UNet skip connection's conv and the upsample fill the two halves of
 * one preallocated buffer (in nhwc the conv's half is copied in: oneDNN 2.6
 * has only reference code for a conv writing a strided nhwc slot). The compiled engine
 * (weights included) is read-only and may be shared by any number of threads.
 *
 * Each caller runs it through its own ls_engine_ctx, which owns every buffer a
 * run touches (activation arena, oneDNN scratchpad, memory objects): runs on
 * different contexts may overlap, runs on one context must not. Nothing is
 * allocated by our code during ls_engine_run (see tests/nn/test_engine_alloc.c
 * for what oneDNN itself does per primitive call).
 *
 * Threads: oneDNN here is built on OpenMP, so a run uses up to `threads`
 * OpenMP threads of the calling thread (the engine sets the calling thread's
 * omp_set_num_threads per step; its own kernels use the same team). Those
 * threads are not the ls_pool's: to share C cores without oversubscription a
 * caller gives the engine the cores its pool loops leave idle, e.g. compiles
 * with C threads and runs pool work between engine runs, or with C - P
 * threads while P pool workers are busy beside it. Runs from k threads at
 * once use k teams: budget k * threads <= C. On cores shared with other
 * work, run with OMP_WAIT_POLICY=passive (libgomp reads it at start-up):
 * oneDNN splits each primitive statically, and spinning idle threads make
 * every barrier wait for a descheduled one.
 *
 * Precision: LS_PREC_FP32 computes in float32 like torch. LS_PREC_BF16 stores
 * weights and every intermediate activation as bfloat16 (graph inputs and
 * outputs stay float32) and accumulates in float32: natively where oneDNN
 * reports avx512_core_bf16 (bf16 convolutions, bfloat16 activations in the
 * arena; unfused elementwise ops run as reference ops on float copies),
 * emulated elsewhere (float kernels, each intermediate value rounded).
 * LS_PREC_INT8 runs in int8 each conv whose source has a calibrated range
 * (quant.h; graph values' has_range) and more than a few input channels,
 * except at a multi-resolution network's full resolution: s8 weights with
 * a step per output channel, u8/s8 activations with a step per channel
 * (folded into the weights), int32 accumulation. A value only int8 convs
 * read stays int8 in memory; everything else is float32 (bfloat16 glue cost
 * the demo model 4.5/255 of mean error against float's 1.1). A graph with
 * no calibrated conv is refused.
 */
#ifndef LS_NN_ENGINE_H
#define LS_NN_ENGINE_H

#include <stdio.h>

#include "core/error.h"
#include "nn/graph.h"

typedef enum ls_precision { LS_PREC_FP32 = 0, LS_PREC_BF16 = 1, LS_PREC_INT8 = 2 } ls_precision;

typedef struct ls_engine ls_engine;
typedef struct ls_engine_ctx ls_engine_ctx;

/* Compiles g to run on `threads` (1..1024) threads: oneDNN splits the work
 * of each primitive for a thread count fixed when it is created, so the
 * count belongs to the engine (small steps run on one thread). The graph
 * must outlive the engine (constants are read at compile time; shapes and
 * names for messages and the reference fallback). Layouts: LS_LAYOUT_AUTO. */
int ls_engine_create(const ls_graph *g, ls_precision precision, int threads, ls_engine **out,
                     ls_error *err);

/* How activation layouts are chosen. Whatever the policy, every value gets
 * one layout (nhwc, nChw16c, nChw8c or plain NCHW) and a reorder is inserted
 * only where a value's layout and what a step reads disagree; results are
 * the same sums (the tests check every policy against the reference). */
typedef enum ls_layout_policy {
    LS_LAYOUT_AUTO = 0, /* the measured-faster of ANY and BLOCKED for this CPU class
                           (engine_lower.c's auto_layout says which and why: BLOCKED without
                           AMX, ANY with it) */
    LS_LAYOUT_ANY,      /* each conv's layouts left to oneDNN (format_tag_any), then
                           propagated to the values around it */
    LS_LAYOUT_BLOCKED,  /* nChw16c on AVX-512 CPUs, nChw8c on AVX2 ones, everywhere */
    LS_LAYOUT_NHWC,     /* nhwc everywhere */
    LS_LAYOUT_MIXED     /* convs alternate between nhwc and blocked (tests: every reorder,
                           mixed concat and slot path runs) */
} ls_layout_policy;

int ls_engine_create_ex(const ls_graph *g, ls_precision precision, int threads,
                        ls_layout_policy layout, ls_engine **out, ls_error *err);
/* "auto", "any", "blocked", "nhwc", "mixed" -> policy; LS_ERR_INVALID_ARG otherwise. */
int ls_layout_parse(const char *text, ls_layout_policy *out, ls_error *err);
const char *ls_layout_name(ls_layout_policy p);
/* The policy an engine runs (LS_LAYOUT_AUTO resolved). */
ls_layout_policy ls_engine_layout(const ls_engine *e);
void ls_engine_destroy(ls_engine *e);

/* Per-caller run state for e. */
int ls_engine_ctx_create(const ls_engine *e, ls_engine_ctx **out, ls_error *err);
void ls_engine_ctx_destroy(ls_engine_ctx *c);

/* One run: inputs[i] holds the graph's i-th input and outputs[i] receives its
 * i-th output, dense NCHW float32 of the shapes in the graph. */
int ls_engine_run(ls_engine_ctx *c, const float *const *inputs, float *const *outputs,
                  ls_error *err);

/* Floating-point operations of one run (2 x multiply-adds of the convs). */
double ls_engine_flops(const ls_engine *e);
/* Bytes of activation arena a context allocates. */
size_t ls_engine_arena_bytes(const ls_engine *e);
/* Prints the compiled plan: one line per step with the oneDNN
 * implementation it got (e.g. "jit_1x1:avx2"), then a summary. */
void ls_engine_describe(const ls_engine *e, FILE *out);
/* Counts of plan steps: oneDNN primitive executions per run, and convs that
 * got oneDNN's slow reference implementation. */
int ls_engine_dnnl_calls(const ls_engine *e);
int ls_engine_ref_convs(const ls_engine *e);
/* Convolutions that run in int8 (LS_PREC_INT8). */
int ls_engine_int8_convs(const ls_engine *e);
/* 1x1 + depthwise conv pairs running as one fused oneDNN primitive. */
int ls_engine_fused_convs(const ls_engine *e);

/* Per-step timing of the following runs on c (enable resets the sums);
 * print shows the mean per step and per kind. For `lipsync bench engine`. */
void ls_engine_ctx_profile(ls_engine_ctx *c, int enable);
void ls_engine_ctx_print_profile(const ls_engine_ctx *c, FILE *out);

const char *ls_precision_name(ls_precision p);
/* "fp32" / "bf16" / "int8" -> precision; LS_ERR_INVALID_ARG otherwise. */
int ls_precision_parse(const char *text, ls_precision *out, ls_error *err);

#endif
