/* ref.h - the plain C reference executor over ls_graph.
 *
 * Every compute op of graph.h written as directly as the ONNX definition
 * reads: dense NCHW float32, one thread, fresh buffers per run. It is slow on
 * purpose and exists to check the fast engine (engine.h) op by op and to give
 * `lipsync infer --reference` a second opinion; the engine also runs one of
 * its nodes through ls_ref_node where it has no kernel of its own (engine.h).
 * The shape rules it enforces are shape.h's, the engine's too, so a graph
 * either runs the same way in both or is refused by both with the same
 * message naming the node; resize geometry is resize_map.h's.
 */
#ifndef LS_NN_REF_H
#define LS_NN_REF_H

#include <stdint.h>

#include "core/error.h"
#include "nn/graph.h"

/* Runs one node: in[k] holds node->in[k]'s elements (dense, C order),
 * out receives node->out's. Entries of in[] for absent inputs (index < 0)
 * are ignored. Checks the node first (ls_shape_check_node). */
int ls_ref_node(const ls_graph *g, int node_index, const float *const *in, float *out,
                ls_error *err);

/* Runs the whole graph. inputs[i] holds g->inputs[i]'s elements and
 * outputs[i] receives g->outputs[i]'s, both dense NCHW float32. */
int ls_ref_run(const ls_graph *g, const float *const *inputs, float *const *outputs, ls_error *err);

/* ls_ref_run calling seen(ctx, value, data, count) with each node's output
 * as soon as it is computed (int8 calibration, quant.h, watches them). */
typedef void (*ls_ref_observer)(void *ctx, int value, const float *data, int64_t count);
int ls_ref_run_observed(const ls_graph *g, const float *const *inputs, float *const *outputs,
                        ls_ref_observer seen, void *ctx, ls_error *err);

#endif
