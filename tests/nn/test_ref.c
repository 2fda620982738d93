/* The reference executor against values worked out by hand. */
#include "support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ref.h"
#include "nn/test_engine_graphs.h"

static void run1(tg *t, const float *in, float *out)
{
    ls_error err = {0};
    const float *ins[1] = {in};
    float *outs[1] = {out};
    if (ls_ref_run(&t->g, ins, outs, &err)) fail_msg("%s", err.msg);
}

static void set_const(tg *t, int v, const float *vals)
{
    memcpy(t->g.values[v].data, vals, (size_t)tg_count(&t->g.values[v]) * sizeof(float));
}

/* 3x3 all-ones kernel over ones with pad 1 counts the taps inside: 4 at
 * corners, 6 on edges, 9 inside; plus bias 0.5, residual and ReLU. */
static void test_conv_counts(void **state)
{
    (void)state;
    tg *t = tg_new(1, 1);
    int x = tg_input4(t, 1, 1, 4, 4);
    int r = tg_input4(t, 1, 1, 4, 4);
    tg_conv_spec s = {1, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1, 1, r};
    tg_output(t, tg_conv(t, x, &s));
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, half = 0.5f;
    set_const(t, t->g.nodes[0].in[1], ones);
    set_const(t, t->g.nodes[0].in[2], &half);
    float in[16], res[16], out[16];
    for (int i = 0; i < 16; i++) {
        in[i] = 1;
        res[i] = i == 5 ? -20.0f : 0.0f;
    }
    ls_error err;
    const float *ins[2] = {in, res};
    float *outs[1] = {out};
    assert_int_equal(ls_ref_run(&t->g, ins, outs, &err), LS_OK);
    const float want[16] = {4.5f, 6.5f, 6.5f, 4.5f, 6.5f, 0,    9.5f, 6.5f,
                            6.5f, 9.5f, 9.5f, 6.5f, 4.5f, 6.5f, 6.5f, 4.5f};
    for (int i = 0; i < 16; i++) assert_float_equal(out[i], want[i], 1e-6);
    tg_free(t);
}

/* Stride 2, pad 3, 3x3 on 16x16 gives 10x10 (the UNet audio branch);
 * depthwise keeps channels apart. */
static void test_conv_stride_groups(void **state)
{
    (void)state;
    tg *t = tg_new(1, 1);
    int x = tg_input4(t, 1, 2, 16, 16);
    tg_conv_spec s = {2, 3, 3, 2, 2, {3, 3, 3, 3}, 2, 1, 0, 0, -1};
    int y = tg_conv(t, x, &s);
    tg_output(t, y);
    assert_int_equal(t->g.values[y].dims[2], 10);
    assert_int_equal(t->g.values[y].dims[3], 10);
    float w[18] = {0};
    w[4] = 1;     /* channel 0: centre tap */
    w[9 + 0] = 2; /* channel 1: top-left tap */
    set_const(t, t->g.nodes[0].in[1], w);
    float in[512], out[200];
    for (int i = 0; i < 512; i++) in[i] = (float)i;
    run1(t, in, out);
    /* out(0, oh, ow) = in(0, 2oh-3+1, 2ow-3+1) when inside, else 0 */
    for (int oh = 0; oh < 10; oh++)
        for (int ow = 0; ow < 10; ow++) {
            int ih = 2 * oh - 2, iw = 2 * ow - 2;
            float want = ih >= 0 && ih < 16 && iw >= 0 && iw < 16 ? in[ih * 16 + iw] : 0;
            assert_float_equal(out[oh * 10 + ow], want, 0);
            ih = 2 * oh - 3, iw = 2 * ow - 3;
            want = ih >= 0 && ih < 16 && iw >= 0 && iw < 16 ? 2 * in[256 + ih * 16 + iw] : 0;
            assert_float_equal(out[100 + oh * 10 + ow], want, 0);
        }
    tg_free(t);
}

