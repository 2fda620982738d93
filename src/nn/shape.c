/* shape.c - the shape rules of graph.h's ops (shape.h). */
#include "nn/shape.h"

#include <stdlib.h>

static int bad(ls_error *err, const ls_graph *g, int ni, int code, const char *what)
{
    const ls_node *n = &g->nodes[ni];
    return ls_error_set(err, code, "node %d '%s' (%s): %s", ni, n->name ? n->name : "?",
                        ls_op_name(n->op), what);
}

/* The value behind input k, or NULL if the index is out of range. */
static const ls_value *input_value(const ls_graph *g, const ls_node *n, int k)
{
    if (k < 0 || k >= n->n_in || n->in[k] < 0 || n->in[k] >= g->n_values) return NULL;
    return &g->values[n->in[k]];
}

static int same_dims(const ls_value *a, const ls_value *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

/* b broadcasts to a when, aligned on the right, each dim of b is 1 or a's. */
static int broadcasts_to(const ls_value *b, const ls_value *a)
{
    if (b->ndim > a->ndim) return 0;
    for (int i = 0; i < b->ndim; i++) {
        int64_t db = b->dims[b->ndim - 1 - i], da = a->dims[a->ndim - 1 - i];
        if (db != 1 && db != da) return 0;
    }
    return 1;
}

static int check_conv(const ls_graph *g, int ni, ls_error *err)
{
    const ls_node *n = &g->nodes[ni];
    const ls_conv_attr *a = &n->attr.conv;
    const ls_value *x = input_value(g, n, 0), *w = input_value(g, n, 1);
    const ls_value *y = &g->values[n->out];
    if (!x || !w) return bad(err, g, ni, LS_ERR_FORMAT, "needs an input and weights");
    if (x->ndim != 4 || y->ndim != 4)
        return bad(err, g, ni, LS_ERR_UNSUPPORTED, "only 2-D convolutions (4-D tensors)");
    if (w->ndim != 4 || !w->data)
        return bad(err, g, ni, LS_ERR_FORMAT, "weights must be a 4-D constant");
    int64_t oc = w->dims[0];
    if (a->group < 1 || x->dims[1] % a->group || oc % a->group ||
        w->dims[1] * a->group != x->dims[1])
        return bad(err, g, ni, LS_ERR_FORMAT, "channels do not match the weights and group");
    if (a->kernel[0] != w->dims[2] || a->kernel[1] != w->dims[3])
        return bad(err, g, ni, LS_ERR_FORMAT, "kernel_shape does not match the weights");
    for (int i = 0; i < 2; i++)
        if (a->stride[i] < 1 || a->dilation[i] < 1)
            return bad(err, g, ni, LS_ERR_FORMAT, "strides and dilations must be >= 1");
    for (int i = 0; i < 4; i++)
        if (a->pad[i] < 0) return bad(err, g, ni, LS_ERR_FORMAT, "negative pads");
    int64_t oh =
        (x->dims[2] + a->pad[0] + a->pad[2] - (int64_t)a->dilation[0] * (a->kernel[0] - 1) - 1) /
            a->stride[0] +
        1;
    int64_t ow =
        (x->dims[3] + a->pad[1] + a->pad[3] - (int64_t)a->dilation[1] * (a->kernel[1] - 1) - 1) /
            a->stride[1] +
        1;
    if (oh < 1 || ow < 1 || y->dims[0] != x->dims[0] || y->dims[1] != oc || y->dims[2] != oh ||
        y->dims[3] != ow)
        return bad(err, g, ni, LS_ERR_FORMAT, "output shape does not follow from the input");
    int bi = ls_conv_bias_input(n);
    if (bi >= 0) {
        const ls_value *b = input_value(g, n, bi);
        if (!b || !b->data || ls_value_count(b) != oc)
            return bad(err, g, ni, LS_ERR_FORMAT,
                       "bias must be a constant of one value per output channel");
    }
    if (a->residual >= 0) {
        const ls_value *r = input_value(g, n, a->residual);
        if (a->residual < 2 || !r || !same_dims(r, y))
            return bad(err, g, ni, LS_ERR_FORMAT, "fused residual must have the output's shape");
    }
    int slots = 2 + (n->n_in >= 3 && a->residual != 2) + (a->residual >= 0);
    if (n->n_in != slots) return bad(err, g, ni, LS_ERR_FORMAT, "unexpected number of inputs");
    return LS_OK;
}

int ls_shape_check_node(const ls_graph *g, int ni, ls_error *err)
{
    if (!g || ni < 0 || ni >= g->n_nodes)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "no node %d", ni);
    const ls_node *n = &g->nodes[ni];
    if (n->out < 0 || n->out >= g->n_values)
        return bad(err, g, ni, LS_ERR_FORMAT, "output index out of range");
    if (n->n_in < 1 || n->n_in > LS_NN_MAX_INPUTS)
        return bad(err, g, ni, LS_ERR_FORMAT, "bad input count");
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= g->n_values || (n->in[k] < 0 && !(n->op == LS_OP_CONV && k == 2)))
            return bad(err, g, ni, LS_ERR_FORMAT, "input index out of range");
    const ls_value *x = input_value(g, n, 0), *y = &g->values[n->out];
    if (!x) return bad(err, g, ni, LS_ERR_FORMAT, "missing first input");
    if (y->data) return bad(err, g, ni, LS_ERR_FORMAT, "output is a constant");
    for (int i = 0; i < y->ndim; i++)
        if (y->dims[i] < 1) return bad(err, g, ni, LS_ERR_FORMAT, "empty output");
    switch (n->op) {
    case LS_OP_CONV: return check_conv(g, ni, err);
    case LS_OP_BATCHNORM: {
        if (n->n_in != 5 || x->ndim < 2)
            return bad(err, g, ni, LS_ERR_FORMAT, "needs x, scale, bias, mean, var");
        for (int k = 1; k < 5; k++) {
            const ls_value *p = input_value(g, n, k);
            if (!p || !p->data || ls_value_count(p) != x->dims[1])
                return bad(err, g, ni, LS_ERR_FORMAT,
                           "parameters must be constants of one value per channel");
        }
        if (!same_dims(x, y))
            return bad(err, g, ni, LS_ERR_FORMAT, "output shape differs from input");
        return LS_OK;
    }
    case LS_OP_RELU:
    case LS_OP_SIGMOID:
        if (n->n_in != 1 || !same_dims(x, y))
            return bad(err, g, ni, LS_ERR_FORMAT, "output shape differs from input");
        return LS_OK;
    case LS_OP_ADD: {
        const ls_value *b = input_value(g, n, 1);
        if (n->n_in != 2 || !b) return bad(err, g, ni, LS_ERR_FORMAT, "needs two inputs");
        if (!same_dims(x, y) || !(same_dims(b, x) || broadcasts_to(b, x)))
            return bad(err, g, ni, LS_ERR_UNSUPPORTED,
                       "only a same-shape add or one broadcasting its second input");
        return LS_OK;
    }
    case LS_OP_CONCAT: {
        int axis = n->attr.concat_axis < 0 ? n->attr.concat_axis + y->ndim : n->attr.concat_axis;
        if (axis < 0 || axis >= y->ndim) return bad(err, g, ni, LS_ERR_FORMAT, "axis out of range");
        int64_t sum = 0;
        for (int k = 0; k < n->n_in; k++) {
            const ls_value *v = input_value(g, n, k);
            if (!v || v->ndim != y->ndim)
                return bad(err, g, ni, LS_ERR_FORMAT, "inputs differ in rank");
            for (int d = 0; d < y->ndim; d++)
                if (d != axis && v->dims[d] != y->dims[d])
                    return bad(err, g, ni, LS_ERR_FORMAT, "inputs differ off the concat axis");
            sum += v->dims[axis];
        }
        if (sum != y->dims[axis])
            return bad(err, g, ni, LS_ERR_FORMAT, "output size is not the sum of the inputs");
        return LS_OK;
    }
    case LS_OP_RESIZE: {
        const ls_resize_attr *a = &n->attr.resize;
        if (x->ndim != 4 || y->ndim != 4 || x->dims[0] != y->dims[0] || x->dims[1] != y->dims[1])
            return bad(err, g, ni, LS_ERR_UNSUPPORTED, "only resizes of H and W of 4-D tensors");
        if ((a->mode != LS_RESIZE_NEAREST && a->mode != LS_RESIZE_LINEAR) ||
            a->coord < LS_COORD_HALF_PIXEL || a->coord > LS_COORD_PYTORCH_HALF_PIXEL ||
            a->nearest < LS_NEAREST_ROUND_PREFER_FLOOR || a->nearest > LS_NEAREST_CEIL)
            return bad(err, g, ni, LS_ERR_UNSUPPORTED, "unknown resize mode");
        return LS_OK;
    }
    case LS_OP_PAD:
        if (x->ndim != y->ndim)
            return bad(err, g, ni, LS_ERR_FORMAT, "output rank differs from input");
        for (int d = 0; d < x->ndim; d++)
            if (x->dims[d] + n->attr.pad.pads[d] + n->attr.pad.pads[d + x->ndim] != y->dims[d])
                return bad(err, g, ni, LS_ERR_FORMAT, "output shape does not follow from the pads");
        return LS_OK;
    case LS_OP_RESHAPE:
        if (ls_value_count(x) != ls_value_count(y))
            return bad(err, g, ni, LS_ERR_FORMAT, "element counts differ");
        return LS_OK;
    }
    return bad(err, g, ni, LS_ERR_UNSUPPORTED, "unknown op");
}

