#include "nn/test_engine_graphs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/test_util.h"

int64_t tg_count(const ls_value *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) n *= v->dims[i];
    return n;
}

tg *tg_new(int batch, uint64_t seed)
{
    tg *t = calloc(1, sizeof *t);
    t->g.batch = batch;
    t->rng = seed ? seed : 1;
    return t;
}

void tg_free(tg *t)
{
    if (!t) return;
    for (int i = 0; i < t->g.n_values; i++) {
        free(t->g.values[i].name);
        free(t->g.values[i].data);
    }
    for (int i = 0; i < t->g.n_nodes; i++) free(t->g.nodes[i].name);
    free(t->g.values);
    free(t->g.nodes);
    free(t);
}

int tg_value(tg *t, int ndim, const int64_t *dims)
{
    if (t->g.n_values == t->cap_v) {
        t->cap_v = t->cap_v ? 2 * t->cap_v : 16;
        t->g.values = realloc(t->g.values, (size_t)t->cap_v * sizeof *t->g.values);
    }
    ls_value *v = &t->g.values[t->g.n_values];
    memset(v, 0, sizeof *v);
    v->ndim = ndim;
    memcpy(v->dims, dims, (size_t)ndim * sizeof *dims);
    v->producer = -1;
    char name[32];
    snprintf(name, sizeof name, "v%d", t->g.n_values);
    v->name = strdup(name);
    return t->g.n_values++;
}

int tg_input4(tg *t, int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t d[4] = {n, c, h, w};
    int v = tg_value(t, 4, d);
    t->g.inputs[t->g.n_inputs++] = v;
    return v;
}

int tg_const(tg *t, int ndim, const int64_t *dims, float lo, float hi)
{
    int v = tg_value(t, ndim, dims);
    int64_t n = tg_count(&t->g.values[v]);
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = lo + (hi - lo) * (float)test_rand_uniform(&t->rng);
    t->g.values[v].data = d;
    return v;
}

void tg_output(tg *t, int v) { t->g.outputs[t->g.n_outputs++] = v; }