static void resize_1d(ls_resize_mode mode, ls_resize_coord coord, ls_nearest_mode nm, int in_w,
                      int out_w, const float *in, float *out)
{
    tg *t = tg_new(1, 1);
    int x = tg_input4(t, 1, 1, 1, in_w);
    tg_output(t, tg_resize(t, x, 1, out_w, mode, coord, nm, 1, (float)out_w / (float)in_w));
    run1(t, in, out);
    tg_free(t);
}

static void test_resize_linear(void **state)
{
    (void)state;
    const float in[2] = {0, 1};
    float out[4];
    resize_1d(LS_RESIZE_LINEAR, LS_COORD_ALIGN_CORNERS, 0, 2, 3, in, out);
    assert_float_equal(out[1], 0.5, 1e-7);
    assert_float_equal(out[2], 1, 1e-7);
    resize_1d(LS_RESIZE_LINEAR, LS_COORD_HALF_PIXEL, 0, 2, 4, in, out);
    const float hp[4] = {0, 0.25f, 0.75f, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(out[i], hp[i], 1e-7);
    resize_1d(LS_RESIZE_LINEAR, LS_COORD_ASYMMETRIC, 0, 2, 4, in, out);
    const float as[4] = {0, 0.5f, 1, 1};
    for (int i = 0; i < 4; i++) assert_float_equal(out[i], as[i], 1e-7);
    /* pytorch_half_pixel differs from half_pixel only for a 1-pixel output */
    resize_1d(LS_RESIZE_LINEAR, LS_COORD_PYTORCH_HALF_PIXEL, 0, 2, 1, in, out);
    assert_float_equal(out[0], 0, 1e-7);
    resize_1d(LS_RESIZE_LINEAR, LS_COORD_HALF_PIXEL, 0, 2, 1, in, out);
    assert_float_equal(out[0], 0.5, 1e-7);
}

/* Half-pixel 6 -> 4 samples x = 0.25, 1.75, 3.25, 4.75: the four nearest
 * rounding modes pick different pixels. */
static void test_resize_nearest(void **state)
{
    (void)state;
    const float in[6] = {0, 1, 2, 3, 4, 5};
    static const float want[4][4] = {
        {0, 2, 3, 5}, /* round_prefer_floor */
        {0, 2, 3, 5}, /* round_prefer_ceil */
        {0, 1, 3, 4}, /* floor */
        {1, 2, 4, 5}, /* ceil */
    };
    float out[4];
    for (int m = 0; m < 4; m++) {
        resize_1d(LS_RESIZE_NEAREST, LS_COORD_HALF_PIXEL, (ls_nearest_mode)m, 6, 4, in, out);
        for (int i = 0; i < 4; i++) assert_float_equal(out[i], want[m][i], 0);
    }
    /* ties: asymmetric 2 -> 4 samples x = 0, .5, 1, 1.5 */
    const float in2[2] = {10, 20};
    resize_1d(LS_RESIZE_NEAREST, LS_COORD_ASYMMETRIC, LS_NEAREST_ROUND_PREFER_FLOOR, 2, 4, in2,
              out);
    assert_float_equal(out[1], 10, 0);
    resize_1d(LS_RESIZE_NEAREST, LS_COORD_ASYMMETRIC, LS_NEAREST_ROUND_PREFER_CEIL, 2, 4, in2, out);
    assert_float_equal(out[1], 20, 0);
}

static void test_pad_concat_add_bn(void **state)
{
    (void)state;
    tg *t = tg_new(1, 1);
    int x = tg_input4(t, 1, 1, 1, 2);
    int p = tg_pad4(t, x, 1, 0, 0, 1, 7); /* [1,1,2,3] */
    int cat_in[2] = {p, p};
    int cat = tg_concat(t, cat_in, 2, 1); /* [1,2,2,3] */
    int64_t bd[1] = {3};
    int add_in[2] = {cat, tg_const(t, 1, bd, 0, 1)};
    int64_t d[4] = {1, 2, 2, 3};
    int sum = tg_node(t, LS_OP_ADD, add_in, 2, 4, d); /* broadcast over W */
    float bvals[3] = {100, 200, 100};
    set_const(t, add_in[1], bvals);
    int64_t cd[1] = {2};
    int bn_in[5] = {sum, tg_const(t, 1, cd, 0, 1), tg_const(t, 1, cd, 0, 1),
                    tg_const(t, 1, cd, 0, 1), tg_const(t, 1, cd, 0, 1)};
    float gam[2] = {2, 1}, bet[2] = {1, 0}, mean[2] = {0, 100}, var[2] = {4, 1};
    set_const(t, bn_in[1], gam);
    set_const(t, bn_in[2], bet);
    set_const(t, bn_in[3], mean);
    set_const(t, bn_in[4], var);
    tg_output(t, tg_node(t, LS_OP_BATCHNORM, bn_in, 5, 4, d));
    t->g.nodes[t->g.n_nodes - 1].attr.bn_eps = 0;
    float in[2] = {1, 2}, out[12];
    run1(t, in, out);
    /* pad: [[7,7,7],[1,2,7]]; + [100,200,100] along W; bn ch0: (v)*2/2+1, ch1: v-100 */
    const float want[12] = {108, 208, 108, 102, 203, 108, 7, 107, 7, 1, 102, 7};
    for (int i = 0; i < 12; i++) assert_float_equal(out[i], want[i], 1e-4);
    tg_free(t);
}

static void test_sigmoid_relu_reshape(void **state)
{
    (void)state;
    tg *t = tg_new(1, 1);
    int x = tg_input4(t, 1, 3, 1, 1);
    int64_t d[2] = {1, 3};
    int r = tg_node(t, LS_OP_RESHAPE, &x, 1, 2, d);
    tg_output(t, tg_unary(t, LS_OP_SIGMOID, tg_unary(t, LS_OP_RELU, r)));
    float in[3] = {-5, 0, 2}, out[3];
    run1(t, in, out);
    assert_float_equal(out[0], 0.5, 1e-7);
    assert_float_equal(out[1], 0.5, 1e-7);
    assert_float_equal(out[2], 1 / (1 + exp(-2.0)), 1e-6);
    tg_free(t);
}

static void test_rejects_bad_nodes(void **state)
{
    (void)state;
    ls_error err = {0};
    tg *t = tg_new(1, 1);
    int x = tg_input4(t, 1, 4, 3, 3);
    int y = tg_unary(t, LS_OP_RELU, x);
    tg_output(t, y);
    float in[36] = {0}, out[36];
    const float *ins[1] = {in};
    float *outs[1] = {out};
    t->g.nodes[0].op = (ls_op)99;
    assert_int_equal(ls_ref_run(&t->g, ins, outs, &err), LS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "n0"));
    t->g.nodes[0].op = LS_OP_RELU;
    t->g.values[y].dims[1] = 5; /* output shape that does not follow */
    assert_int_equal(ls_ref_run(&t->g, ins, outs, &err), LS_ERR_FORMAT);
    t->g.values[y].dims[1] = 4;
    t->g.nodes[0].in[0] = 1000; /* a value that does not exist */
    assert_int_equal(ls_ref_run(&t->g, ins, outs, &err), LS_ERR_FORMAT);
    t->g.nodes[0].in[0] = y; /* reads its own output: never produced before */
    assert_int_equal(ls_ref_run(&t->g, ins, outs, &err), LS_ERR_FORMAT);
    assert_int_equal(ls_ref_run(NULL, ins, outs, &err), LS_ERR_INVALID_ARG);
    tg_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_counts),       cmocka_unit_test(test_conv_stride_groups),
        cmocka_unit_test(test_resize_linear),     cmocka_unit_test(test_resize_nearest),
        cmocka_unit_test(test_pad_concat_add_bn), cmocka_unit_test(test_sigmoid_relu_reshape),
        cmocka_unit_test(test_rejects_bad_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