int ls_shape_check_graph(const ls_graph *g, ls_error *err)
{
    if (g->n_inputs < 0 || g->n_inputs > LS_NN_MAX_INPUTS || g->n_outputs < 1 ||
        g->n_outputs > LS_NN_MAX_INPUTS)
        return ls_error_set(err, LS_ERR_FORMAT, "graph has a bad number of inputs or outputs");
    for (int k = 0; k < g->n_inputs; k++)
        if (g->inputs[k] < 0 || g->inputs[k] >= g->n_values || g->values[g->inputs[k]].data)
            return ls_error_set(err, LS_ERR_FORMAT, "graph input %d is not an activation", k);
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] < 0 || g->outputs[k] >= g->n_values)
            return ls_error_set(err, LS_ERR_FORMAT, "graph output %d out of range", k);
    /* Every value read must be a constant, an input or written earlier. */
    char *ready = calloc((size_t)g->n_values, 1);
    if (!ready) return ls_error_set(err, LS_ERR_NOMEM, "graph check: out of memory");
    for (int i = 0; i < g->n_values; i++) ready[i] = g->values[i].data != NULL;
    for (int k = 0; k < g->n_inputs; k++) ready[g->inputs[k]] = 1;
    int rc = LS_OK;
    for (int ni = 0; ni < g->n_nodes && !rc; ni++) {
        rc = ls_shape_check_node(g, ni, err);
        if (rc) break;
        const ls_node *n = &g->nodes[ni];
        for (int k = 0; k < n->n_in && !rc; k++)
            if (n->in[k] >= 0 && !ready[n->in[k]])
                rc = ls_error_set(err, LS_ERR_FORMAT,
                                  "node %d '%s' reads a value no earlier node produced", ni,
                                  n->name ? n->name : "?");
        if (!rc && ready[n->out])
            rc = ls_error_set(err, LS_ERR_FORMAT, "node %d '%s' writes a value already produced",
                              ni, n->name ? n->name : "?");
        ready[n->out] = 1;
    }
    for (int k = 0; k < g->n_outputs && !rc; k++)
        if (!ready[g->outputs[k]])
            rc = ls_error_set(err, LS_ERR_FORMAT, "graph output %d is never produced", k);
    free(ready);
    return rc;
}
