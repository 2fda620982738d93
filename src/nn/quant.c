/* quant.c - int8 calibration (quant.h). */
#include "nn/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ref.h"

struct ls_calib {
    int n_values;
    int64_t items;
    char **names;         /* the graph's value names (NULL for unnamed ones) */
    int *chans;           /* per value: channels with a range of their own (4-D: C, else 1) */
    int64_t *plane;       /* per value: elements of one channel of one item */
    unsigned char *seen;
    float **lo, **hi;     /* per value: chans[v] lows and highs */
};

static int channels_of(const ls_value *v) { return v->ndim == 4 ? (int)v->dims[1] : 1; }

int ls_calib_create(const ls_graph *g, ls_calib **out, ls_error *err)
{
    *out = NULL;
    if (!g || g->n_values < 1) return ls_error_set(err, LS_ERR_INVALID_ARG, "calibration: no graph");
    ls_calib *c = calloc(1, sizeof *c);
    if (c) {
        c->n_values = g->n_values;
        c->names = calloc((size_t)g->n_values, sizeof *c->names);
        c->chans = calloc((size_t)g->n_values, sizeof *c->chans);
        c->plane = calloc((size_t)g->n_values, sizeof *c->plane);
        c->seen = calloc((size_t)g->n_values, 1);
        c->lo = calloc((size_t)g->n_values, sizeof *c->lo);
        c->hi = calloc((size_t)g->n_values, sizeof *c->hi);
    }
    int ok = c && c->names && c->chans && c->plane && c->seen && c->lo && c->hi;
    for (int v = 0; ok && v < g->n_values; v++) {
        const ls_value *x = &g->values[v];
        c->chans[v] = channels_of(x);
        c->plane[v] = x->ndim == 4 ? x->dims[2] * x->dims[3]
                      : x->ndim && x->dims[0] > 0 ? ls_value_count(x) / x->dims[0]
                                                  : ls_value_count(x);
        if (x->name && !(c->names[v] = strdup(x->name))) ok = 0;
        if (ok && !x->data) {
            c->lo[v] = malloc((size_t)c->chans[v] * sizeof(float));
            c->hi[v] = malloc((size_t)c->chans[v] * sizeof(float));
            ok = c->lo[v] && c->hi[v];
        }
    }
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
    for (int v = 0; v < c->n_values; v++) {
        if (c->names) free(c->names[v]);
        if (c->lo) free(c->lo[v]);
        if (c->hi) free(c->hi[v]);
    }
    free(c->names);
    free(c->chans);
    free(c->plane);
    free(c->seen);
    free(c->lo);
    free(c->hi);
    free(c);
}

/* Widens value v's channel ranges by data (count elements: items of
 * chans[v] planes of plane[v] elements, NCHW). NaN and infinity are skipped:
 * a range is what a quantization can hold. */
static void widen(void *ctx, int v, const float *data, int64_t count)
{
    ls_calib *c = ctx;
    if (v < 0 || v >= c->n_values || count < 1 || !c->lo[v]) return;
    int C = c->chans[v];
    int64_t plane = c->plane[v];
    if (plane < 1 || count % (C * plane)) return;
    float *lo = c->lo[v], *hi = c->hi[v];
    if (!c->seen[v])
        for (int k = 0; k < C; k++) {
            lo[k] = INFINITY;
            hi[k] = -INFINITY;
        }
    for (int64_t p = 0; p < count / plane; p++) {
        int k = (int)(p % C);
        const float *x = data + p * plane;
        float l = lo[k], h = hi[k];
        for (int64_t i = 0; i < plane; i++) {
            if (!isfinite(x[i])) continue;
            l = x[i] < l ? x[i] : l;
            h = x[i] > h ? x[i] : h;
        }
        lo[k] = l;
        hi[k] = h;
    }
    /* A channel that never held a finite value: zero range. */
    for (int k = 0; k < C; k++)
        if (!(lo[k] <= hi[k])) lo[k] = hi[k] = 0;
    c->seen[v] = 1;
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

int ls_calib_count(const ls_calib *c) { return c ? c->n_values : 0; }

const char *ls_calib_name(const ls_calib *c, int v)
{
    return c && v >= 0 && v < c->n_values ? c->names[v] : NULL;
}

int ls_calib_channels(const ls_calib *c, int v, const float **lo, const float **hi)
{
    if (!c || v < 0 || v >= c->n_values || !c->seen[v]) return 0;
    *lo = c->lo[v];
    *hi = c->hi[v];
    return c->chans[v];
}

int ls_calib_range(const ls_calib *c, int v, float *lo, float *hi)
{
    const float *l, *h;
    int n = ls_calib_channels(c, v, &l, &h);
    if (!n) return 0;
    *lo = l[0];
    *hi = h[0];
    for (int k = 1; k < n; k++) {
        *lo = l[k] < *lo ? l[k] : *lo;
        *hi = h[k] > *hi ? h[k] : *hi;
    }
    return 1;
}

static int find_name(const ls_calib *c, const char *name)
{
    for (int v = 0; name && v < c->n_values; v++)
        if (c->names[v] && !strcmp(c->names[v], name)) return v;
    return -1;
}

int ls_calib_set(ls_calib *c, const char *name, const float *lo, const float *hi, int channels,
                 ls_error *err)
{
    int v = c ? find_name(c, name) : -1;
    if (v < 0 || !c->lo[v])
        return ls_error_set(err, LS_ERR_NOT_FOUND, "the model has no activation '%s'",
                            name ? name : "");
    if (channels != c->chans[v])
        return ls_error_set(err, LS_ERR_RANGE, "'%s' has %d channels, not %d", name, c->chans[v],
                            channels);
    for (int k = 0; k < channels; k++)
        if (!isfinite(lo[k]) || !isfinite(hi[k]) || lo[k] > hi[k])
            return ls_error_set(err, LS_ERR_RANGE, "'%s' channel %d: range not finite with lo <= hi",
                                name, k);
    memcpy(c->lo[v], lo, (size_t)channels * sizeof(float));
    memcpy(c->hi[v], hi, (size_t)channels * sizeof(float));
    c->seen[v] = 1;
    return LS_OK;
}

int ls_calib_apply(const ls_calib *c, ls_graph *g, ls_error *err)
{
    if (!c || !g) return ls_error_set(err, LS_ERR_INVALID_ARG, "calibration: no graph");
    for (int v = 0; v < g->n_values; v++) {
        ls_value *x = &g->values[v];
        /* the same graph: by index; the model at another batch size: by name */
        int k = g->n_values == c->n_values &&
                        (!x->name || !c->names[v] || !strcmp(x->name, c->names[v]))
                    ? v
                    : find_name(c, x->name);
        x->has_range = !x->data && k >= 0 && c->seen[k] && c->chans[k] == channels_of(x);
        x->range_channels = x->has_range ? c->chans[k] : 0;
        x->chan_lo = x->has_range ? c->lo[k] : NULL;
        x->chan_hi = x->has_range ? c->hi[k] : NULL;
        x->range_lo = x->range_hi = 0;
        if (x->has_range) ls_calib_range(c, k, &x->range_lo, &x->range_hi);
    }
    return LS_OK;
}
