/* ref.c - the reference executor: each op as its ONNX definition reads. */
#include "nn/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/resize_map.h"
#include "nn/shape.h"

static int bad(ls_error *err, const ls_graph *g, int ni, int code, const char *what)
{
    const ls_node *n = &g->nodes[ni];
    return ls_error_set(err, code, "node %d '%s' (%s): %s", ni, n->name ? n->name : "?",
                        ls_op_name(n->op), what);
}

/* ---- ops ---- */

static void ref_conv(const ls_graph *g, const ls_node *n, const float *const *in, float *out)
{
    const ls_conv_attr *a = &n->attr.conv;
    const ls_value *x = &g->values[n->in[0]], *y = &g->values[n->out];
    const float *src = in[0], *w = in[1];
    int bi = ls_conv_bias_input(n);
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
    int64_t N = x->dims[0], C = x->dims[1], inner = ls_value_count(x) / (N * C);
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
    int64_t count = ls_value_count(a);
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
    int64_t count = ls_value_count(y);
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
    int rc = ls_shape_check_node(g, ni, err);
    if (rc) return rc;
    const ls_node *n = &g->nodes[ni];
    int64_t count = ls_value_count(&g->values[n->out]);
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
    return ls_ref_run_observed(g, inputs, outputs, NULL, NULL, err);
}

int ls_ref_run_observed(const ls_graph *g, const float *const *inputs, float *const *outputs,
                        ls_ref_observer seen, void *ctx, ls_error *err)
{
    if (!g || !inputs || !outputs)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "ls_ref_run: NULL argument");
    float **data = calloc((size_t)g->n_values, sizeof *data);
    if (!data) return ls_error_set(err, LS_ERR_NOMEM, "ls_ref_run: out of memory");
    int rc = LS_OK;
    for (int i = 0; i < g->n_inputs; i++) {
        data[g->inputs[i]] = (float *)inputs[i];
        if (seen) seen(ctx, g->inputs[i], inputs[i], ls_value_count(&g->values[g->inputs[i]]));
    }
    for (int ni = 0; ni < g->n_nodes && rc == LS_OK; ni++) {
        const ls_node *n = &g->nodes[ni];
        rc = ls_shape_check_node(g, ni, err);
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
        data[n->out] = malloc((size_t)ls_value_count(&g->values[n->out]) * sizeof(float));
        if (!data[n->out]) {
            rc = ls_error_set(err, LS_ERR_NOMEM, "ls_ref_run: out of memory");
            break;
        }
        rc = ls_ref_node(g, ni, in, data[n->out], err);
        if (!rc && seen) seen(ctx, n->out, data[n->out], ls_value_count(&g->values[n->out]));
    }
    for (int i = 0; i < g->n_outputs && rc == LS_OK; i++) {
        const ls_value *v = &g->values[g->outputs[i]];
        const float *src = v->data ? v->data : data[g->outputs[i]];
        if (!src) {
            rc = ls_error_set(err, LS_ERR_FORMAT, "graph output '%s' is never produced",
                              v->name ? v->name : "?");
            break;
        }
        memcpy(outputs[i], src, (size_t)ls_value_count(v) * sizeof(float));
    }
    for (int i = 0; i < g->n_values; i++) {
        int is_input = 0;
        for (int k = 0; k < g->n_inputs; k++) is_input |= g->inputs[k] == i;
        if (!is_input) free(data[i]);
    }
    free(data);
    return rc;
}
