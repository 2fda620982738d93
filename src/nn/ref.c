/* ref.c - the reference executor: each op as its ONNX definition reads. */
#include "nn/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *op_name(ls_op op)
{
    switch (op) {
    case LS_OP_CONV: return "Conv";
    case LS_OP_BATCHNORM: return "BatchNormalization";
    case LS_OP_RELU: return "Relu";
    case LS_OP_SIGMOID: return "Sigmoid";
    case LS_OP_ADD: return "Add";
    case LS_OP_CONCAT: return "Concat";
    case LS_OP_RESIZE: return "Resize";
    case LS_OP_PAD: return "Pad";
    case LS_OP_RESHAPE: return "Reshape";
    }
    return "?";
}

int64_t ls_ref_count(const ls_value *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) n *= v->dims[i];
    return n;
}

static int bad(ls_error *err, const ls_graph *g, int ni, int code, const char *what)
{
    const ls_node *n = &g->nodes[ni];
    return ls_error_set(err, code, "node %d '%s' (%s): %s", ni, n->name ? n->name : "?",
                        op_name(n->op), what);
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

static int conv_bias_index(const ls_node *n)
{
    return n->n_in >= 3 && n->attr.conv.residual != 2 && n->in[2] >= 0 ? 2 : -1;
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
    int bi = conv_bias_index(n);
    if (bi >= 0) {
        const ls_value *b = input_value(g, n, bi);
        if (!b || !b->data || ls_ref_count(b) != oc)
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

int ls_ref_check_node(const ls_graph *g, int ni, ls_error *err)
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
            if (!p || !p->data || ls_ref_count(p) != x->dims[1])
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
        if (ls_ref_count(x) != ls_ref_count(y))
            return bad(err, g, ni, LS_ERR_FORMAT, "element counts differ");
        return LS_OK;
    }
    return bad(err, g, ni, LS_ERR_UNSUPPORTED, "unknown op");
}

/* ---- resize geometry ---- */

double ls_resize_source(const ls_resize_attr *a, double scale, int64_t o, int64_t in_size,
                        int64_t out_size)
{
    if (scale <= 0) scale = (double)out_size / (double)in_size;
    switch (a->coord) {
    case LS_COORD_ALIGN_CORNERS:
        return out_size == 1 ? 0.0 : (double)o * (double)(in_size - 1) / (double)(out_size - 1);
    case LS_COORD_ASYMMETRIC: return (double)o / scale;
    case LS_COORD_PYTORCH_HALF_PIXEL:
        if (out_size == 1) return 0.0;
        return ((double)o + 0.5) / scale - 0.5;
    case LS_COORD_HALF_PIXEL:
    default: return ((double)o + 0.5) / scale - 0.5;
    }
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

int64_t ls_resize_nearest(const ls_resize_attr *a, double x, int64_t in_size)
{
    double r;
    switch (a->nearest) {
    case LS_NEAREST_ROUND_PREFER_CEIL: r = floor(x + 0.5); break;
    case LS_NEAREST_FLOOR: r = floor(x); break;
    case LS_NEAREST_CEIL: r = ceil(x); break;
    case LS_NEAREST_ROUND_PREFER_FLOOR:
    default: r = ceil(x - 0.5); break;
    }
    return clamp_index((int64_t)r, in_size);
}

void ls_resize_linear(double x, int64_t in_size, int64_t *i0, int64_t *i1, float *w1)
{
    if (x < 0) x = 0;
    if (x > (double)(in_size - 1)) x = (double)(in_size - 1);
    int64_t f = (int64_t)floor(x);
    *i0 = f;
    *i1 = f + 1 < in_size ? f + 1 : in_size - 1;
    *w1 = (float)(x - (double)f);
}

/* ---- ops ---- */

static void ref_conv(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_conv_attr *a = &n->attr.conv;
    const ls_value *x = &g->values[n->in[0]], *y = &g->values[n->out];
    const float *src = in[0], *w = in[1];
    int bi = conv_bias_index(n);
    const float *bias = bi >= 0 ? in[bi] : NULL;
    const float *res = a->residual >= 0 ? in[a->residual] : NULL;
    int64_t N = x->dims[0], IC = x->dims[1], IH = x->dims[2], IW = x->dims[3];
    int64_t OC = y->dims[1], OH = y->dims[2], OW = y->dims[3];
    int64_t icg = IC / a->group, ocg = OC / a->group;
    int64_t KH = a->kernel[0], KW = a->kernel[1];
    for (int64_t b = 0; b < N; b++)
        for (int64_t oc = 0; oc < OC; oc++) {
            float *plane = out + (b * OC + oc) * OH * OW;
            float b0 = bias ? bias[oc] : 0.0f;
            for (int64_t i = 0; i < OH * OW; i++) plane[i] = b0;
            int64_t grp = oc / ocg;
            for (int64_t ic = 0; ic < icg; ic++) {
                const float *sp = src + (b * IC + grp * icg + ic) * IH * IW;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        float wv = w[((oc * icg + ic) * KH + kh) * KW + kw];
                        for (int64_t oh = 0; oh < OH; oh++) {
                            int64_t ih = oh * a->stride[0] - a->pad[0] + kh * a->dilation[0];
                            if (ih < 0 || ih >= IH) continue;
                            for (int64_t ow = 0; ow < OW; ow++) {
                                int64_t iw = ow * a->stride[1] - a->pad[1] + kw * a->dilation[1];
                                if (iw >= 0 && iw < IW)
                                    plane[oh * OW + ow] += wv * sp[ih * IW + iw];
                            }
                        }
                    }
            }
            for (int64_t i = 0; i < OH * OW; i++) {
                float v = plane[i];
                if (res) v += res[(b * OC + oc) * OH * OW + i];
                if (a->fuse_relu && v < 0) v = 0;
                if (a->fuse_sigmoid) v = 1.0f / (1.0f + expf(-v)); /* as LS_OP_SIGMOID */
                plane[i] = v;
            }
        }
}

static void ref_batchnorm(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_value *x = &g->values[n->in[0]];
    int64_t N = x->dims[0], C = x->dims[1], inner = ls_ref_count(x) / (N * C);
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++) {
            float s = in[1][c] / sqrtf(in[4][c] + n->attr.bn_eps);
            float t = in[2][c] - in[3][c] * s;
            const float *p = in[0] + (b * C + c) * inner;
            float *q = out + (b * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) q[i] = p[i] * s + t;
        }
}

