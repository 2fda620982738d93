/* test_onnx.c - loading and lowering the torch-exported SyncTalk_2D models
 * (tools/gen_test_models.py): op and node counts after the passes,
 * parameters and MACs, input discovery across both name sets, opsets 11
 * and 17, batch 1 and 3, and a naive evaluation of the lowered audio
 * encoder against torch's outputs (checks BN folding and the fusions). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "nn/lower.h"
#include "nn/onnx.h"
#include "support/test_util.h"

static const char *model_path(const char *file)
{
    static char buf[1024];
    const char *dir = getenv("LS_MODELS_DIR");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "models", file);
    return buf;
}

static ls_onnx_model *load(const char *file)
{
    ls_error err = {0};
    ls_onnx_model *m = NULL;
    int rc = ls_onnx_load(model_path(file), &m, &err);
    if (rc) fail_msg("loading %s: %s", file, err.msg);
    return m;
}

/* The two UNets are loaded once for the group (49 MB each). */
typedef struct models {
    ls_onnx_model *unet11, *unet17;
} models;

static int load_models(void **state)
{
    static models ms;
    ms.unet11 = load("unet_op11.onnx");
    ms.unet17 = load("unet_op17.onnx");
    *state = &ms;
    return ms.unet11 && ms.unet17 ? 0 : -1;
}

static int free_models(void **state)
{
    models *ms = *state;
    ls_onnx_destroy(ms->unet11);
    ls_onnx_destroy(ms->unet17);
    return 0;
}

static ls_graph *build(const ls_onnx_model *m, int batch, int optimize)
{
    ls_error err = {0};
    ls_graph *g = NULL;
    int rc = optimize ? ls_graph_build(m, batch, &g, &err)
                      : ls_graph_build_unoptimized(m, batch, &g, &err);
    if (rc) fail_msg("lowering for batch %d: %s", batch, err.msg);
    return g;
}

typedef struct op_counts {
    int op[LS_OP_RESHAPE + 1];
    int conv_relu, conv_sigmoid, conv_residual, conv_depthwise;
} op_counts;

static op_counts count_ops(const ls_graph *g)
{
    op_counts c = {{0}, 0, 0, 0, 0};
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        c.op[n->op]++;
        if (n->op != LS_OP_CONV) continue;
        c.conv_relu += n->attr.conv.fuse_relu;
        c.conv_sigmoid += n->attr.conv.fuse_sigmoid;
        c.conv_residual += n->attr.conv.residual >= 0;
        c.conv_depthwise +=
            n->attr.conv.group > 1 && n->attr.conv.group == g->values[n->in[0]].dims[1];
    }
    return c;
}

/* Structural invariants every lowered graph keeps: execution order,
 * producer/consumer bookkeeping, constants with data and activations without. */
static void check_invariants(const ls_graph *g)
{
    int *consumers = calloc((size_t)g->n_values, sizeof *consumers);
    char *ready = calloc((size_t)g->n_values, 1);
    assert_non_null(consumers);
    assert_non_null(ready);
    for (int v = 0; v < g->n_values; v++) ready[v] = g->values[v].data != NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        ready[g->inputs[i]] = 1;
        assert_null(g->values[g->inputs[i]].data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            assert_true(n->in[k] >= 0 && n->in[k] < g->n_values);
            if (!ready[n->in[k]]) fail_msg("node %s reads %s before it is computed", n->name,
                                           g->values[n->in[k]].name);
            consumers[n->in[k]]++;
        }
        assert_false(ready[n->out]);
        assert_null(g->values[n->out].data);
        assert_int_equal(g->values[n->out].producer, i);
        ready[n->out] = 1;
    }
    for (int v = 0; v < g->n_values; v++) {
        assert_int_equal(g->values[v].n_consumers, consumers[v]);
        assert_true(ready[v]); /* no value is left unused and unproduced */
    }
    free(consumers);
    free(ready);
}

