/* ref.h - the plain C reference executor over ls_graph.
 *
 * Every compute op of graph.h written as directly as the ONNX definition
 * reads: dense NCHW float32, one thread, fresh buffers per run. It is slow on
 * purpose and exists to check the fast engine (engine.h) op by op and to give
 * `lipsync infer --reference` a second opinion. ls_ref_check_node holds the
 * shape rules both executors enforce, so a graph either runs the same way in
 * both or is refused by both with the same message naming the node.
 */
#ifndef LS_NN_REF_H
#define LS_NN_REF_H

#include "core/error.h"
#include "nn/graph.h"

/* Checks one node's inputs, attributes and output shape; LS_ERR_FORMAT or
 * LS_ERR_UNSUPPORTED with a message naming the node when they do not fit. */
int ls_ref_check_node(const ls_graph *g, int node_index, ls_error *err);

/* Runs one node: in[k] holds node->in[k]'s elements (dense, C order),
 * out receives node->out's. Entries of in[] for absent inputs (index < 0)
 * are ignored. Checks the node first. */
int ls_ref_node(const ls_graph *g, int node_index, const float *const *in, float *out,
                ls_error *err);

/* Runs the whole graph. inputs[i] holds g->inputs[i]'s elements and
 * outputs[i] receives g->outputs[i]'s, both dense NCHW float32. */
int ls_ref_run(const ls_graph *g, const float *const *inputs, float *const *outputs, ls_error *err);

/* Elements of a value (product of its dims). */
int64_t ls_ref_count(const ls_value *v);

/* Resize geometry, shared with the engine so both map pixels identically.
 * Source coordinate of output index `o` along an axis of in_size -> out_size
 * pixels under the attribute's coordinate transform (scale <= 0: out/in). */
double ls_resize_source(const ls_resize_attr *a, double scale, int64_t o, int64_t in_size,
                        int64_t out_size);
/* Nearest mode: the source index for coordinate x, clamped to [0, in_size). */
int64_t ls_resize_nearest(const ls_resize_attr *a, double x, int64_t in_size);
/* Linear mode: the two source indices and the weight of the second. */
void ls_resize_linear(double x, int64_t in_size, int64_t *i0, int64_t *i1, float *w1);

#endif
