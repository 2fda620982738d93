/* shape.h - the shape rules of the graph IR's ops, for every executor.
 *
 * A node fits when its inputs, attributes and output shape follow the op's
 * definition as both executors run it; a graph fits when every node does,
 * its inputs and outputs are in range and every value is read only after it
 * is written. The reference executor (ref.h) and the engine (engine.h) call
 * these same checks, so a graph either runs the same way in both or is
 * refused by both with the same message naming the node. Reads the graph
 * only.
 */
#ifndef LS_NN_SHAPE_H
#define LS_NN_SHAPE_H

#include "core/error.h"
#include "nn/graph.h"

/* Checks one node's inputs, attributes and output shape; LS_ERR_FORMAT or
 * LS_ERR_UNSUPPORTED with a message naming the node when they do not fit,
 * LS_ERR_INVALID_ARG for a NULL graph or a node index out of range. */
int ls_shape_check_node(const ls_graph *g, int node_index, ls_error *err);

/* Checks the whole graph: input and output counts and indices, every node
 * (ls_shape_check_node), and the order (no value read before it is written,
 * none written twice, every output produced). LS_ERR_FORMAT or
 * LS_ERR_UNSUPPORTED naming what is wrong; LS_ERR_NOMEM. */
int ls_shape_check_graph(const ls_graph *g, ls_error *err);

#endif
