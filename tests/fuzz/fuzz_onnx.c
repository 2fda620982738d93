/* fuzz_onnx - a model file (`lipsync info`, a model directory's unet.onnx and
 * audio_encoder.onnx): ls_onnx_load_bytes, the model queries, then lowering
 * with and without the passes (ls_graph_build*), the input lookup by role and
 * the MAC count. Checks the graph's promises: indices in range, nodes in
 * execution order, constants with all their data. */
#include "fuzz_util.h"
#include "nn/graph.h"
#include "nn/lower.h"
#include "nn/onnx.h"

static void check_graph(const ls_graph *g, int batch)
{
    FUZZ_CHECK(g->batch == batch);
    FUZZ_CHECK(g->n_inputs >= 0 && g->n_inputs <= LS_NN_MAX_INPUTS);
    FUZZ_CHECK(g->n_outputs >= 0 && g->n_outputs <= LS_NN_MAX_INPUTS);
    for (int i = 0; i < g->n_values; i++) {
        const ls_value *v = &g->values[i];
        FUZZ_CHECK(v->ndim >= 0 && v->ndim <= LS_NN_MAX_DIMS);
        for (int d = 0; d < v->ndim; d++) FUZZ_CHECK(v->dims[d] >= 0);
        FUZZ_CHECK(v->producer >= -1 && v->producer < g->n_nodes);
        int64_t n = ls_value_count(v);
        if (v->data && n > 0) {
            volatile float x = v->data[0] + v->data[n - 1];
            (void)x;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *nd = &g->nodes[i];
        FUZZ_CHECK(nd->n_in >= 0 && nd->n_in <= LS_NN_MAX_INPUTS);
        FUZZ_CHECK(nd->out >= 0 && nd->out < g->n_values);
        FUZZ_CHECK(g->values[nd->out].producer == i);
        for (int k = 0; k < nd->n_in; k++) {
            FUZZ_CHECK(nd->in[k] >= 0 && nd->in[k] < g->n_values);
            FUZZ_CHECK(g->values[nd->in[k]].producer < i); /* execution order */
        }
    }
    for (int i = 0; i < g->n_inputs; i++)
        FUZZ_CHECK(g->inputs[i] >= 0 && g->inputs[i] < g->n_values);
    for (int i = 0; i < g->n_outputs; i++)
        FUZZ_CHECK(g->outputs[i] >= 0 && g->outputs[i] < g->n_values);
    ls_error err = {0};
    for (int role = LS_ROLE_VISUAL; role <= LS_ROLE_MEL; role++) {
        int k = ls_graph_find_input(g, (ls_input_role)role, NULL, &err);
        FUZZ_CHECK(k < g->n_inputs);
    }
    FUZZ_CHECK(ls_graph_conv_macs(g) >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    ls_onnx_model *m = NULL;
    ls_error err = {0};
    int rc = ls_onnx_load_bytes(data, size, &m, &err);
    fuzz_note("load", rc, err.msg);
    if (rc != LS_OK) {
        FUZZ_CHECK(!m && err.msg[0]);
        return 0;
    }
    (void)ls_onnx_opset(m);
    (void)ls_onnx_producer(m);
    for (int i = 0; i < ls_onnx_n_inputs(m); i++) FUZZ_CHECK(ls_onnx_input(m, i)->name);
    for (int i = 0; i < ls_onnx_n_outputs(m); i++) FUZZ_CHECK(ls_onnx_output(m, i)->name);
    for (int i = 0; i < ls_onnx_n_nodes(m); i++) (void)ls_onnx_node_op(m, i);
    (void)ls_onnx_param_count(m);
    int fixed = ls_onnx_fixed_batch(m);
    int batch = fixed > 0 ? fixed : 2;
    ls_graph *g = NULL;
    rc = ls_graph_build(m, batch, &g, &err);
    fuzz_note("build", rc, err.msg);
    if (rc == LS_OK) {
        check_graph(g, batch);
        ls_graph_destroy(g);
    } else {
        FUZZ_CHECK(err.msg[0]);
    }
    g = NULL;
    if (ls_graph_build_unoptimized(m, batch, &g, &err) == LS_OK) {
        check_graph(g, batch);
        ls_graph_destroy(g);
    }
    ls_onnx_destroy(m);
    return 0;
}
