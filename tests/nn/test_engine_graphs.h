/* test_engine_graphs.h - small hand-built ls_graphs for the executor tests.
 *
 * A builder owns its graph (freed by tg_free, not ls_graph_destroy, so the
 * tests do not depend on the loader). Constants are filled from a seeded
 * PRNG; every helper returns the index of the value it creates. */
#ifndef LS_TEST_ENGINE_GRAPHS_H
#define LS_TEST_ENGINE_GRAPHS_H

#include <stdint.h>

#include "nn/graph.h"

typedef struct tg {
    ls_graph g;
    int cap_v, cap_n;
    uint64_t rng;
} tg;

tg *tg_new(int batch, uint64_t seed);
void tg_free(tg *t);
/* An activation value with the given dims (not yet produced). */
int tg_value(tg *t, int ndim, const int64_t *dims);
int tg_input4(tg *t, int64_t n, int64_t c, int64_t h, int64_t w);
/* A constant of `count` values uniform in [lo, hi). */
int tg_const(tg *t, int ndim, const int64_t *dims, float lo, float hi);
void tg_output(tg *t, int v);
/* Appends a node and returns its out value (created with out_dims). */
int tg_node(tg *t, ls_op op, const int *in, int n_in, int ndim, const int64_t *out_dims);

typedef struct tg_conv_spec {
    int oc, kh, kw, sh, sw;
    int pad[4];     /* top, left, bottom, right */
    int group, dil; /* dil 0 -> 1 */
    int bias, relu;
    int residual; /* value index added before the ReLU, or -1 */
} tg_conv_spec;
int tg_conv(tg *t, int x, const tg_conv_spec *s);
int tg_resize(tg *t, int x, int64_t oh, int64_t ow, ls_resize_mode mode, ls_resize_coord coord,
              ls_nearest_mode nearest, float sh, float sw);
int tg_pad4(tg *t, int x, int top, int left, int bottom, int right, float value);
int tg_unary(tg *t, ls_op op, int x);
int tg_concat(tg *t, const int *in, int n_in, int axis);

/* Random input data for every graph input, caller frees each. */
float **tg_random_inputs(const tg *t, uint64_t seed);
void tg_free_arrays(float **a, int n);
/* Output buffers sized for every graph output. */
float **tg_alloc_outputs(const tg *t);
int64_t tg_count(const ls_value *v);

#endif