int tg_node(tg *t, ls_op op, const int *in, int n_in, int ndim, const int64_t *out_dims)
{
    int out = tg_value(t, ndim, out_dims);
    if (t->g.n_nodes == t->cap_n) {
        t->cap_n = t->cap_n ? 2 * t->cap_n : 16;
        t->g.nodes = realloc(t->g.nodes, (size_t)t->cap_n * sizeof *t->g.nodes);
    }
    ls_node *n = &t->g.nodes[t->g.n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    char name[32];
    snprintf(name, sizeof name, "n%d", t->g.n_nodes);
    n->name = strdup(name);
    n->n_in = n_in;
    memcpy(n->in, in, (size_t)n_in * sizeof *in);
    n->out = out;
    t->g.values[out].producer = t->g.n_nodes;
    for (int k = 0; k < n_in; k++)
        if (in[k] >= 0) t->g.values[in[k]].n_consumers++;
    t->g.n_nodes++;
    return out;
}

int tg_conv(tg *t, int x, const tg_conv_spec *s)
{
    const ls_value *xv = &t->g.values[x];
    int64_t N = xv->dims[0], IC = xv->dims[1], H = xv->dims[2], W = xv->dims[3];
    int group = s->group ? s->group : 1, dil = s->dil ? s->dil : 1;
    int64_t wd[4] = {s->oc, IC / group, s->kh, s->kw};
    float bound = 1.0f / (float)(IC / group * s->kh * s->kw);
    int w = tg_const(t, 4, wd, -2 * bound, 2 * bound);
    int in[4] = {x, w, -1, -1}, n_in = 2;
    if (s->bias) {
        int64_t bd[1] = {s->oc};
        in[n_in++] = tg_const(t, 1, bd, -0.5f, 0.5f);
    }
    int res_slot = -1;
    if (s->residual >= 0) {
        res_slot = n_in;
        in[n_in++] = s->residual;
    }
    int64_t oh = (H + s->pad[0] + s->pad[2] - dil * (s->kh - 1) - 1) / s->sh + 1;
    int64_t ow = (W + s->pad[1] + s->pad[3] - dil * (s->kw - 1) - 1) / s->sw + 1;
    int64_t od[4] = {N, s->oc, oh, ow};
    int out = tg_node(t, LS_OP_CONV, in, n_in, 4, od);
    ls_conv_attr *a = &t->g.nodes[t->g.n_nodes - 1].attr.conv;
    a->kernel[0] = s->kh;
    a->kernel[1] = s->kw;
    a->stride[0] = s->sh;
    a->stride[1] = s->sw;
    a->dilation[0] = a->dilation[1] = dil;
    memcpy(a->pad, s->pad, sizeof a->pad);
    a->group = group;
    a->fuse_relu = s->relu;
    a->residual = res_slot;
    return out;
}

int tg_resize(tg *t, int x, int64_t oh, int64_t ow, ls_resize_mode mode, ls_resize_coord coord,
              ls_nearest_mode nearest, float sh, float sw)
{
    const ls_value *xv = &t->g.values[x];
    int64_t od[4] = {xv->dims[0], xv->dims[1], oh, ow};
    int out = tg_node(t, LS_OP_RESIZE, &x, 1, 4, od);
    ls_resize_attr *a = &t->g.nodes[t->g.n_nodes - 1].attr.resize;
    a->mode = mode;
    a->coord = coord;
    a->nearest = nearest;
    a->scale[0] = sh;
    a->scale[1] = sw;
    return out;
}

int tg_pad4(tg *t, int x, int top, int left, int bottom, int right, float value)
{
    const ls_value *xv = &t->g.values[x];
    int64_t od[4] = {xv->dims[0], xv->dims[1], xv->dims[2] + top + bottom,
                     xv->dims[3] + left + right};
    int out = tg_node(t, LS_OP_PAD, &x, 1, 4, od);
    ls_pad_attr *a = &t->g.nodes[t->g.n_nodes - 1].attr.pad;
    memset(a->pads, 0, sizeof a->pads);
    a->pads[2] = top;
    a->pads[3] = left;
    a->pads[6] = bottom;
    a->pads[7] = right;
    a->value = value;
    return out;
}

int tg_unary(tg *t, ls_op op, int x)
{
    const ls_value *xv = &t->g.values[x];
    int64_t d[LS_NN_MAX_DIMS];
    memcpy(d, xv->dims, sizeof d);
    return tg_node(t, op, &x, 1, xv->ndim, d);
}

int tg_concat(tg *t, const int *in, int n_in, int axis)
{
    const ls_value *x = &t->g.values[in[0]];
    int64_t d[LS_NN_MAX_DIMS];
    memcpy(d, x->dims, sizeof d);
    d[axis] = 0;
    for (int k = 0; k < n_in; k++) d[axis] += t->g.values[in[k]].dims[axis];
    int out = tg_node(t, LS_OP_CONCAT, in, n_in, x->ndim, d);
    t->g.nodes[t->g.n_nodes - 1].attr.concat_axis = axis;
    return out;
}

float **tg_random_inputs(const tg *t, uint64_t seed)
{
    float **a = calloc((size_t)t->g.n_inputs + 1, sizeof *a);
    uint64_t rng = seed;
    for (int k = 0; k < t->g.n_inputs; k++) {
        int64_t n = tg_count(&t->g.values[t->g.inputs[k]]);
        a[k] = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) a[k][i] = (float)(2 * test_rand_uniform(&rng) - 1);
    }
    return a;
}

float **tg_alloc_outputs(const tg *t)
{
    float **a = calloc((size_t)t->g.n_outputs + 1, sizeof *a);
    for (int k = 0; k < t->g.n_outputs; k++)
        a[k] = calloc((size_t)tg_count(&t->g.values[t->g.outputs[k]]), sizeof(float));
    return a;
}

void tg_free_arrays(float **a, int n)
{
    if (!a) return;
    for (int k = 0; k < n; k++) free(a[k]);
    free(a);
}