static void ref_add(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_value *a = &g->values[n->in[0]], *b = &g->values[n->in[1]];
    int64_t count = ls_ref_count(a);
    int nd = a->ndim, off = a->ndim - b->ndim;
    for (int64_t i = 0; i < count; i++) {
        /* Map a's flat index to b's by dropping the broadcast dims. */
        int64_t rem = i, bi = 0, bstride = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t coord = rem % a->dims[d];
            rem /= a->dims[d];
            if (d >= off) {
                int64_t bd = b->dims[d - off];
                bi += (bd == 1 ? 0 : coord) * bstride;
                bstride *= bd;
            }
        }
        out[i] = in[0][i] + in[1][bi];
    }
}

static void ref_concat(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_value *y = &g->values[n->out];
    int axis = n->attr.concat_axis < 0 ? n->attr.concat_axis + y->ndim : n->attr.concat_axis;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= y->dims[d];
    for (int d = axis + 1; d < y->ndim; d++) inner *= y->dims[d];
    int64_t off = 0;
    for (int k = 0; k < n->n_in; k++) {
        int64_t len = g->values[n->in[k]].dims[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out + o * y->dims[axis] * inner + off, in[k] + o * len,
                   (size_t)len * sizeof(float));
        off += len;
    }
}

static void ref_resize(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_resize_attr *a = &n->attr.resize;
    const ls_value *x = &g->values[n->in[0]], *y = &g->values[n->out];
    int64_t NC = x->dims[0] * x->dims[1], IH = x->dims[2], IW = x->dims[3], OH = y->dims[2],
            OW = y->dims[3];
    for (int64_t p = 0; p < NC; p++) {
        const float *src = in[0] + p * IH * IW;
        for (int64_t oh = 0; oh < OH; oh++) {
            double sy = ls_resize_source(a, a->scale[0], oh, IH, OH);
            for (int64_t ow = 0; ow < OW; ow++) {
                double sx = ls_resize_source(a, a->scale[1], ow, IW, OW);
                float v;
                if (a->mode == LS_RESIZE_NEAREST) {
                    v = src[ls_resize_nearest(a, sy, IH) * IW + ls_resize_nearest(a, sx, IW)];
                } else {
                    int64_t y0, y1, x0, x1;
                    float wy, wx;
                    ls_resize_linear(sy, IH, &y0, &y1, &wy);
                    ls_resize_linear(sx, IW, &x0, &x1, &wx);
                    float top = src[y0 * IW + x0] * (1 - wx) + src[y0 * IW + x1] * wx;
                    float bot = src[y1 * IW + x0] * (1 - wx) + src[y1 * IW + x1] * wx;
                    v = top * (1 - wy) + bot * wy;
                }
                out[(p * OH + oh) * OW + ow] = v;
            }
        }
    }
}