static void check_unet(const ls_onnx_model *m, int batch, const char *visual, const char *audio)
{
    assert_int_equal(ls_onnx_param_count(m), 12186935);
    ls_graph *g = build(m, batch, 1);
    assert_int_equal(g->batch, batch);
    check_invariants(g);
    op_counts c = count_ops(g);
    /* 93 convs; every BatchNormalization folded, every zero Pad dropped, and
     * all ReLUs (62), residual Adds (15) and the output Sigmoid fused into
     * the convs. */
    assert_int_equal(c.op[LS_OP_CONV], 93);
    assert_int_equal(c.op[LS_OP_BATCHNORM], 0);
    assert_int_equal(c.op[LS_OP_PAD], 0);
    assert_int_equal(c.op[LS_OP_RELU], 0);
    assert_int_equal(c.op[LS_OP_ADD], 0);
    assert_int_equal(c.conv_relu, 62);
    assert_int_equal(c.conv_residual, 15);
    assert_int_equal(c.conv_depthwise, 30); /* one per inverted residual block */
    assert_int_equal(c.op[LS_OP_RESIZE], 5);
    assert_int_equal(c.op[LS_OP_CONCAT], 6);
    assert_int_equal(c.op[LS_OP_SIGMOID], 0);
    assert_int_equal(c.conv_sigmoid, 1);
    assert_int_equal(g->n_nodes, 93 + 5 + 6);
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        if (n->op == LS_OP_RESIZE) {
            assert_int_equal(n->attr.resize.mode, LS_RESIZE_LINEAR);
            assert_int_equal(n->attr.resize.coord, LS_COORD_ALIGN_CORNERS);
            assert_true(n->attr.resize.scale[0] == 2.0f && n->attr.resize.scale[1] == 2.0f);
        }
        if (n->op == LS_OP_CONCAT) {
            /* The decoder's cat([upsampled, skip]) and the fuse's cat([x6, audio]). */
            assert_int_equal(n->attr.concat_axis, 1);
            assert_int_equal(n->n_in, 2);
            const ls_value *a = &g->values[n->in[0]], *b = &g->values[n->in[1]];
            int up = g->nodes[a->producer].op == LS_OP_RESIZE;
            assert_int_equal(g->nodes[b->producer].op, LS_OP_CONV);
            assert_true(up || (a->dims[1] == 512 && a->dims[2] == 10));
            assert_true(a->dims[2] == b->dims[2] && a->dims[3] == b->dims[3]);
            assert_int_equal(g->values[n->out].dims[1], a->dims[1] + b->dims[1]);
        }
        if (n->op == LS_OP_CONV) assert_int_equal(n->n_in, 3 + (n->attr.conv.residual >= 0));
    }
    /* The audio branch's 3x3 stride-2 pad-3 conv: [B,256,16,16] -> [B,512,10,10]. */
    int found = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        if (n->op == LS_OP_CONV && n->attr.conv.stride[0] == 2 && n->attr.conv.pad[0] == 3) {
            const ls_value *o = &g->values[n->out];
            assert_true(n->attr.conv.kernel[0] == 3 && n->attr.conv.pad[3] == 3 &&
                        n->attr.conv.fuse_relu);
            assert_true(o->dims[1] == 512 && o->dims[2] == 10 && o->dims[3] == 10);
            found++;
        }
    }
    assert_int_equal(found, 1);
    /* 4.886 GMAC per item, as the issue states for this architecture. */
    int64_t macs = ls_graph_conv_macs(g);
    assert_int_equal(macs % batch, 0);
    assert_true(llabs(macs / batch - 4886000000ll) < 1000000ll);

    assert_int_equal(g->n_inputs, 2);
    assert_int_equal(g->n_outputs, 1);
    ls_error err = {0};
    int vi = ls_graph_find_input(g, LS_ROLE_VISUAL, NULL, &err);
    int ai = ls_graph_find_input(g, LS_ROLE_AUDIO_FEAT, NULL, &err);
    assert_true(vi >= 0 && ai >= 0 && vi != ai);
    assert_string_equal(g->values[g->inputs[vi]].name, visual);
    assert_string_equal(g->values[g->inputs[ai]].name, audio);
    assert_int_equal(g->values[g->inputs[vi]].dims[0], batch);
    assert_int_equal(ls_graph_find_input(g, LS_ROLE_AUDIO_FEAT, audio, &err), ai);
    assert_int_equal(ls_graph_find_input(g, LS_ROLE_MEL, NULL, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, visual)); /* the message lists the inputs */
    assert_int_equal(ls_graph_find_input(g, LS_ROLE_VISUAL, "nope", &err), LS_ERR_NOT_FOUND);
    const ls_value *out = &g->values[g->outputs[0]];
    int64_t want[4] = {batch, 3, 320, 320};
    assert_int_equal(out->ndim, 4);
    assert_memory_equal(out->dims, want, sizeof want);
    assert_int_equal(g->nodes[out->producer].op, LS_OP_CONV);
    assert_int_equal(g->nodes[out->producer].attr.conv.fuse_sigmoid, 1);
    ls_graph_destroy(g);
}

