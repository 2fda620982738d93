/* lower.h - an ONNX model lowered into the graph IR (graph.h) for one
 * batch size: shapes become concrete, shape plumbing is folded into
 * constants and the passes (passes.h) run. A failure (an unsupported op or
 * opset, a fixed batch that differs from the one asked for) returns a
 * negative ls_status naming the node or tensor at fault.
 */
#ifndef LS_NN_LOWER_H
#define LS_NN_LOWER_H

#include "core/error.h"
#include "nn/graph.h"
#include "nn/onnx.h"

/* Lowers the model for one batch size: concrete shapes, folded shape
 * plumbing, BN folded into Conv, zero Pads dropped, Conv+Relu / Conv+Add
 * fused. The graph owns copies of its constants. In the result every value
 * is used, nodes are in execution order, and n_consumers counts the node
 * inputs that read a value (graph outputs are not counted). A fused Conv's
 * residual tensor is an extra input (attr.conv.residual is its index in
 * node->in), added after the bias and before the ReLU. A model whose inputs
 * fix the batch size only builds for that size (LS_ERR_INVALID_ARG else). */
int ls_graph_build(const ls_onnx_model *m, int batch, ls_graph **out, ls_error *err);

/* Lowers without the passes (every BatchNormalization, Pad, Relu and Add as
 * its own node): for inspection and for checking the passes. */
int ls_graph_build_unoptimized(const ls_onnx_model *m, int batch, ls_graph **out,
                               ls_error *err);

#endif
