/* graph.c - the graph IR (graph.h): storage, the builder, op facts, input
 * discovery and statistics. */
#include "nn/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ls_graph_destroy(ls_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        free(g->values[i].data);
    }
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i].name);
    free(g->values);
    free(g->nodes);
    free(g);
}

int64_t ls_value_count(const ls_value *v)
{
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++) n *= v->dims[d];
    return n;
}

const char *ls_op_name(ls_op op)
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

int ls_conv_bias_input(const ls_node *n)
{
    return n->n_in >= 3 && n->attr.conv.residual != 2 && n->in[2] >= 0 ? 2 : -1;
}

int ls_builder_init(ls_graph_builder *b, int batch, ls_error *err)
{
    memset(b, 0, sizeof *b);
    b->g = calloc(1, sizeof *b->g);
    if (!b->g) return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    b->g->batch = batch;
    return LS_OK;
}

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return -1;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

int ls_builder_add_value(ls_graph_builder *b, const char *name, int ndim, const int64_t *dims,
                         const float *data, ls_error *err)
{
    ls_graph *g = b->g;
    if (ndim < 0 || ndim > LS_NN_MAX_DIMS)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "tensor '%s' has rank %d", name, ndim);
    if (grow((void **)&g->values, &b->cap_values, g->n_values + 1, sizeof *g->values))
        return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    ls_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->dims[d] = dims[d];
    v->producer = -1;
    v->name = strdup(name ? name : "");
    if (!v->name) return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    if (data) {
        size_t n = (size_t)ls_value_count(v);
        v->data = malloc((n ? n : 1) * sizeof(float));
        if (!v->data) {
            free(v->name);
            return ls_error_set(err, LS_ERR_NOMEM, "out of memory for tensor '%s'", name);
        }
        memcpy(v->data, data, n * sizeof(float));
    }
    return g->n_values++;
}

int ls_builder_add_node(ls_graph_builder *b, ls_op op, const char *name, int n_in, const int *in,
                        int out, ls_error *err)
{
    ls_graph *g = b->g;
    if (n_in < 0 || n_in > LS_NN_MAX_INPUTS)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "node '%s' has %d inputs (at most %d)", name,
                            n_in, LS_NN_MAX_INPUTS);
    if (grow((void **)&g->nodes, &b->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    ls_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = strdup(name);
    if (!n->name) return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->out = out;
    if (op == LS_OP_CONV) n->attr.conv.residual = -1;
    g->values[out].producer = g->n_nodes;
    return g->n_nodes++;
}

void ls_graph_relink(ls_graph *g, const char *dead)
{
    for (int v = 0; v < g->n_values; v++) {
        g->values[v].producer = -1;
        g->values[v].n_consumers = 0;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        if (dead && dead[i]) continue;
        g->values[g->nodes[i].out].producer = i;
        for (int k = 0; k < g->nodes[i].n_in; k++) g->values[g->nodes[i].in[k]].n_consumers++;
    }
}

/* ---- inputs by role ---- */

static const char *role_name(ls_input_role role)
{
    switch (role) {
    case LS_ROLE_VISUAL: return "visual [B,6,320,320]";
    case LS_ROLE_AUDIO_FEAT: return "audio features [B,32,16,16]";
    case LS_ROLE_MEL: return "mel spectrogram [B,1,80,16]";
    }
    return "?";
}

static int role_matches(const ls_value *v, ls_input_role role)
{
    static const int64_t want[3][3] = {{6, 320, 320}, {32, 16, 16}, {1, 80, 16}};
    if (v->ndim != 4 || (unsigned)role > LS_ROLE_MEL) return 0;
    for (int d = 0; d < 3; d++)
        if (v->dims[d + 1] != want[role][d]) return 0;
    return 1;
}

int ls_graph_find_input(const ls_graph *g, ls_input_role role, const char *name_or_null,
                        ls_error *err)
{
    char names[256] = "";
    for (int i = 0; i < g->n_inputs; i++) {
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s'%s'", i ? ", " : "",
                 g->values[g->inputs[i]].name);
    }
    if (name_or_null) {
        for (int i = 0; i < g->n_inputs; i++)
            if (!strcmp(g->values[g->inputs[i]].name, name_or_null)) return i;
        return ls_error_set(err, LS_ERR_NOT_FOUND, "the model has no input '%s' (inputs: %s)",
                            name_or_null, names);
    }
    int found = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        if (!role_matches(&g->values[g->inputs[i]], role)) continue;
        if (found >= 0)
            return ls_error_set(err, LS_ERR_INVALID_ARG,
                                "inputs '%s' and '%s' both look like the %s input: name one",
                                g->values[g->inputs[found]].name, g->values[g->inputs[i]].name,
                                role_name(role));
        found = i;
    }
    if (found < 0)
        return ls_error_set(err, LS_ERR_NOT_FOUND,
                            "no input has the shape of the %s input (inputs: %s)", role_name(role),
                            names);
    return found;
}

int64_t ls_graph_conv_macs(const ls_graph *g)
{
    int64_t macs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        if (n->op != LS_OP_CONV) continue;
        const ls_value *w = &g->values[n->in[1]];
        macs += ls_value_count(&g->values[n->out]) * (w->dims[1] * w->dims[2] * w->dims[3]);
    }
    return macs;
}