static void test_unet_op11_batch1(void **state)
{
    check_unet(((models *)*state)->unet11, 1, "input", "audio");
}

static void test_unet_op11_batch3(void **state)
{
    check_unet(((models *)*state)->unet11, 3, "input", "audio");
}

static void test_unet_op17_fixed_batch(void **state)
{
    const ls_onnx_model *m = ((models *)*state)->unet17;
    check_unet(m, 1, "visual_input", "audio_input");
    assert_int_equal(ls_onnx_opset(m), 17);
    assert_int_equal(ls_onnx_fixed_batch(m), 1);
    ls_graph *g = (ls_graph *)1;
    ls_error err = {0};
    assert_int_equal(ls_graph_build(m, 3, &g, &err), LS_ERR_INVALID_ARG);
    assert_null(g);
    assert_non_null(strstr(err.msg, "fixed batch of 1"));
    assert_non_null(strstr(err.msg, "visual_input"));
}

/* Before the passes the graph holds exactly the ops torch emitted, minus the
 * shape plumbing: the passes, not the lowering, remove BN/Pad/Relu/Add. */
static void test_unet_unoptimized(void **state)
{
    const ls_onnx_model *unets[] = {((models *)*state)->unet11, ((models *)*state)->unet17};
    for (int f = 0; f < 2; f++) {
        const ls_onnx_model *m = unets[f];
        assert_int_equal(ls_onnx_opset(m), f ? 17 : 11);
        int shape_ops = 0;
        for (int i = 0; i < ls_onnx_n_nodes(m); i++) {
            const char *op = ls_onnx_node_op(m, i);
            shape_ops += !strcmp(op, "Shape") || !strcmp(op, "Gather") || !strcmp(op, "Slice") ||
                         !strcmp(op, "ConstantOfShape") || !strcmp(op, "Transpose");
        }
        assert_true(shape_ops >= 10); /* the file does hold shape plumbing to fold */
        ls_graph *g = build(m, 1, 0);
        check_invariants(g);
        op_counts c = count_ops(g);
        assert_int_equal(c.op[LS_OP_CONV], 93);
        assert_int_equal(c.op[LS_OP_BATCHNORM], 92);
        assert_int_equal(c.op[LS_OP_RELU], 62);
        assert_int_equal(c.op[LS_OP_ADD], 15);
        assert_int_equal(c.op[LS_OP_PAD], 5);
        assert_int_equal(c.op[LS_OP_CONCAT], 6);
        assert_int_equal(c.op[LS_OP_RESHAPE], 0);
        assert_int_equal(c.conv_relu + c.conv_residual, 0);
        for (int i = 0; i < g->n_nodes; i++) {
            const ls_node *n = &g->nodes[i];
            if (n->op != LS_OP_PAD) continue;
            /* torch pads by the size difference, which is zero at 320x320. */
            for (int d = 0; d < 8; d++) assert_int_equal(n->attr.pad.pads[d], 0);
            assert_int_equal(g->values[n->out].ndim, 4);
        }
        assert_int_equal(g->n_nodes, 93 + 92 + 62 + 15 + 5 + 5 + 6 + 1);
        ls_graph_destroy(g);
    }
}

