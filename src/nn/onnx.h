/* onnx.h - load ONNX models and answer questions about them.
 *
 * ls_onnx_load parses a model file (protobuf-c over Debian's onnx.proto) and
 * decodes its initializers (raw_data or typed fields); it never reads
 * external data files. lower.h turns a loaded model into the graph IR. Every
 * failure (malformed bytes, an unsupported op or opset) returns a negative
 * ls_status with a message naming the node or tensor at fault. A loaded
 * model is immutable: several threads may build graphs from it.
 */
#ifndef LS_NN_ONNX_H
#define LS_NN_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "nn/graph.h"

/* The opsets of the default domain that lowering accepts. */
#define LS_ONNX_MIN_OPSET 11
#define LS_ONNX_MAX_OPSET 17

typedef struct ls_onnx_model ls_onnx_model;

int ls_onnx_load(const char *path, ls_onnx_model **out, ls_error *err);
int ls_onnx_load_bytes(const uint8_t *bytes, size_t len, ls_onnx_model **out, ls_error *err);
void ls_onnx_destroy(ls_onnx_model *m);

/* A graph input or output as the file declares it. */
typedef struct ls_onnx_io {
    const char *name;
    int ndim;                               /* -1 when the file gives no shape */
    int64_t dims[LS_NN_MAX_DIMS];           /* -1 where symbolic or unknown */
    const char *dim_names[LS_NN_MAX_DIMS];  /* symbolic names ("batch"), else NULL */
} ls_onnx_io;

int ls_onnx_opset(const ls_onnx_model *m);      /* of the default domain */
const char *ls_onnx_producer(const ls_onnx_model *m);
int ls_onnx_n_inputs(const ls_onnx_model *m);   /* initializers excluded */
const ls_onnx_io *ls_onnx_input(const ls_onnx_model *m, int i);
int ls_onnx_n_outputs(const ls_onnx_model *m);
const ls_onnx_io *ls_onnx_output(const ls_onnx_model *m, int i);
int ls_onnx_n_nodes(const ls_onnx_model *m);
const char *ls_onnx_node_op(const ls_onnx_model *m, int i);
/* The batch size fixed by the inputs' first axes, or 0 when it is dynamic. */
int ls_onnx_fixed_batch(const ls_onnx_model *m);

/* Learned parameters: elements of the float initializers that Conv (weights,
 * bias), BatchNormalization (scale and bias, not the running statistics) and
 * Add take as operands, each tensor counted once - the count torch's
 * model.parameters() gives. -1 if out of memory. */
int64_t ls_onnx_param_count(const ls_onnx_model *m);

#endif
