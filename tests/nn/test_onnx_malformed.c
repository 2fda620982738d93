/* test_onnx_malformed.c - hand-made ONNX models (built with the generated
 * protobuf-c structs) and damaged real files: typed-field initializers,
 * shape plumbing written by hand, BN folding values, and clear errors for
 * unsupported ops, external data, bad opsets, truncated and corrupted bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "nn/lower.h"
#include "nn/onnx.h"
#include "nn/onnx_internal.h"
#include "onnx/onnx.pb-c.h"
#include "support/test_util.h"

/* ---- a tiny model builder; everything lives in one arena per test ---- */

#define ARENA_MAX 4096
static void *arena[ARENA_MAX];
static int n_arena;

static void *alloc(size_t n)
{
    assert_true(n_arena < ARENA_MAX);
    void *p = calloc(1, n);
    assert_non_null(p);
    arena[n_arena++] = p;
    return p;
}

static void arena_free(void)
{
    while (n_arena) free(arena[--n_arena]);
}

static char *str(const char *s)
{
    char *p = alloc(strlen(s) + 1);
    strcpy(p, s);
    return p;
}

typedef struct model_spec {
    int opset;
    Onnx__NodeProto *nodes[64];
    int n_nodes;
    Onnx__TensorProto *inits[64];
    int n_inits;
    Onnx__ValueInfoProto *ins[4], *outs[4];
    int n_ins, n_outs;
} model_spec;

/* dims < 0 are written as the symbolic dimension "batch". */
static Onnx__ValueInfoProto *value_info(const char *name, int ndim, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = alloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = str(name);
    Onnx__TypeProto *ty = alloc(sizeof *ty);
    onnx__type_proto__init(ty);
    Onnx__TypeProto__Tensor *tt = alloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__TensorShapeProto *sh = alloc(sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)ndim;
    sh->dim = alloc(sizeof *sh->dim * (size_t)(ndim + 1));
    for (int d = 0; d < ndim; d++) {
        Onnx__TensorShapeProto__Dimension *dim = alloc(sizeof *dim);
        onnx__tensor_shape_proto__dimension__init(dim);
        if (dims[d] < 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = str("batch");
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
        }
        sh->dim[d] = dim;
    }
    tt->shape = sh;
    ty->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    ty->tensor_type = tt;
    vi->type = ty;
    return vi;
}

static Onnx__TensorProto *tensor(const char *name, int dtype, int ndim, const int64_t *dims)
{
    Onnx__TensorProto *t = alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = alloc(sizeof(int64_t) * (size_t)(ndim + 1));
    if (ndim) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
    return t;
}

static int64_t count_of(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= dims[d];
    return n;
}

static Onnx__TensorProto *f32_raw(const char *name, int ndim, const int64_t *dims, const float *v)
{
    Onnx__TensorProto *t = tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims);
    size_t n = (size_t)count_of(ndim, dims) * 4;
    t->has_raw_data = 1;
    t->raw_data.len = n;
    t->raw_data.data = alloc(n + 1);
    memcpy(t->raw_data.data, v, n);
    return t;
}

static Onnx__TensorProto *f32_typed(const char *name, int ndim, const int64_t *dims, const float *v)
{
    Onnx__TensorProto *t = tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims);
    t->n_float_data = (size_t)count_of(ndim, dims);
    t->float_data = alloc(sizeof(float) * (t->n_float_data + 1));
    memcpy(t->float_data, v, sizeof(float) * t->n_float_data);
    return t;
}

static Onnx__TensorProto *f64_typed(const char *name, int ndim, const int64_t *dims,
                                    const double *v)
{
    Onnx__TensorProto *t = tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, ndim, dims);
    t->n_double_data = (size_t)count_of(ndim, dims);
    t->double_data = alloc(sizeof(double) * (t->n_double_data + 1));
    memcpy(t->double_data, v, sizeof(double) * t->n_double_data);
    return t;
}

