/* onnx_internal.h - what onnx.c decodes and lower.c consumes (not public).
 *
 * Tensors (initializers, Constant values, folded shape plumbing) are held in
 * one of two element types: float32 for real-valued data and int64 for every
 * integer or boolean type, which is all the shape arithmetic needs.
 */
#ifndef LS_NN_ONNX_INTERNAL_H
#define LS_NN_ONNX_INTERNAL_H

#include "nn/onnx.h"
#include "onnx/onnx.pb-c.h"

typedef enum ls_dtype { LS_DT_F32, LS_DT_I64 } ls_dtype;

typedef struct ls_tensor {
    ls_dtype dtype;
    int ndim;
    int64_t dims[LS_NN_MAX_DIMS];
    int64_t count;
    const float *f;   /* LS_DT_F32 */
    const int64_t *i; /* LS_DT_I64 */
    void *owned;      /* freed with the tensor when not NULL */
} ls_tensor;

struct ls_onnx_model {
    Onnx__ModelProto *proto;
    int opset;
    int n_init;
    const char **init_names;
    ls_tensor *inits;
    int n_inputs, n_outputs;
    ls_onnx_io *inputs, *outputs;
};

/* Decodes a TensorProto (raw_data or typed fields) into t; `what` names it
 * in error messages. Data may alias the proto's buffers. */
int ls_tensor_decode(const Onnx__TensorProto *tp, const char *what, ls_tensor *t,
                     ls_error *err);
void ls_tensor_free(ls_tensor *t);
/* Index of the initializer called name, or -1. */
int ls_onnx_find_init(const ls_onnx_model *m, const char *name);

/* Attribute lookup; NULL when absent. */
const Onnx__AttributeProto *ls_onnx_attr(const Onnx__NodeProto *n, const char *name);
/* Name for messages and graph nodes: the node's name, else "<op_type>_<index>". */
const char *ls_onnx_node_label(const Onnx__NodeProto *n, int index, char *buf, size_t cap);

#endif
