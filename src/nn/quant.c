/* quant.c - int8 calibration (quant.h). */
#include "nn/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ref.h"

struct ls_calib {
    int n_values;
    int64_t items;
    char **names; /* the graph's value names (NULL for unnamed ones) */
    unsigned char *seen;
    float *lo, *hi;
};

int ls_calib_create(const ls_graph *g, ls_calib **out, ls_error *err)
{
    *out = NULL;
    if (!g || g->n_values < 1) return ls_error_set(err, LS_ERR_INVALID_ARG, "calibration: no graph");
    ls_calib *c = calloc(1, sizeof *c);
    if (c) {
        c->n_values = g->n_values;
        c->names = calloc((size_t)g->n_values, sizeof *c->names);
        c->seen = calloc((size_t)g->n_values, 1);
        c->lo = calloc((size_t)g->n_values, sizeof *c->lo);
        c->hi = calloc((size_t)g->n_values, sizeof *c->hi);
    }
    int ok = c && c->names && c->seen && c->lo && c->hi;
    for (int v = 0; ok && v < g->n_values; v++)
        if (g->values[v].name && !(c->names[v] = strdup(g->values[v].name))) ok = 0;
    if (!ok) {
        ls_calib_destroy(c);
        return ls_error_set(err, LS_ERR_NOMEM, "calibration: out of memory");
    }
    *out = c;
    return LS_OK;
}

void ls_calib_destroy(ls_calib *c)
{
    if (!c) return;
    for (int v = 0; c->names && v < c->n_values; v++) free(c->names[v]);
    free(c->names);
    free(c->seen);
    free(c->lo);
    free(c->hi);
    free(c);
}

/* NaN and infinity are skipped: a range is what a quantization can hold. */
static void widen(void *ctx, int v, const float *data, int64_t count)
{
    ls_calib *c = ctx;
    if (v < 0 || v >= c->n_values || count < 1) return;
    float lo = c->seen[v] ? c->lo[v] : INFINITY, hi = c->seen[v] ? c->hi[v] : -INFINITY;
    for (int64_t i = 0; i < count; i++) {
        float x = data[i];
        if (!isfinite(x)) continue;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    if (lo <= hi) {
        c->seen[v] = 1;
        c->lo[v] = lo;
        c->hi[v] = hi;
    }
}

int ls_calib_observe(ls_calib *c, const ls_graph *g, const float *const *inputs, ls_error *err)
{
    if (!c || !g || g->n_values != c->n_values)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "calibration: not made for this graph");
    float *outs[LS_NN_MAX_INPUTS] = {0};
    int rc = LS_OK;
    for (int k = 0; k < g->n_outputs && !rc; k++) {
        outs[k] = malloc((size_t)ls_value_count(&g->values[g->outputs[k]]) * sizeof(float));
        if (!outs[k]) rc = ls_error_set(err, LS_ERR_NOMEM, "calibration: out of memory");
    }
    if (!rc) rc = ls_ref_run_observed(g, inputs, outs, widen, c, err);
    for (int k = 0; k < g->n_outputs; k++) free(outs[k]);
    if (!rc) c->items += g->batch;
    return rc;
}

int64_t ls_calib_items(const ls_calib *c) { return c ? c->items : 0; }

int ls_calib_range(const ls_calib *c, int v, float *lo, float *hi)
{
    if (!c || v < 0 || v >= c->n_values || !c->seen[v]) return 0;
    *lo = c->lo[v];
    *hi = c->hi[v];
    return 1;
}

int ls_calib_count(const ls_calib *c) { return c ? c->n_values : 0; }

const char *ls_calib_name(const ls_calib *c, int v)
{
    return c && v >= 0 && v < c->n_values ? c->names[v] : NULL;
}

static int find_name(const ls_calib *c, const char *name)
{
    for (int v = 0; name && v < c->n_values; v++)
        if (c->names[v] && !strcmp(c->names[v], name)) return v;
    return -1;
}

int ls_calib_set(ls_calib *c, const char *name, float lo, float hi, ls_error *err)
{
    int v = c ? find_name(c, name) : -1;
    if (v < 0)
        return ls_error_set(err, LS_ERR_NOT_FOUND, "calibration: the model has no value '%s'",
                            name ? name : "");
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return ls_error_set(err, LS_ERR_RANGE, "calibration: value '%s' has a bad range", name);
    c->seen[v] = 1;
    c->lo[v] = lo;
    c->hi[v] = hi;
    return LS_OK;
}

int ls_calib_apply(const ls_calib *c, ls_graph *g, ls_error *err)
{
    if (!c || !g) return ls_error_set(err, LS_ERR_INVALID_ARG, "calibration: no graph");
    for (int v = 0; v < g->n_values; v++) {
        ls_value *x = &g->values[v];
        /* the same graph: by index; the model at another batch size: by name */
        int k = g->n_values == c->n_values && (!x->name || !c->names[v] ||
                                               !strcmp(x->name, c->names[v]))
                    ? v
                    : find_name(c, x->name);
        x->has_range = !x->data && k >= 0 && c->seen[k];
        x->range_lo = x->has_range ? c->lo[k] : 0;
        x->range_hi = x->has_range ? c->hi[k] : 0;
    }
    return LS_OK;
}
