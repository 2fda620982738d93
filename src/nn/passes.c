/* passes.c - graph rewrites run after lowering.
 *
 * Each pass marks the nodes it makes redundant as dead and rewires the
 * survivors; a final sweep compacts nodes and values. Fusions never move a
 * node: a Conv absorbs a later Add or Relu by taking over its output value,
 * which keeps the node order a valid execution order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/passes.h"

typedef struct pass_ctx {
    ls_graph_builder *b;
    char *dead;       /* per node */
    char *is_output;  /* per value: a graph output */
    ls_error *err;
} pass_ctx;

static ls_node *producer_node(pass_ctx *p, int value, ls_op op)
{
    int k = p->b->g->values[value].producer;
    if (k < 0 || p->dead[k] || p->b->g->nodes[k].op != op) return NULL;
    return &p->b->g->nodes[k];
}

/* A value read by exactly one node and not a graph output: its producer
 * can be rewritten to write that node's output instead. */
static int private_edge(pass_ctx *p, int value)
{
    return p->b->g->values[value].n_consumers == 1 && !p->is_output[value];
}

static void replace_uses(ls_graph *g, int from, int to)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == from) g->nodes[i].in[k] = to;
}

static int activated(const ls_node *conv)
{
    return conv->attr.conv.fuse_relu || conv->attr.conv.fuse_sigmoid;
}

static void relink(pass_ctx *p) { ls_graph_relink(p->b->g, p->dead); }

/* Conv absorbs the node `n` that reads its output: conv now writes n's output. */
static void absorb(pass_ctx *p, ls_node *conv, int n_index)
{
    conv->out = p->b->g->nodes[n_index].out;
    p->dead[n_index] = 1;
    relink(p);
}

static void drop_zero_pads(pass_ctx *p)
{
    ls_graph *g = p->b->g;
    for (int i = 0; i < g->n_nodes; i++) {
        ls_node *n = &g->nodes[i];
        if (p->dead[i] || n->op != LS_OP_PAD || p->is_output[n->out]) continue;
        int nonzero = 0;
        for (int d = 0; d < 2 * g->values[n->in[0]].ndim; d++) nonzero |= n->attr.pad.pads[d] != 0;
        if (nonzero) continue;
        replace_uses(g, n->out, n->in[0]);
        p->dead[i] = 1;
    }
    relink(p);
}

/* Conv then BatchNormalization: y = s*(conv(x) + b - mean) + beta with
 * s = scale / sqrt(var + eps) is conv(x) with weights W*s and bias
 * (b - mean)*s + beta. New weight and bias values are made so that a
 * weight shared with another node keeps its original data. */
static int fold_batchnorm(pass_ctx *p)
{
    ls_graph *g = p->b->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (p->dead[i] || g->nodes[i].op != LS_OP_BATCHNORM) continue;
        ls_node *bn = &g->nodes[i];
        ls_node *conv = producer_node(p, bn->in[0], LS_OP_CONV);
        if (!conv || activated(conv) || conv->attr.conv.residual >= 0 ||
            !private_edge(p, bn->in[0]))
            continue;
        const ls_value *w = &g->values[conv->in[1]];
        int64_t m = w->dims[0], per = ls_value_count(w) / m;
        float *nw = malloc((size_t)ls_value_count(w) * sizeof(float));
        float *nb = malloc((size_t)m * sizeof(float));
        if (!nw || !nb) {
            free(nw);
            free(nb);
            return ls_error_set(p->err, LS_ERR_NOMEM, "out of memory folding '%s'", bn->name);
        }
        const float *scale = g->values[bn->in[1]].data, *beta = g->values[bn->in[2]].data;
        const float *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
        const float *bias = conv->n_in > 2 ? g->values[conv->in[2]].data : NULL;
        for (int64_t o = 0; o < m; o++) {
            double s = (double)scale[o] / sqrt((double)var[o] + (double)bn->attr.bn_eps);
            for (int64_t k = 0; k < per; k++) nw[o * per + k] = (float)(w->data[o * per + k] * s);
            nb[o] =
                (float)(((bias ? (double)bias[o] : 0.0) - (double)mean[o]) * s + (double)beta[o]);
        }
        char name[256];
        int64_t wdims[4];
        memcpy(wdims, w->dims, sizeof wdims);
        snprintf(name, sizeof name, "%s+%s.W", conv->name, bn->name);
        int wv = ls_builder_add_value(p->b, name, 4, wdims, nw, p->err);
        snprintf(name, sizeof name, "%s+%s.B", conv->name, bn->name);
        int bv = wv < 0 ? wv : ls_builder_add_value(p->b, name, 1, &m, nb, p->err);
        free(nw);
        free(nb);
        if (bv < 0) return bv;
        /* add_value may have moved the arrays: index afresh. */
        bn = &g->nodes[i];
        conv = &g->nodes[g->values[bn->in[0]].producer];
        conv->in[1] = wv;
        conv->in[2] = bv;
        conv->n_in = 3;
        absorb(p, conv, i);
    }
    return LS_OK;
}

