/* graph.h - the small graph IR the executors run.
 *
 * An ONNX model is parsed (onnx.h) and lowered into an ls_graph for one batch
 * size: every shape is concrete, all shape plumbing (Shape, Gather, Cast,
 * Unsqueeze, Concat of shapes, ...) has been folded into constants, and only
 * compute nodes remain. Passes then rewrite it: BatchNormalization folded
 * into the preceding Conv, all-zero Pads dropped, Conv+Relu and Conv+Add
 * (residual) fused into the Conv's attributes.
 *
 * Values are the graph's edges. A value with `data` is a constant (weights,
 * biases); the others are activations computed at run time, NCHW float32 at
 * the graph's inputs and outputs (an executor may keep its own layout inside).
 * Nodes are stored in a valid execution order.
 */
#ifndef LS_NN_GRAPH_H
#define LS_NN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define LS_NN_MAX_DIMS 6
#define LS_NN_MAX_INPUTS 8

typedef enum ls_op {
    LS_OP_CONV,      /* in: x, W, [B]; attrs conv; fused relu/residual add */
    LS_OP_BATCHNORM, /* in: x, scale, bias, mean, var; attrs eps (unfused ones) */
    LS_OP_RELU,
    LS_OP_SIGMOID,
    LS_OP_ADD,       /* in: a, b (same shape, or b broadcast from a constant) */
    LS_OP_CONCAT,    /* in: n tensors; attrs axis */
    LS_OP_RESIZE,    /* in: x; attrs resize (output size resolved) */
    LS_OP_PAD,       /* in: x; attrs pad (constant mode) */
    LS_OP_RESHAPE    /* in: x; output dims given by the output value (Reshape,
                        Squeeze, Unsqueeze, Flatten on activations: a view) */
} ls_op;

typedef enum ls_resize_mode { LS_RESIZE_NEAREST, LS_RESIZE_LINEAR } ls_resize_mode;

typedef enum ls_resize_coord {
    LS_COORD_HALF_PIXEL,         /* also pytorch_half_pixel for out > 1 */
    LS_COORD_ALIGN_CORNERS,
    LS_COORD_ASYMMETRIC,
    LS_COORD_PYTORCH_HALF_PIXEL
} ls_resize_coord;

typedef enum ls_nearest_mode {
    LS_NEAREST_ROUND_PREFER_FLOOR, /* ONNX default */
    LS_NEAREST_ROUND_PREFER_CEIL,
    LS_NEAREST_FLOOR,
    LS_NEAREST_CEIL
} ls_nearest_mode;

typedef struct ls_conv_attr {
    int kernel[2];         /* kh, kw */
    int stride[2];         /* sh, sw */
    int dilation[2];       /* dh, dw */
    int pad[4];            /* top, left, bottom, right */
    int group;
    int fuse_relu;         /* apply ReLU after bias (+ residual) */
    int fuse_sigmoid;      /* apply the logistic function after bias (+ residual) */
    int residual;          /* index in node->in of a tensor added before ReLU, or -1 */
} ls_conv_attr;

typedef struct ls_resize_attr {
    ls_resize_mode mode;
    ls_resize_coord coord;
    ls_nearest_mode nearest;
    float scale[2];        /* h, w scale factors as given (output/input) */
} ls_resize_attr;

typedef struct ls_pad_attr {
    int64_t pads[2 * LS_NN_MAX_DIMS]; /* ONNX order: begins then ends, per axis */
    float value;
} ls_pad_attr;

typedef struct ls_node {
    ls_op op;
    char *name;            /* the ONNX node name (or "<type>_<index>" if unnamed) */
    int n_in;
    int in[LS_NN_MAX_INPUTS];  /* value indices */
    int out;               /* value index (one output per compute node) */
    union {
        ls_conv_attr conv;
        ls_resize_attr resize;
        ls_pad_attr pad;
        int concat_axis;
        float bn_eps;
    } attr;
} ls_node;

typedef struct ls_value {
    char *name;
    int ndim;
    int64_t dims[LS_NN_MAX_DIMS];
    float *data;           /* constants only; NULL for activations */
    int producer;          /* node index, or -1 for inputs and constants */
    int n_consumers;
    /* Activations: the range calibration saw (quant.h), which int8 engines
     * quantize to; has_range 0: not calibrated. Per channel (range_channels
     * of them: C for 4-D values, else 1) in chan_lo/chan_hi, which point into
     * the calibration (not owned); range_lo/hi over all channels. */
    int has_range, range_channels;
    float range_lo, range_hi;
    const float *chan_lo, *chan_hi;
} ls_value;

typedef struct ls_graph {
    int batch;             /* the batch size the shapes were resolved for */
    int n_values, n_nodes;
    ls_value *values;
    ls_node *nodes;
    int n_inputs, n_outputs;
    int inputs[LS_NN_MAX_INPUTS];   /* value indices, in model order */
    int outputs[LS_NN_MAX_INPUTS];
} ls_graph;

void ls_graph_destroy(ls_graph *g);

/* Number of elements of a value (the product of its dims). */
int64_t ls_value_count(const ls_value *v);

/* The ONNX name of an op ("Conv", "BatchNormalization", ...), for messages. */
const char *ls_op_name(ls_op op);

/* Index in n->in of a Conv node's bias, or -1 when it has none. */
int ls_conv_bias_input(const ls_node *n);

/* ---- building and rewriting (the loader: lower.c appends nodes in execution
 * order, passes.c rewrites them in place) ---- */

/* A graph under construction: its value and node arrays grow as needed. */
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

/* ---- queries ---- */

/* Finds the graph input for a role by rank and shape whatever its name, or
 * by explicit name if given. */
typedef enum {
    LS_ROLE_VISUAL,     /* [B,6,320,320] */
    LS_ROLE_AUDIO_FEAT, /* [B,32,16,16] */
    LS_ROLE_MEL         /* [B,1,80,16] */
} ls_input_role;

/* Index into g->inputs, or a negative ls_status (not found, ambiguous). */
int ls_graph_find_input(const ls_graph *g, ls_input_role role, const char *name_or_null,
                        ls_error *err);

/* Multiply-accumulates of the graph's convolutions for its whole batch. */
int64_t ls_graph_conv_macs(const ls_graph *g);

#endif