static void ref_pad(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_value *x = &g->values[n->in[0]], *y = &g->values[n->out];
    int nd = y->ndim;
    int64_t count = ls_ref_count(y);
    for (int64_t i = 0; i < count; i++) {
        int64_t rem = i, src = 0, sstride = 1;
        int inside = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t c = rem % y->dims[d] - n->attr.pad.pads[d];
            rem /= y->dims[d];
            if (c < 0 || c >= x->dims[d]) inside = 0;
            src += c * sstride;
            sstride *= x->dims[d];
        }
        out[i] = inside ? in[0][src] : n->attr.pad.value;
    }
}

int ls_ref_node(const ls_graph *g, int ni, const float *const *in, float *out, ls_error *err)
{
    int rc = ls_ref_check_node(g, ni, err);
    if (rc) return rc;
    const ls_node *n = &g->nodes[ni];
    int64_t count = ls_ref_count(&g->values[n->out]);
    switch (n->op) {
    case LS_OP_CONV: ref_conv(g, n, in, out); break;
    case LS_OP_BATCHNORM: ref_batchnorm(g, n, in, out); break;
    case LS_OP_RELU:
        for (int64_t i = 0; i < count; i++) out[i] = in[0][i] > 0 ? in[0][i] : 0;
        break;
    case LS_OP_SIGMOID:
        for (int64_t i = 0; i < count; i++) out[i] = 1.0f / (1.0f + expf(-in[0][i]));
        break;
    case LS_OP_ADD: ref_add(g, n, in, out); break;
    case LS_OP_CONCAT: ref_concat(g, n, in, out); break;
    case LS_OP_RESIZE: ref_resize(g, n, in, out); break;
    case LS_OP_PAD: ref_pad(g, n, in, out); break;
    case LS_OP_RESHAPE: memmove(out, in[0], (size_t)count * sizeof(float)); break;
    }
    return LS_OK;
}

int ls_ref_run(const ls_graph *g, const float *const *inputs, float *const *outputs, ls_error *err)
{
    if (!g || !inputs || !outputs)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_ref_run: NULL argument");
    float **data = calloc((size_t)g->n_values, sizeof *data);
    if (!data) return ls_error_set(err, LS_ERR_NOMEM, "ls_ref_run: out of memory");
    int rc = LS_OK;
    for (int i = 0; i < g->n_inputs; i++) data[g->inputs[i]] = (float *)inputs[i];
    for (int ni = 0; ni < g->n_nodes && rc == LS_OK; ni++) {
        const ls_node *n = &g->nodes[ni];
        rc = ls_ref_check_node(g, ni, err);
        if (rc) break;
        const float *in[LS_NN_MAX_INPUTS] = {0};
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0) continue;
            const ls_value *v = &g->values[n->in[k]];
            in[k] = v->data ? v->data : data[n->in[k]];
            if (!in[k]) {
                rc = bad(err, g, ni, LS_ERR_FORMAT, "reads a value no earlier node produced");
                break;
            }
        }
        if (rc) break;
        if (data[n->out]) {
            rc = bad(err, g, ni, LS_ERR_FORMAT, "writes a value already produced");
            break;
        }
        data[n->out] = malloc((size_t)ls_ref_count(&g->values[n->out]) * sizeof(float));
        if (!data[n->out]) {
            rc = ls_error_set(err, LS_ERR_NOMEM, "ls_ref_run: out of memory");
            break;
        }
        rc = ls_ref_node(g, ni, in, data[n->out], err);
    }
    for (int i = 0; i < g->n_outputs && rc == LS_OK; i++) {
        const ls_value *v = &g->values[g->outputs[i]];
        const float *src = v->data ? v->data : data[g->outputs[i]];
        if (!src) {
            rc = ls_error_set(err, LS_ERR_FORMAT, "graph output '%s' is never produced",
                              v->name ? v->name : "?");
            break;
        }
        memcpy(outputs[i], src, (size_t)ls_ref_count(v) * sizeof(float));
    }
    for (int i = 0; i < g->n_values; i++) {
        int is_input = 0;
        for (int k = 0; k < g->n_inputs; k++) is_input |= g->inputs[k] == i;
        if (!is_input) free(data[i]);
    }
    free(data);
    return rc;
}
