/* lower.h - building and rewriting an ls_graph (internal to the loader).
 *
 * The builder grows a graph's value and node arrays; lowering (lower.c)
 * appends to it in execution order and the passes (passes.c) rewrite it in
 * place, then compact it so that no dead node or unused value remains.
 */
#ifndef LS_NN_LOWER_H
#define LS_NN_LOWER_H

#include "nn/graph.h"

typedef struct ls_graph_builder {
    ls_graph *g;
    int cap_values, cap_nodes;
} ls_graph_builder;

/* Starts an empty graph for `batch`. */
int ls_builder_init(ls_graph_builder *b, int batch, ls_error *err);
/* Appends a value; `data` (count elements) is copied when not NULL.
 * Returns the value index or a negative status. */
int ls_builder_add_value(ls_graph_builder *b, const char *name, int ndim, const int64_t *dims,
                         const float *data, ls_error *err);
/* Appends a node computing value `out`; returns its index or a negative status. */
int ls_builder_add_node(ls_graph_builder *b, ls_op op, const char *name, int n_in, const int *in,
                        int out, ls_error *err);

/* Recomputes every value's producer and n_consumers from the nodes,
 * skipping those flagged in `dead` (per node; NULL: none). */
void ls_graph_relink(ls_graph *g, const char *dead);

/* The passes of graph.h: drop all-zero Pads, fold BatchNormalization into
 * the preceding Conv, fuse Conv+Add(residual) and Conv+Relu; then remove
 * dead nodes and unused values. */
int ls_graph_optimize(ls_graph_builder *b, ls_error *err);

#endif