static Onnx__TensorProto *i64_typed(const char *name, int ndim, const int64_t *dims,
                                    const int64_t *v)
{
    Onnx__TensorProto *t = tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, ndim, dims);
    t->n_int64_data = (size_t)count_of(ndim, dims);
    t->int64_data = alloc(sizeof(int64_t) * (t->n_int64_data + 1));
    memcpy(t->int64_data, v, sizeof(int64_t) * t->n_int64_data);
    return t;
}

static Onnx__TensorProto *i32_typed(const char *name, int ndim, const int64_t *dims,
                                    const int32_t *v)
{
    Onnx__TensorProto *t = tensor(name, ONNX__TENSOR_PROTO__DATA_TYPE__INT32, ndim, dims);
    t->n_int32_data = (size_t)count_of(ndim, dims);
    t->int32_data = alloc(sizeof(int32_t) * (t->n_int32_data + 1));
    memcpy(t->int32_data, v, sizeof(int32_t) * t->n_int32_data);
    return t;
}

/* Inputs and outputs as one comma-separated list each ("" for none;
 * a "-" entry is an omitted optional input). */
static char **split(const char *list, size_t *n)
{
    char **out = alloc(sizeof(char *) * 16);
    *n = 0;
    if (!list[0]) return out;
    char *copy = str(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        out[(*n)++] = strcmp(tok, "-") ? tok : str("");
    return out;
}

static Onnx__NodeProto *add_node(model_spec *s, const char *op, const char *name, const char *ins,
                                 const char *outs)
{
    Onnx__NodeProto *n = alloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = str(op);
    n->name = name ? str(name) : NULL;
    n->input = split(ins, &n->n_input);
    n->output = split(outs, &n->n_output);
    n->attribute = alloc(sizeof *n->attribute * 16);
    s->nodes[s->n_nodes++] = n;
    return n;
}

static Onnx__AttributeProto *new_attr(Onnx__NodeProto *n, const char *name, int type)
{
    Onnx__AttributeProto *a = alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = str(name);
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v)
{
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = alloc(sizeof(int64_t) * (size_t)(count + 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_string(Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)str(v);
}

static void attr_tensor(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
    Onnx__AttributeProto *a = new_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

static uint8_t *pack(const model_spec *s, size_t *len)
{
    Onnx__GraphProto *g = alloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = str("handmade");
    g->n_node = (size_t)s->n_nodes;
    g->node = (Onnx__NodeProto **)s->nodes;
    g->n_initializer = (size_t)s->n_inits;
    g->initializer = (Onnx__TensorProto **)s->inits;
    g->n_input = (size_t)s->n_ins;
    g->input = (Onnx__ValueInfoProto **)s->ins;
    g->n_output = (size_t)s->n_outs;
    g->output = (Onnx__ValueInfoProto **)s->outs;
    Onnx__OperatorSetIdProto *op = alloc(sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = str("");
    op->has_version = 1;
    op->version = s->opset;
    Onnx__OperatorSetIdProto **ops = alloc(sizeof *ops);
    ops[0] = op;
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.producer_name = str("test");
    m.graph = g;
    m.n_opset_import = 1;
    m.opset_import = ops;
    *len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = alloc(*len + 1);
    assert_int_equal(onnx__model_proto__pack(&m, buf), *len);
    return buf;
}

/* Loads and lowers the spec; returns the status (graph in *g when OK). */
static int load_spec(const model_spec *s, int batch, ls_graph **g, ls_error *err)
{
    size_t len;
    uint8_t *bytes = pack(s, &len);
    ls_onnx_model *m = NULL;
    *g = NULL;
    int rc = ls_onnx_load_bytes(bytes, len, &m, err);
    if (rc) return rc;
    rc = ls_graph_build(m, batch, g, err);
    ls_onnx_destroy(m);
    return rc;
}

/* ---- a small conv net written out by hand ----
 * x [B,2,4,4] -> Conv(3x3, pad 1, W float_data, bias double_data) -> BN (raw)
 * -> Relu -> Reshape to [B,48] with the shape computed by
 * Concat(Unsqueeze(Gather(Shape(x), 0)), Cast(Constant int32 [-1])). */

static const int64_t x_dims[4] = {-1, 2, 4, 4};
static float conv_w[3 * 2 * 3 * 3];
static double conv_b[3] = {0.5, -0.25, 1.0};
static float bn_scale[3] = {1.5f, 0.5f, 2.0f}, bn_bias[3] = {0.1f, -0.2f, 0.3f};
static float bn_mean[3] = {0.2f, -0.1f, 0.4f}, bn_var[3] = {0.25f, 4.0f, 1.0f};

static void small_net(model_spec *s, int opset)
{
    memset(s, 0, sizeof *s);
    s->opset = opset;
    for (int i = 0; i < 54; i++) conv_w[i] = (float)((i * 7) % 11 - 5) * 0.1f;
    int64_t wd[4] = {3, 2, 3, 3}, c3 = 3, one = 1;
    s->inits[s->n_inits++] = f32_typed("W", 4, wd, conv_w);
    s->inits[s->n_inits++] = f64_typed("B", 1, &c3, conv_b);
    s->inits[s->n_inits++] = f32_raw("scale", 1, &c3, bn_scale);
    s->inits[s->n_inits++] = f32_raw("beta", 1, &c3, bn_bias);
    s->inits[s->n_inits++] = f32_raw("mean", 1, &c3, bn_mean);
    s->inits[s->n_inits++] = f32_raw("var", 1, &c3, bn_var);
    int64_t zero = 0;
    s->inits[s->n_inits++] = i64_typed("zero", 0, NULL, &zero);
    s->ins[s->n_ins++] = value_info("x", 4, x_dims);
    int64_t od[2] = {-1, 48};
    s->outs[s->n_outs++] = value_info("y", 2, od);

    Onnx__NodeProto *n = add_node(s, "Conv", "conv", "x,W,B", "c");
    int64_t k[2] = {3, 3}, p[4] = {1, 1, 1, 1};
    attr_ints(n, "kernel_shape", 2, k);
    attr_ints(n, "pads", 4, p);
    n = add_node(s, "BatchNormalization", "bn", "c,scale,beta,mean,var", "b");
    add_node(s, "Relu", "relu", "b", "r");
    add_node(s, "Shape", "shape", "x", "sh");
    add_node(s, "Gather", "gather", "sh,zero", "n");
    int64_t ax0 = 0;
    if (opset >= 13) {
        s->inits[s->n_inits++] = i64_typed("axes0", 1, &one, &ax0);
        add_node(s, "Unsqueeze", "unsq", "n,axes0", "n1");
    } else {
        n = add_node(s, "Unsqueeze", "unsq", "n", "n1");
        attr_ints(n, "axes", 1, &ax0);
    }
    n = add_node(s, "Constant", "minus_one", "", "m1_i32");
    int32_t m1 = -1;
    attr_tensor(n, "value", i32_typed("m1", 1, &one, &m1));
    n = add_node(s, "Cast", "cast", "m1_i32", "m1");
    attr_int(n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    n = add_node(s, "Concat", "concat", "n1,m1", "shape");
    attr_int(n, "axis", 0);
    add_node(s, "Reshape", "reshape", "r,shape", "y");
}

static void test_typed_fields_and_folding(void **state)
{
    (void)state;
    for (int opset = 11; opset <= 17; opset += 6) {
        model_spec s;
        small_net(&s, opset);
        ls_graph *g;
        ls_error err = {0};
        int rc = load_spec(&s, 2, &g, &err);
        if (rc) fail_msg("opset %d: %s", opset, err.msg);
        /* Conv (BN folded, ReLU fused) then the reshape view. */
        assert_int_equal(g->n_nodes, 2);
        const ls_node *conv = &g->nodes[0];
        assert_int_equal(conv->op, LS_OP_CONV);
        assert_int_equal(conv->attr.conv.fuse_relu, 1);
        assert_int_equal(conv->attr.conv.residual, -1);
        assert_int_equal(g->nodes[1].op, LS_OP_RESHAPE);
        const ls_value *y = &g->values[g->outputs[0]];
        assert_true(y->ndim == 2 && y->dims[0] == 2 && y->dims[1] == 48);
        const float *w = g->values[conv->in[1]].data, *b = g->values[conv->in[2]].data;
        for (int o = 0; o < 3; o++) {
            double sc = bn_scale[o] / sqrt((double)bn_var[o] + 1e-5);
            for (int k = 0; k < 18; k++)
                assert_float_equal(w[o * 18 + k], conv_w[o * 18 + k] * sc, 1e-6);
            assert_float_equal(b[o], (conv_b[o] - bn_mean[o]) * sc + bn_bias[o], 1e-6);
        }
        ls_graph_destroy(g);
        arena_free();
    }
}

/* A fusion needs the conv's output to be private to the fused node: when
 * something else reads it, BatchNormalization and Relu stay separate. */
static void test_no_fusion_across_shared_outputs(void **state)
{
    (void)state;
    model_spec s;
    small_net(&s, 13);
    int64_t cd[4] = {-1, 3, 4, 4};
    s.outs[s.n_outs++] = value_info("c", 4, cd); /* the conv output is a graph output too */
    ls_graph *g;
    ls_error err = {0};
    if (load_spec(&s, 1, &g, &err)) fail_msg("%s", err.msg);
    int ops[LS_OP_RESHAPE + 1] = {0};
    for (int i = 0; i < g->n_nodes; i++) ops[g->nodes[i].op]++;
    assert_int_equal(ops[LS_OP_BATCHNORM], 1);
    assert_int_equal(ops[LS_OP_RELU], 1);
    assert_int_equal(g->nodes[0].op, LS_OP_CONV);
    assert_int_equal(g->nodes[0].attr.conv.fuse_relu, 0);
    assert_int_equal(g->n_outputs, 2);
    assert_string_equal(g->values[g->outputs[1]].name, "c");
    ls_graph_destroy(g);
    arena_free();
}

/* Resize by sizes computed from Shape+Slice, non-zero Pads kept, Concat,
 * Sigmoid and Flatten, at opset 13 (Slice and Resize with inputs). */
static void test_resize_pad_flatten(void **state)
{
    (void)state;
    model_spec s;
    memset(&s, 0, sizeof s);
    s.opset = 13;
    int64_t one = 1, two = 2, xd[4] = {-1, 2, 4, 4}, od[2] = {-1, 324};
    int64_t v0 = 0, v2 = 2, hw[2] = {8, 8};
    s.ins[s.n_ins++] = value_info("x", 4, xd);
    s.outs[s.n_outs++] = value_info("y", 2, od);
    s.inits[s.n_inits++] = i64_typed("s0", 1, &one, &v0);
    s.inits[s.n_inits++] = i64_typed("e2", 1, &one, &v2);
    s.inits[s.n_inits++] = i64_typed("hw", 1, &two, hw);
    int64_t pads_a[8] = {0, 0, 1, 0, 0, 0, 0, 1}, pads_b[8] = {0, 0, 0, 1, 0, 0, 1, 0}, eight = 8;
    s.inits[s.n_inits++] = i64_typed("pads_a", 1, &eight, pads_a);
    s.inits[s.n_inits++] = i64_typed("pads_b", 1, &eight, pads_b);
    float half = 0.5f;
    s.inits[s.n_inits++] = f32_raw("half", 0, NULL, &half);
    add_node(&s, "Shape", NULL, "x", "shape");
    add_node(&s, "Slice", NULL, "shape,s0,e2", "nc");
    Onnx__NodeProto *n = add_node(&s, "Concat", NULL, "nc,hw", "sizes");
    attr_int(n, "axis", 0);
    n = add_node(&s, "Resize", "up", "x,-,-,sizes", "r");
    attr_string(n, "mode", "nearest");
    attr_string(n, "coordinate_transformation_mode", "asymmetric");
    attr_string(n, "nearest_mode", "floor");
    add_node(&s, "Pad", "pad_a", "r,pads_a,half", "pa");
    add_node(&s, "Pad", "pad_b", "r,pads_b", "pb");
    n = add_node(&s, "Concat", "cat", "pa,pb", "cat");
    attr_int(n, "axis", -3);
    add_node(&s, "Sigmoid", "sig", "cat", "sg");
    add_node(&s, "Flatten", "flat", "sg", "y");
    ls_graph *g;
    ls_error err = {0};
    if (load_spec(&s, 2, &g, &err)) fail_msg("%s", err.msg);
    static const ls_op want[] = {LS_OP_RESIZE, LS_OP_PAD, LS_OP_PAD, LS_OP_CONCAT, LS_OP_SIGMOID,
                                 LS_OP_RESHAPE};
    assert_int_equal(g->n_nodes, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(g->nodes[i].op, want[i]);
    const ls_resize_attr *ra = &g->nodes[0].attr.resize;
    assert_true(ra->mode == LS_RESIZE_NEAREST && ra->coord == LS_COORD_ASYMMETRIC &&
                ra->nearest == LS_NEAREST_FLOOR);
    assert_true(ra->scale[0] == 2.0f && ra->scale[1] == 2.0f);
    assert_memory_equal(g->nodes[1].attr.pad.pads, pads_a, sizeof pads_a);
    assert_true(g->nodes[1].attr.pad.value == 0.5f && g->nodes[2].attr.pad.value == 0.0f);
    assert_int_equal(g->nodes[3].attr.concat_axis, 1);
    const ls_value *cat = &g->values[g->nodes[3].out];
    assert_true(cat->dims[0] == 2 && cat->dims[1] == 4 && cat->dims[2] == 9 && cat->dims[3] == 9);
    const ls_value *y = &g->values[g->outputs[0]];
    assert_true(y->ndim == 2 && y->dims[0] == 2 && y->dims[1] == 324);
    ls_graph_destroy(g);
    arena_free();
}

static void expect_error(const model_spec *s, int batch, int code, const char *needle1,
                         const char *needle2)
{
    ls_graph *g = (ls_graph *)1;
    ls_error err = {0};
    int rc = load_spec(s, batch, &g, &err);
    if (rc != code) fail_msg("expected status %d, got %d (%s)", code, rc, err.msg);
    assert_true(g == NULL || g == (ls_graph *)1);
    if (needle1 && !strstr(err.msg, needle1)) fail_msg("'%s' not in: %s", needle1, err.msg);
    if (needle2 && !strstr(err.msg, needle2)) fail_msg("'%s' not in: %s", needle2, err.msg);
}

static void test_unsupported_op(void **state)
{
    (void)state;
    model_spec s;
    small_net(&s, 13);
    s.nodes[2]->op_type = str("HardSwish"); /* the Relu */
    s.nodes[2]->name = str("my_activation");
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "HardSwish", "my_activation");
    arena_free();

    small_net(&s, 13);
    s.nodes[2]->name = NULL; /* unnamed: identified by type and index */
    s.nodes[2]->op_type = str("Mul");
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "Mul_2", "run time");
    arena_free();

    small_net(&s, 13);
    s.nodes[0]->domain = str("com.microsoft");
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "com.microsoft", "'conv'");
    arena_free();

    small_net(&s, 13);
    Onnx__NodeProto *r = add_node(&s, "Resize", "up", "r,-,scales", "z");
    attr_string(r, "mode", "cubic");
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "cubic", "'up'");
    arena_free();
}

static void test_bad_models(void **state)
{
    (void)state;
    model_spec s;
    for (int opset = 10; opset <= 18; opset += 8) {
        small_net(&s, opset);
        expect_error(&s, 1, LS_ERR_UNSUPPORTED, "opset", NULL);
        arena_free();
    }

    small_net(&s, 13);
    Onnx__TensorProto *w = s.inits[0];
    w->n_float_data = 0;
    w->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    w->has_data_location = 1;
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "external", "'W'");
    arena_free();

    small_net(&s, 13);
    s.inits[2]->raw_data.len -= 4; /* scale: 2 floats for 3 elements */
    expect_error(&s, 1, LS_ERR_FORMAT, "'scale'", "raw_data");
    arena_free();

    small_net(&s, 13);
    s.inits[0]->dims[1] = 5; /* weights for 5 input channels, x has 2 */
    s.inits[0]->n_float_data = 5 * 3 * 3 * 3;
    s.inits[0]->float_data = alloc(sizeof(float) * 135);
    expect_error(&s, 1, LS_ERR_FORMAT, "'conv'", "input channels");
    arena_free();

    small_net(&s, 13);
    s.nodes[1]->input[0] = str("nowhere");
    expect_error(&s, 1, LS_ERR_FORMAT, "'nowhere'", "'bn'");
    arena_free();

    small_net(&s, 13);
    int64_t fixed[4] = {1, 2, 4, 4};
    s.ins[0] = value_info("x", 4, fixed);
    expect_error(&s, 3, LS_ERR_INVALID_ARG, "fixed batch of 1", "'x'");
    ls_graph *g;
    ls_error err;
    assert_int_equal(load_spec(&s, 1, &g, &err), LS_OK);
    ls_graph_destroy(g);
    arena_free();

    small_net(&s, 13);
    int64_t symbolic_h[4] = {-1, 2, -1, 4};
    s.ins[0] = value_info("x", 4, symbolic_h);
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "axis 2", "'x'");
    arena_free();

    small_net(&s, 13);
    int64_t wrong_out[2] = {-1, 47};
    s.outs[0] = value_info("y", 2, wrong_out);
    expect_error(&s, 1, LS_ERR_FORMAT, "'y'", "47");
    arena_free();

    small_net(&s, 13);
    Onnx__NodeProto *p = add_node(&s, "Pad", "pad", "y,pads", "z");
    attr_string(p, "mode", "reflect");
    s.outs[0] = value_info("z", 0, NULL);
    expect_error(&s, 1, LS_ERR_UNSUPPORTED, "reflect", "'pad'");
    arena_free();
}

/* Every element type a shape computation may use, from raw_data and from
 * the typed fields, decodes to the same values. */
static void test_tensor_decode_types(void **state)
{
    (void)state;
    int64_t dims[1] = {3};
    ls_tensor t;
    ls_error err = {0};
    struct {
        int dt;
        uint8_t raw[24];
        size_t raw_len;
        double want[3];
    } cases[] = {
        {ONNX__TENSOR_PROTO__DATA_TYPE__INT8, {0xff, 0x02, 0x80}, 3, {-1, 2, -128}},
        {ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, {0xff, 0x02, 0x80}, 3, {255, 2, 128}},
        {ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, {1, 0, 1}, 3, {1, 0, 1}},
        {ONNX__TENSOR_PROTO__DATA_TYPE__INT16, {0xfe, 0xff, 7, 0, 0, 0x80}, 6, {-2, 7, -32768}},
        {ONNX__TENSOR_PROTO__DATA_TYPE__UINT16, {0xfe, 0xff, 7, 0, 0, 0x80}, 6, {65534, 7, 32768}},
        {ONNX__TENSOR_PROTO__DATA_TYPE__INT32,
         {0xff, 0xff, 0xff, 0xff, 5, 0, 0, 0, 0, 0, 0, 0x80},
         12,
         {-1, 5, -2147483648.0}},
        {ONNX__TENSOR_PROTO__DATA_TYPE__UINT32,
         {0xff, 0xff, 0xff, 0xff, 5, 0, 0, 0, 0, 0, 0, 0x80},
         12,
         {4294967295.0, 5, 2147483648.0}},
        /* float16: 1.0, -2.0, 65504 (max) */
        {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16,
         {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b},
         6,
         {1, -2, 65504}},
        /* bfloat16: 1.0, -2.0, 0.5 */
        {ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16,
         {0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f},
         6,
         {1, -2, 0.5}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Onnx__TensorProto *tp = tensor("t", cases[i].dt, 1, dims);
        tp->has_raw_data = 1;
        tp->raw_data.len = cases[i].raw_len;
        tp->raw_data.data = cases[i].raw;
        if (ls_tensor_decode(tp, "t", &t, &err)) fail_msg("type %d: %s", cases[i].dt, err.msg);
        for (int k = 0; k < 3; k++) {
            double got = t.dtype == LS_DT_F32 ? t.f[k] : (double)t.i[k];
            if (got != cases[i].want[k])
                fail_msg("type %d element %d: %g, want %g", cases[i].dt, k, got, cases[i].want[k]);
        }
        ls_tensor_free(&t);
        /* The same values in int32_data (where ONNX keeps the small types). */
        if (cases[i].dt != ONNX__TENSOR_PROTO__DATA_TYPE__UINT32) {
            tp->has_raw_data = 0;
            tp->n_int32_data = 3;
            tp->int32_data = alloc(sizeof(int32_t) * 3);
            for (int k = 0; k < 3; k++) {
                uint64_t bits = 0;
                size_t es = cases[i].raw_len / 3;
                memcpy(&bits, cases[i].raw + es * (size_t)k, es);
                tp->int32_data[k] = cases[i].dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
                                            cases[i].dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ||
                                            cases[i].dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8
                                        ? (int32_t)cases[i].want[k]
                                        : (int32_t)bits;
            }
            assert_int_equal(ls_tensor_decode(tp, "t", &t, &err), LS_OK);
            for (int k = 0; k < 3; k++)
                assert_true((t.dtype == LS_DT_F32 ? t.f[k] : (double)t.i[k]) == cases[i].want[k]);
            ls_tensor_free(&t);
        }
    }
    /* double and int64 in raw_data too; uint64 beyond int64 is refused. */
    double d[3] = {0.25, -1e10, 3};
    Onnx__TensorProto *tp = tensor("d", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, dims);
    tp->has_raw_data = 1;
    tp->raw_data.len = sizeof d;
    tp->raw_data.data = (uint8_t *)d;
    assert_int_equal(ls_tensor_decode(tp, "d", &t, &err), LS_OK);
    assert_true(t.dtype == LS_DT_F32 && t.f[0] == 0.25f && t.f[1] == -1e10f && t.f[2] == 3.0f);
    ls_tensor_free(&t);
    uint64_t big[3] = {1, 2, (uint64_t)1 << 63};
    tp = tensor("u", ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, 1, dims);
    tp->has_raw_data = 1;
    tp->raw_data.len = sizeof big;
    tp->raw_data.data = (uint8_t *)big;
    assert_int_equal(ls_tensor_decode(tp, "u", &t, &err), LS_ERR_RANGE);
    tp->has_raw_data = 0; /* the same in uint64_data, then within range */
    tp->n_uint64_data = 3;
    tp->uint64_data = big;
    assert_int_equal(ls_tensor_decode(tp, "u", &t, &err), LS_ERR_RANGE);
    big[2] = 7;
    assert_int_equal(ls_tensor_decode(tp, "u", &t, &err), LS_OK);
    assert_true(t.dtype == LS_DT_I64 && t.i[0] == 1 && t.i[2] == 7);
    ls_tensor_free(&t);
    tp = tensor("s", ONNX__TENSOR_PROTO__DATA_TYPE__STRING, 1, dims);
    assert_int_equal(ls_tensor_decode(tp, "s", &t, &err), LS_ERR_UNSUPPORTED);
    tp = tensor("n", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, dims); /* no data at all */
    assert_int_equal(ls_tensor_decode(tp, "n", &t, &err), LS_ERR_FORMAT);
    arena_free();
}

/* ---- damaged real files ---- */

static uint8_t *read_model(const char *file, size_t *len)
{
    char path[1024];
    const char *dir = getenv("LS_MODELS_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "models", file);
    uint8_t *bytes;
    ls_error err = {0};
    if (ls_read_file(path, &bytes, len, &err)) fail_msg("%s", err.msg);
    return bytes;
}

/* Loads and lowers; returns the first failing status or LS_OK. */
static int try_bytes(const uint8_t *bytes, size_t len, ls_error *err)
{
    ls_onnx_model *m = NULL;
    int rc = ls_onnx_load_bytes(bytes, len, &m, err);
    if (rc) {
        assert_null(m);
        assert_true(err->msg[0]);
        return rc;
    }
    ls_graph *g = NULL;
    rc = ls_graph_build(m, 1, &g, err);
    if (rc) assert_true(err->msg[0]);
    ls_graph_destroy(g);
    ls_onnx_destroy(m);
    return rc;
}

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = read_model("encoder_op11.onnx", &len);
    ls_error err = {0};
    assert_int_equal(try_bytes(bytes, len, &err), LS_OK);
    size_t cuts[] = {0,       1,       2,         7,        64,      1000,   5000,
                     len / 3, len / 2, len - 100, len - 20, len - 3, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        /* A copy of exactly the cut length, so that ASan sees any over-read. */
        uint8_t *cut = malloc(cuts[i] + 1);
        assert_non_null(cut);
        memcpy(cut, bytes, cuts[i]);
        int rc = try_bytes(cut, cuts[i], &err);
        if (rc >= 0) fail_msg("a model cut to %zu of %zu bytes was accepted", cuts[i], len);
        assert_true(rc == LS_ERR_FORMAT || rc == LS_ERR_UNSUPPORTED);
        free(cut);
    }
    ls_onnx_model *m = (ls_onnx_model *)1;
    assert_int_equal(ls_onnx_load_bytes(bytes, len / 2, &m, &err), LS_ERR_FORMAT);
    assert_null(m);
    assert_non_null(strstr(err.msg, "truncated or corrupted"));
    free(bytes);

    assert_int_equal(ls_onnx_load("/nonexistent/model.onnx", &m, &err), LS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/model.onnx"));
}

/* Random byte damage in the node section (the start of the graph) must
 * give an error or a valid graph, never a crash or a sanitizer report;
 * text instead of protobuf must be refused. */
static void test_corrupted(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = read_model("encoder_op17.onnx", &len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    uint64_t rng = 12345;
    int refused = 0;
    ls_error err = {0};
    for (int trial = 0; trial < 40; trial++) {
        memcpy(copy, bytes, len);
        for (int k = 0; k < 4; k++) copy[test_rand(&rng) % 6000] = (uint8_t)test_rand(&rng);
        int rc = try_bytes(copy, len, &err);
        refused += rc < 0;
        assert_true(rc <= 0 && rc != LS_ERR_INTERNAL);
    }
    assert_true(refused > 0);
    const char text[] = "ir_version: 8\ngraph { node { op_type: \"Relu\" } }\n";
    ls_onnx_model *m = (ls_onnx_model *)1;
    assert_int_equal(ls_onnx_load_bytes((const uint8_t *)text, sizeof text - 1, &m, &err),
                     LS_ERR_FORMAT);
    assert_null(m);
    free(copy);
    free(bytes);
}

/* Writes v as a protobuf varint just before p; returns the new start. */
static uint8_t *prepend_varint(uint8_t *p, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    p -= n;
    memcpy(p, tmp, (size_t)n);
    return p;
}

/* Graphs nested in node attributes, `levels` deep: 100000 levels fit in
 * about 1 MB and would exhaust the stack of a recursive unpacker. */
static void test_deep_nesting(void **state)
{
    (void)state;
    int depths[] = {3, 100000};
    for (int k = 0; k < 2; k++) {
        size_t cap = (size_t)depths[k] * 12 + 64;
        uint8_t *buf = malloc(cap), *end = buf + cap, *p = end;
        assert_non_null(buf);
        for (int i = 0; i < depths[k]; i++) {
            p = prepend_varint(p, (uint64_t)(end - p));
            p = prepend_varint(p, (6 << 3) | 2); /* AttributeProto.g */
            p = prepend_varint(p, (uint64_t)(end - p));
            p = prepend_varint(p, (5 << 3) | 2); /* NodeProto.attribute */
            p = prepend_varint(p, (uint64_t)(end - p));
            p = prepend_varint(p, (1 << 3) | 2); /* GraphProto.node */
        }
        p = prepend_varint(p, (uint64_t)(end - p));
        p = prepend_varint(p, (7 << 3) | 2); /* ModelProto.graph */
        ls_onnx_model *m = (ls_onnx_model *)1;
        ls_error err = {0};
        assert_int_equal(ls_onnx_load_bytes(p, (size_t)(end - p), &m, &err), LS_ERR_FORMAT);
        assert_null(m);
        /* Shallow: parsed, then refused for what it lacks; deep: refused unparsed. */
        assert_non_null(strstr(err.msg, k ? "nested" : "opset"));
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_fields_and_folding),
        cmocka_unit_test(test_no_fusion_across_shared_outputs),
        cmocka_unit_test(test_resize_pad_flatten),
        cmocka_unit_test(test_unsupported_op),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_tensor_decode_types),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
