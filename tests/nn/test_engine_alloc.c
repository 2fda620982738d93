/* No heap allocation per run after warm-up: our steps allocate nothing, and
 * oneDNN's primitive calls allocate a fixed number of blocks each (its C
 * API builds a std::unordered_map of the call's arguments per execute; that
 * is inside libdnnl and cannot be avoided through its API). */
#include "support/test_util.h"

#include <stdlib.h>

#include "nn/engine.h"
#include "nn/test_engine_graphs.h"
#include "support/alloc_count.h"

static long allocs_per_run_in(tg *t, int threads, ls_precision prec, ls_layout_policy layout,
                              int *dnnl_calls)
{
    ls_error err;
    ls_engine *e;
    ls_engine_ctx *c;
    assert_int_equal(ls_engine_create_ex(&t->g, prec, threads, layout, &e, &err), LS_OK);
    assert_int_equal(ls_engine_ctx_create(e, &c, &err), LS_OK);
    float **in = tg_random_inputs(t, 1), **out = tg_alloc_outputs(t);
    for (int r = 0; r < 3; r++)
        assert_int_equal(ls_engine_run(c, (const float *const *)in, out, &err), LS_OK);
    long before = alloc_count();
    for (int r = 0; r < 5; r++)
        assert_int_equal(ls_engine_run(c, (const float *const *)in, out, &err), LS_OK);
    long per_run = (alloc_count() - before) / 5;
    assert_int_equal((alloc_count() - before) % 5, 0);
    *dnnl_calls = ls_engine_dnnl_calls(e);
    tg_free_arrays(in, t->g.n_inputs);
    tg_free_arrays(out, t->g.n_outputs);
    ls_engine_ctx_destroy(c);
    ls_engine_destroy(e);
    return per_run;
}

static long allocs_per_run(tg *t, int threads, ls_precision prec, int *dnnl_calls)
{
    return allocs_per_run_in(t, threads, prec, LS_LAYOUT_AUTO, dnnl_calls);
}

/* Resize, pad, concat, sigmoid, relu, add, batchnorm: all our kernels, in
 * float and in bf16 (native or emulated, whichever this CPU runs), in the
 * blocked and nhwc layouts and with reorders between them. */
static void test_own_kernels_allocate_nothing(void **state)
{
    (void)state;
    tg *t = tg_new(2, 1);
    int x = tg_input4(t, 2, 8, 6, 6), y = tg_input4(t, 2, 8, 12, 12);
    int up = tg_resize(t, x, 11, 11, LS_RESIZE_LINEAR, LS_COORD_ALIGN_CORNERS, 0, 2, 2);
    up = tg_pad4(t, up, 0, 0, 1, 1, 0);
    int in[2] = {up, tg_unary(t, LS_OP_RELU, y)};
    int cat = tg_concat(t, in, 2, 1);
    int64_t d[4] = {2, 16, 12, 12};
    int add_in[2] = {cat, tg_unary(t, LS_OP_SIGMOID, cat)};
    tg_output(t, tg_node(t, LS_OP_ADD, add_in, 2, 4, d));
    int calls;
    static const ls_layout_policy layouts[] = {LS_LAYOUT_AUTO, LS_LAYOUT_BLOCKED, LS_LAYOUT_NHWC,
                                               LS_LAYOUT_MIXED};
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++)
        for (int prec = LS_PREC_FP32; prec <= LS_PREC_BF16; prec++)
            for (int threads = 2; threads >= 1; threads--) {
                assert_int_equal(
                    allocs_per_run_in(t, threads, (ls_precision)prec, layouts[l], &calls), 0);
                assert_int_equal(calls, 0);
            }
    tg_free(t);
}

/* With convolutions the count per run is the same every run and exactly a
 * fixed number per oneDNN primitive call. */
static void test_conv_allocations_are_fixed(void **state)
{
    (void)state;
    tg *t1 = tg_new(1, 1), *t3 = tg_new(1, 1);
    int x = tg_input4(t1, 1, 8, 10, 10);
    tg_conv_spec c = {16, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1, 1, -1};
    tg_output(t1, tg_conv(t1, x, &c));
    x = tg_input4(t3, 1, 8, 10, 10);
    int y = tg_conv(t3, tg_conv(t3, x, &c), &c);
    tg_output(t3, tg_conv(t3, y, &c));
    int calls1, calls3;
    long a1 = allocs_per_run(t1, 2, LS_PREC_FP32, &calls1),
         a3 = allocs_per_run(t3, 2, LS_PREC_FP32, &calls3);
    assert_int_equal(calls1, 1);
    assert_int_equal(calls3, 3);
    print_message("oneDNN allocates %ld blocks per primitive call\n", a1);
    assert_int_equal(a3, 3 * a1);
    assert_true(a1 <= 8);
    long b3 = allocs_per_run(t3, 2, LS_PREC_BF16, &calls3);
    assert_int_equal(calls3, 3);
    assert_int_equal(b3, a3);
    tg_free(t1);
    tg_free(t3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_kernels_allocate_nothing),
        cmocka_unit_test(test_conv_allocations_are_fixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
