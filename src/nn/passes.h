/* passes.h - the rewrites of graph.h run on a freshly lowered graph.
 *
 * All-zero Pads dropped, BatchNormalization folded into the preceding Conv,
 * Conv+Add (residual) and Conv+Relu fused into the Conv's attributes; then
 * dead nodes and unused values are removed, so that every value is used and
 * the node order stays a valid execution order. lower.c runs them when it
 * builds an optimized graph (ls_graph_build in onnx.h).
 */
#ifndef LS_NN_PASSES_H
#define LS_NN_PASSES_H

#include "core/error.h"
#include "nn/graph.h"

/* Runs the passes on b's graph: drop all-zero Pads, fold BatchNormalization
 * into the preceding Conv, fuse Conv+Add(residual) and Conv+Relu; then
 * remove dead nodes and unused values. */
int ls_graph_optimize(ls_graph_builder *b, ls_error *err);

#endif