/* ---- the audio encoder, evaluated naively ---- */

/* Direct convolution with the fused bias, residual and ReLU. */
static void naive_conv(const ls_graph *g, const ls_node *n, float **vals)
{
    const ls_conv_attr *a = &n->attr.conv;
    const ls_value *xv = &g->values[n->in[0]], *wv = &g->values[n->in[1]], *ov = &g->values[n->out];
    const float *x = vals[n->in[0]], *w = wv->data,
                *bias = n->n_in > 2 ? g->values[n->in[2]].data : NULL;
    const float *res = a->residual >= 0 ? vals[n->in[a->residual]] : NULL;
    int64_t B = ov->dims[0], M = ov->dims[1], OH = ov->dims[2], OW = ov->dims[3];
    int64_t C = xv->dims[1], H = xv->dims[2], W = xv->dims[3], cg = wv->dims[1], mg = M / a->group;
    float *y = vals[n->out];
    for (int64_t b = 0; b < B; b++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = bias ? bias[m] : 0.0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int kh = 0; kh < a->kernel[0]; kh++)
                            for (int kw = 0; kw < a->kernel[1]; kw++) {
                                int64_t ih = oh * a->stride[0] - a->pad[0] + kh * a->dilation[0];
                                int64_t iw = ow * a->stride[1] - a->pad[1] + kw * a->dilation[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                int64_t ic = (m / mg) * cg + c;
                                s += (double)x[((b * C + ic) * H + ih) * W + iw] *
                                     w[((m * cg + c) * a->kernel[0] + kh) * a->kernel[1] + kw];
                            }
                    int64_t o = ((b * M + m) * OH + oh) * OW + ow;
                    if (res) s += res[o];
                    if (a->fuse_relu && s < 0) s = 0;
                    y[o] = (float)(a->fuse_sigmoid ? 1.0 / (1.0 + exp(-s)) : s);
                }
}

/* Lowers the encoder for `batch`; with `evaluate`, runs it naively on
 * torch's input for that batch and compares with torch's output. */