/* Add(conv(x), r) becomes a Conv with a residual input when r is ready
 * before the conv runs (r's producer comes earlier in the order). */
static void fuse_residual_add(pass_ctx *p)
{
    ls_graph *g = p->b->g;
    for (int i = 0; i < g->n_nodes; i++) {
        ls_node *add = &g->nodes[i];
        if (p->dead[i] || add->op != LS_OP_ADD) continue;
        if (g->values[add->in[0]].data || g->values[add->in[1]].data || add->in[0] == add->in[1])
            continue;
        int best = -1, best_k = -1;
        for (int k = 0; k < 2; k++) {
            int v = add->in[k], other = add->in[1 - k];
            ls_node *conv = producer_node(p, v, LS_OP_CONV);
            if (!conv || activated(conv) || conv->attr.conv.residual >= 0 || !private_edge(p, v))
                continue;
            int ci = g->values[v].producer;
            if (g->values[other].producer >= ci) continue;
            if (ci > best) best = ci, best_k = k;
        }
        if (best < 0) continue;
        ls_node *conv = &g->nodes[best];
        conv->in[conv->n_in] = add->in[1 - best_k];
        conv->attr.conv.residual = conv->n_in++;
        absorb(p, conv, i);
    }
}

/* Conv + Relu and Conv + Sigmoid (the UNet's output: the logistic then
 * runs on the conv's real channels, not on a blocked layout's padding). */
static void fuse_activation(pass_ctx *p)
{
    ls_graph *g = p->b->g;
    for (int i = 0; i < g->n_nodes; i++) {
        ls_node *act = &g->nodes[i];
        if (p->dead[i] || (act->op != LS_OP_RELU && act->op != LS_OP_SIGMOID)) continue;
        ls_node *conv = producer_node(p, act->in[0], LS_OP_CONV);
        if (!conv || activated(conv) || !private_edge(p, act->in[0])) continue;
        if (act->op == LS_OP_RELU)
            conv->attr.conv.fuse_relu = 1;
        else
            conv->attr.conv.fuse_sigmoid = 1;
        absorb(p, conv, i);
    }
}

/* Drops dead nodes, nodes whose result nobody needs, and unused values. */
static int compact(pass_ctx *p)
{
    ls_graph *g = p->b->g;
    /* Backwards liveness: a node lives if a graph output or a live node reads it. */
    char *needed = calloc((size_t)g->n_values + 1, 1);
    int *remap = malloc(((size_t)g->n_values + 1) * sizeof *remap);
    if (!needed || !remap) {
        free(needed);
        free(remap);
        return ls_error_set(p->err, LS_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++) needed[v] = p->is_output[v];
    for (int i = 0; i < g->n_inputs; i++) needed[g->inputs[i]] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (p->dead[i] || !needed[g->nodes[i].out]) {
            p->dead[i] = 1;
            continue;
        }
        for (int k = 0; k < g->nodes[i].n_in; k++) needed[g->nodes[i].in[k]] = 1;
    }
    int nv = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (!needed[v]) {
            free(g->values[v].name);
            free(g->values[v].data);
            remap[v] = -1;
            continue;
        }
        remap[v] = nv;
        g->values[nv++] = g->values[v];
    }
    g->n_values = nv;
    int nn = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (p->dead[i]) {
            free(g->nodes[i].name);
            continue;
        }
        ls_node *n = &g->nodes[nn++];
        *n = g->nodes[i];
        n->out = remap[n->out];
        for (int k = 0; k < n->n_in; k++) n->in[k] = remap[n->in[k]];
    }
    g->n_nodes = nn;
    for (int i = 0; i < g->n_inputs; i++) g->inputs[i] = remap[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++) g->outputs[i] = remap[g->outputs[i]];
    free(needed);
    free(remap);
    ls_graph_relink(g, NULL);
    return LS_OK;
}

int ls_graph_optimize(ls_graph_builder *b, ls_error *err)
{
    ls_graph *g = b->g;
    pass_ctx p = {.b = b, .err = err};
    p.dead = calloc((size_t)g->n_nodes + 1, 1);
    /* Folding adds values: size the output flags for the final count. */
    p.is_output = calloc((size_t)g->n_values + 2 * (size_t)g->n_nodes + 1, 1);
    if (!p.dead || !p.is_output) {
        free(p.dead);
        free(p.is_output);
        return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < g->n_outputs; i++) p.is_output[g->outputs[i]] = 1;
    relink(&p);
    drop_zero_pads(&p);
    int rc = fold_batchnorm(&p);
    if (!rc) {
        fuse_residual_add(&p);
        fuse_activation(&p);
        rc = compact(&p);
    }
    free(p.dead);
    free(p.is_output);
    return rc;
}