static void check_encoder(const char *file, int batch, const char *input_name, int evaluate)
{
    ls_onnx_model *m = load(file);
    assert_int_equal(ls_onnx_param_count(m), 2812672);
    ls_graph *g = build(m, batch, 1);
    check_invariants(g);
    op_counts c = count_ops(g);
    assert_int_equal(c.op[LS_OP_CONV], 13);
    assert_int_equal(c.conv_relu, 13);
    assert_int_equal(c.conv_residual, 7);
    assert_int_equal(c.op[LS_OP_BATCHNORM] + c.op[LS_OP_RELU] + c.op[LS_OP_ADD], 0);
    assert_int_equal(c.op[LS_OP_RESHAPE], g->n_nodes - 13);
    ls_error err = {0};
    int in = ls_graph_find_input(g, LS_ROLE_MEL, NULL, &err);
    assert_int_equal(in, 0);
    assert_string_equal(g->values[g->inputs[0]].name, input_name);
    assert_int_equal(ls_graph_find_input(g, LS_ROLE_VISUAL, NULL, &err), LS_ERR_NOT_FOUND);
    const ls_value *out = &g->values[g->outputs[0]];
    assert_int_equal(out->ndim, 2);
    assert_true(out->dims[0] == batch && out->dims[1] == 512);
    if (!evaluate) {
        ls_graph_destroy(g);
        ls_onnx_destroy(m);
        return;
    }

    char name[64];
    ls_npy x, want;
    snprintf(name, sizeof name, "encoder_in_b%d.npy", batch);
    assert_int_equal(ls_npy_read(model_path(name), &x, &err), LS_OK);
    snprintf(name, sizeof name, "encoder_out_b%d.npy", batch);
    assert_int_equal(ls_npy_read(model_path(name), &want, &err), LS_OK);
    assert_int_equal((int64_t)x.count, ls_value_count(&g->values[g->inputs[0]]));
    assert_int_equal((int64_t)want.count, ls_value_count(out));

    float **vals = calloc((size_t)g->n_values, sizeof *vals);
    assert_non_null(vals);
    for (int v = 0; v < g->n_values; v++)
        vals[v] = g->values[v].data ? g->values[v].data
                                    : calloc((size_t)ls_value_count(&g->values[v]), 4);
    memcpy(vals[g->inputs[0]], x.data, x.count * sizeof(float));
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        if (n->op == LS_OP_CONV) naive_conv(g, n, vals);
        else if (n->op == LS_OP_RESHAPE)
            memcpy(vals[n->out], vals[n->in[0]], (size_t)ls_value_count(&g->values[n->out]) * 4);
        else fail_msg("unexpected op %d in the encoder", n->op);
    }
    float maxref = 0, maxerr = 0;
    for (size_t k = 0; k < want.count; k++) {
        maxref = fmaxf(maxref, fabsf(want.data[k]));
        maxerr = fmaxf(maxerr, fabsf(want.data[k] - vals[g->outputs[0]][k]));
    }
    assert_true(maxref > 1.0f); /* the reference is not degenerate */
    if (maxerr > 1e-4f * maxref)
        fail_msg("%s batch %d: max error %g for max |y| %g", file, batch, maxerr, maxref);
    for (int v = 0; v < g->n_values; v++)
        if (!g->values[v].data) free(vals[v]);
    free(vals);
    ls_npy_free(&x);
    ls_npy_free(&want);
    ls_graph_destroy(g);
    ls_onnx_destroy(m);
}

static void test_encoder_op11(void **state)
{
    (void)state;
    check_encoder("encoder_op11.onnx", 3, "mel_spectrogram", 0);
    check_encoder("encoder_op11.onnx", 1, "mel_spectrogram", 1);
}

static void test_encoder_op17(void **state)
{
    (void)state;
    check_encoder("encoder_op17.onnx", 1, "mel", 1);
}

/* One loaded model, lowered by two threads at once (checked by TSan). */
typedef struct build_job {
    const ls_onnx_model *m;
    int batch, rc;
    int64_t macs;
} build_job;

static void *build_thread(void *arg)
{
    build_job *job = arg;
    ls_graph *g = NULL;
    job->rc = ls_graph_build(job->m, job->batch, &g, NULL);
    job->macs = g ? ls_graph_conv_macs(g) : -1;
    ls_graph_destroy(g);
    return NULL;
}

static void test_concurrent_builds(void **state)
{
    (void)state;
    ls_onnx_model *m = load("encoder_op11.onnx");
    build_job jobs[2] = {{m, 1, -1, 0}, {m, 2, -1, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, build_thread, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(jobs[0].rc, LS_OK);
    assert_int_equal(jobs[1].rc, LS_OK);
    assert_true(jobs[0].macs > 0);
    assert_int_equal(jobs[1].macs, 2 * jobs[0].macs);
    ls_onnx_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unet_op11_batch1),
        cmocka_unit_test(test_unet_op11_batch3),
        cmocka_unit_test(test_unet_op17_fixed_batch),
        cmocka_unit_test(test_unet_unoptimized),
        cmocka_unit_test(test_encoder_op11),
        cmocka_unit_test(test_encoder_op17),
        cmocka_unit_test(test_concurrent_builds),
    };
    return cmocka_run_group_tests(tests, load_models, free_models);
}
