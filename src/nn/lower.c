/* lower.c - ONNX nodes to graph IR nodes for one batch size.
 *
 * Nodes are visited in file order (ONNX requires a topological order). Each
 * ONNX tensor name is bound either to a constant (initializers, Constant
 * nodes and everything computed from constants and from the now concrete
 * shapes of activations) or to an activation value of the graph. Shape
 * plumbing therefore evaluates here, and only compute nodes reach the graph.
 */
#include "nn/lower.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph.h"
#include "nn/passes.h"
#include "nn/onnx_internal.h"

typedef enum sym_kind { SYM_CONST, SYM_ACT } sym_kind;

typedef struct sym {
    const char *name; /* points into the model's proto */
    sym_kind kind;
    ls_tensor t;      /* SYM_CONST; t.owned is freed with the context */
    int value;        /* SYM_ACT: the graph value; SYM_CONST: its graph copy or -1 */
} sym;

typedef struct lower_ctx {
    const ls_onnx_model *m;
    ls_graph_builder b;
    sym *syms;
    int n_syms, cap_syms;
    int *table; /* open addressing: sym index + 1, 0 when empty */
    size_t table_mask;
    const Onnx__NodeProto *node; /* the node being lowered, for messages */
    const char *label;
    ls_error *err;
    size_t computed_bytes; /* allocated by tensor_new so far */
} lower_ctx;

/* ---- errors ---- */

__attribute__((format(printf, 3, 4))) static int fail(lower_ctx *c, int code, const char *fmt, ...)
{
    char msg[LS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!c->node) return ls_error_set(c->err, code, "%s", msg);
    return ls_error_set(c->err, code, "node '%s' (%s): %s", c->label, c->node->op_type, msg);
}

/* ---- symbol table ---- */

static size_t hash_name(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static sym *lookup(lower_ctx *c, const char *name)
{
    for (size_t h = hash_name(name) & c->table_mask;; h = (h + 1) & c->table_mask) {
        int k = c->table[h];
        if (!k) return NULL;
        if (!strcmp(c->syms[k - 1].name, name)) return &c->syms[k - 1];
    }
}

/* Binds name to a new symbol; the table was sized for every name upfront. */
static sym *bind(lower_ctx *c, const char *name, sym_kind kind)
{
    if (!name || !name[0]) {
        fail(c, LS_ERR_FORMAT, "an output has no name");
        return NULL;
    }
    if (lookup(c, name)) {
        fail(c, LS_ERR_FORMAT, "tensor '%s' is defined twice", name);
        return NULL;
    }
    if (c->n_syms == c->cap_syms) {
        fail(c, LS_ERR_FORMAT, "more tensors than the model declares");
        return NULL;
    }
    sym *s = &c->syms[c->n_syms];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->kind = kind;
    s->value = -1;
    size_t h = hash_name(name) & c->table_mask;
    while (c->table[h]) h = (h + 1) & c->table_mask;
    c->table[h] = ++c->n_syms;
    return s;
}

/* ---- constant tensors ---- */

/* Bounds on every size the lowering computes, so that element counts and
 * offsets stay far from int64 overflow whatever a (damaged) file says. */
#define LS_DIM_MAX ((int64_t)1 << 31)
#define LS_COUNT_MAX ((int64_t)1 << 40)
/* Bound on the data that folding computes in one lowering (shape plumbing,
 * casts and reshapes of initializers): ConstantOfShape or repeated Concats
 * in a file of a few bytes must not make the loader fill gigabytes. A real
 * model's folding stays far below it (a Cast of every weight of a 12M
 * parameter fp16 export is 96 MiB). */
#define LS_COMPUTED_BYTES_MAX ((size_t)256 << 20)

static int64_t dims_count(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= dims[d];
    return n;
}

/* The element count of a shape whose dims are all in [min_dim, LS_DIM_MAX]
 * with a product of at most LS_COUNT_MAX, else -1. */
static int64_t bounded_count(int ndim, const int64_t *dims, int64_t min_dim)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < min_dim || dims[d] > LS_DIM_MAX) return -1;
        n *= dims[d];
        if (n > LS_COUNT_MAX) return -1;
    }
    return n;
}

/* A new owned tensor of the given shape (uninitialised data). */
static int tensor_new(lower_ctx *c, ls_tensor *t, ls_dtype dt, int ndim, const int64_t *dims)
{
    memset(t, 0, sizeof *t);
    if (ndim > LS_NN_MAX_DIMS) return fail(c, LS_ERR_UNSUPPORTED, "result of rank %d", ndim);
    t->dtype = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->dims[d] = dims[d];
    t->count = bounded_count(ndim, dims, 0);
    if (t->count < 0 || t->count > ((int64_t)1 << 30))
        return fail(c, LS_ERR_FORMAT, "constant result of a bad or too large shape");
    size_t bytes = (size_t)(t->count ? t->count : 1) * 8;
    if (bytes > LS_COMPUTED_BYTES_MAX - c->computed_bytes)
        return fail(c, LS_ERR_FORMAT, "constants computed from the model exceed %zu MiB",
                    LS_COMPUTED_BYTES_MAX >> 20);
    c->computed_bytes += bytes;
    t->owned = malloc(bytes);
    if (!t->owned) return fail(c, LS_ERR_NOMEM, "out of memory");
    if (dt == LS_DT_F32) t->f = t->owned;
    else t->i = t->owned;
    return LS_OK;
}

static float *tf(ls_tensor *t) { return (float *)t->owned; }
static int64_t *ti(ls_tensor *t) { return (int64_t *)t->owned; }

static void copy_elem(ls_tensor *dst, int64_t dk, const ls_tensor *src, int64_t sk)
{
    if (dst->dtype == LS_DT_F32) tf(dst)[dk] = src->f[sk];
    else ti(dst)[dk] = src->i[sk];
}

/* Copies src's elements into dst, of the same type and count. */
static void copy_data(ls_tensor *dst, const ls_tensor *src)
{
    if (!dst->count) return; /* empty tensors may have no data pointer */
    if (src->dtype == LS_DT_F32) memcpy(tf(dst), src->f, (size_t)dst->count * sizeof(float));
    else memcpy(ti(dst), src->i, (size_t)dst->count * sizeof(int64_t));
}

static void strides_of(int ndim, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
    }
}

/* ---- node inputs, outputs and attributes ---- */

static int has_input(const Onnx__NodeProto *n, size_t k)
{
    return k < n->n_input && n->input[k][0];
}

static int get_sym(lower_ctx *c, size_t k, sym **out)
{
    const Onnx__NodeProto *n = c->node;
    *out = NULL;
    if (!has_input(n, k)) return fail(c, LS_ERR_FORMAT, "input %zu is missing", k);
    *out = lookup(c, n->input[k]);
    if (!*out)
        return fail(c, LS_ERR_FORMAT, "input '%s' is not produced by any earlier node",
                    n->input[k]);
    return LS_OK;
}

static int get_const(lower_ctx *c, size_t k, const ls_tensor **t)
{
    sym *s;
    *t = NULL;
    int rc = get_sym(c, k, &s);
    if (rc) return rc;
    if (s->kind != SYM_CONST)
        return fail(c, LS_ERR_UNSUPPORTED,
                    "input '%s' is computed at run time; this op is only supported on constants "
                    "(shape arithmetic)",
                    s->name);
    *t = &s->t;
    return LS_OK;
}

static int get_act(lower_ctx *c, size_t k, int *value)
{
    sym *s;
    *value = -1;
    int rc = get_sym(c, k, &s);
    if (rc) return rc;
    if (s->kind != SYM_ACT)
        return fail(c, LS_ERR_UNSUPPORTED,
                    "input '%s' is a constant; a run-time tensor is expected", s->name);
    *value = s->value;
    return LS_OK;
}

static const ls_value *val(lower_ctx *c, int v) { return &c->b.g->values[v]; }

/* Takes ownership of t. */
static int define_const(lower_ctx *c, ls_tensor *t)
{
    sym *s = bind(c, c->node->output[0], SYM_CONST);
    if (!s) {
        ls_tensor_free(t);
        return c->err->code;
    }
    s->t = *t;
    return LS_OK;
}

/* A constant's copy in the graph (float data), made once. */
static int const_value(lower_ctx *c, sym *s, int *value)
{
    if (s->value < 0) {
        if (s->t.dtype != LS_DT_F32)
            return fail(c, LS_ERR_UNSUPPORTED, "integer tensor '%s' used as a float operand",
                        s->name);
        int v = ls_builder_add_value(&c->b, s->name, s->t.ndim, s->t.dims, s->t.f, c->err);
        if (v < 0) return v;
        s->value = v;
    }
    *value = s->value;
    return LS_OK;
}

static int check_single_output(lower_ctx *c)
{
    const Onnx__NodeProto *n = c->node;
    if (n->n_output < 1 || !n->output[0][0]) return fail(c, LS_ERR_FORMAT, "no output");
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k][0])
            return fail(c, LS_ERR_UNSUPPORTED, "output %zu ('%s') is not supported", k,
                        n->output[k]);
    return LS_OK;
}

/* Appends the compute node producing the node's output with the given shape. */
static int emit(lower_ctx *c, ls_op op, int n_in, const int *in, int ndim, const int64_t *dims,
                ls_node **out_node)
{
    if (out_node) *out_node = NULL;
    if (bounded_count(ndim, dims, 1) < 0) {
        char text[160] = "";
        for (int d = 0; d < ndim; d++) {
            size_t used = strlen(text);
            snprintf(text + used, sizeof text - used, "%s%lld", d ? "," : "", (long long)dims[d]);
        }
        return fail(c, LS_ERR_UNSUPPORTED, "output shape [%s] is empty or too large", text);
    }
    int v = ls_builder_add_value(&c->b, c->node->output[0], ndim, dims, NULL, c->err);
    if (v < 0) return v;
    int k = ls_builder_add_node(&c->b, op, c->label, n_in, in, v, c->err);
    if (k < 0) return k;
    sym *s = bind(c, c->node->output[0], SYM_ACT);
    if (!s) return c->err->code;
    s->value = v;
    if (out_node) *out_node = &c->b.g->nodes[k];
    return LS_OK;
}

static int attr_int(lower_ctx *c, const char *name, int64_t def, int64_t *out)
{
    const Onnx__AttributeProto *a = ls_onnx_attr(c->node, name);
    *out = def;
    if (!a) return LS_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return fail(c, LS_ERR_FORMAT, "attribute '%s' is not an int", name);
    *out = a->i;
    return LS_OK;
}

static int attr_float(lower_ctx *c, const char *name, float def, float *out)
{
    const Onnx__AttributeProto *a = ls_onnx_attr(c->node, name);
    *out = def;
    if (!a) return LS_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return fail(c, LS_ERR_FORMAT, "attribute '%s' is not a float", name);
    *out = a->f;
    return LS_OK;
}

/* Reads an ints attribute into buf; *count is -1 when absent. */
static int attr_ints(lower_ctx *c, const char *name, int64_t *buf, int cap, int *count)
{
    *count = -1;
    const Onnx__AttributeProto *a = ls_onnx_attr(c->node, name);
    *count = -1;
    if (!a) return LS_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return fail(c, LS_ERR_FORMAT, "attribute '%s' is not a list of ints", name);
    if (a->n_ints > (size_t)cap)
        return fail(c, LS_ERR_UNSUPPORTED, "attribute '%s' has %zu values (at most %d)", name,
                    a->n_ints, cap);
    for (size_t i = 0; i < a->n_ints; i++) buf[i] = a->ints[i];
    *count = (int)a->n_ints;
    return LS_OK;
}

static int attr_string(lower_ctx *c, const char *name, const char *def, char *buf, size_t cap)
{
    const Onnx__AttributeProto *a = ls_onnx_attr(c->node, name);
    snprintf(buf, cap, "%s", def);
    if (!a) return LS_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return fail(c, LS_ERR_FORMAT, "attribute '%s' is not a string", name);
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    if (n) memcpy(buf, a->s.data, n);
    buf[n] = 0;
    return LS_OK;
}

/* Axes given as an attribute (older opsets) or as input k (newer ones). */
static int axes_list(lower_ctx *c, int from_input_opset, size_t k, int64_t *axes, int *count)
{
    *count = -1;
    if (c->m->opset < from_input_opset) return attr_ints(c, "axes", axes, LS_NN_MAX_DIMS, count);
    *count = -1;
    if (!has_input(c->node, k)) return LS_OK;
    const ls_tensor *t;
    int rc = get_const(c, k, &t);
    if (rc) return rc;
    if (t->dtype != LS_DT_I64 || t->ndim > 1 || t->count > LS_NN_MAX_DIMS)
        return fail(c, LS_ERR_FORMAT, "bad axes tensor");
    for (int64_t i = 0; i < t->count; i++) axes[i] = t->i[i];
    *count = (int)t->count;
    return LS_OK;
}

static int norm_axis(lower_ctx *c, int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -rank || axis >= rank)
        return fail(c, LS_ERR_FORMAT, "axis %lld out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return LS_OK;
}

/* ---- shape of whatever an input is ---- */

typedef struct shape {
    int ndim;
    int64_t dims[LS_NN_MAX_DIMS];
} shape;

static int input_shape(lower_ctx *c, size_t k, shape *sh, sym **s_out)
{
    sym *s;
    memset(sh, 0, sizeof *sh);
    if (s_out) *s_out = NULL;
    int rc = get_sym(c, k, &s);
    if (rc) return rc;
    if (s->kind == SYM_CONST) {
        sh->ndim = s->t.ndim;
        memcpy(sh->dims, s->t.dims, sizeof sh->dims);
    } else {
        sh->ndim = val(c, s->value)->ndim;
        memcpy(sh->dims, val(c, s->value)->dims, sizeof sh->dims);
    }
    if (s_out) *s_out = s;
    return LS_OK;
}

/* Output of a view op (Reshape, Squeeze, Unsqueeze, Flatten, Identity):
 * a relabelled constant, or a RESHAPE node on an activation. */
static int define_view(lower_ctx *c, sym *src, const shape *to)
{
    if (src->kind == SYM_CONST) {
        ls_tensor t;
        int rc = tensor_new(c, &t, src->t.dtype, to->ndim, to->dims);
        if (rc) return rc;
        if (t.count != src->t.count) {
            ls_tensor_free(&t);
            return fail(c, LS_ERR_FORMAT, "reshape from %lld to %lld elements",
                        (long long)src->t.count, (long long)t.count);
        }
        copy_data(&t, &src->t);
        return define_const(c, &t);
    }
    const ls_value *v = val(c, src->value);
    if (dims_count(to->ndim, to->dims) != ls_value_count(v))
        return fail(c, LS_ERR_FORMAT, "reshape from %lld to %lld elements",
                    (long long)ls_value_count(v), (long long)dims_count(to->ndim, to->dims));
    int in = src->value;
    return emit(c, LS_OP_RESHAPE, 1, &in, to->ndim, to->dims, NULL);
}

/* ---- shape plumbing, evaluated on constants ---- */

static int op_constant(lower_ctx *c)
{
    const Onnx__NodeProto *n = c->node;
    if (n->n_attribute != 1)
        return fail(c, LS_ERR_FORMAT, "expects exactly one attribute, has %zu", n->n_attribute);
    const Onnx__AttributeProto *a = n->attribute[0];
    const char *an = a->name ? a->name : "";
    ls_tensor t;
    int rc;
    if (!strcmp(an, "value") && a->t) {
        ls_tensor view;
        rc = ls_tensor_decode(a->t, n->output[0], &view, c->err);
        if (rc) return fail(c, rc, "%s", c->err->msg);
        /* The decoded data may alias the proto or be owned: copy into an owned tensor. */
        rc = tensor_new(c, &t, view.dtype, view.ndim, view.dims);
        if (!rc) copy_data(&t, &view);
        ls_tensor_free(&view);
        if (rc) return rc;
    } else if (!strcmp(an, "value_float") || !strcmp(an, "value_int")) {
        int is_f = an[6] == 'f';
        rc = tensor_new(c, &t, is_f ? LS_DT_F32 : LS_DT_I64, 0, NULL);
        if (rc) return rc;
        if (is_f) tf(&t)[0] = a->f;
        else ti(&t)[0] = a->i;
    } else if (!strcmp(an, "value_floats") || !strcmp(an, "value_ints")) {
        int is_f = an[6] == 'f';
        int64_t len = is_f ? (int64_t)a->n_floats : (int64_t)a->n_ints;
        rc = tensor_new(c, &t, is_f ? LS_DT_F32 : LS_DT_I64, 1, &len);
        if (rc) return rc;
        for (int64_t i = 0; i < len; i++) {
            if (is_f) tf(&t)[i] = a->floats[i];
            else ti(&t)[i] = a->ints[i];
        }
    } else {
        return fail(c, LS_ERR_UNSUPPORTED, "attribute '%s' is not supported", an);
    }
    return define_const(c, &t);
}

static int op_identity(lower_ctx *c)
{
    sym *s;
    int rc = get_sym(c, 0, &s);
    if (rc) return rc;
    sym *o = bind(c, c->node->output[0], s->kind);
    if (!o) return c->err->code;
    o->value = s->value;
    if (s->kind == SYM_CONST) {
        o->t = s->t;
        o->t.owned = NULL; /* aliases the source's data */
    }
    return LS_OK;
}

static int op_shape(lower_ctx *c)
{
    shape sh;
    int rc = input_shape(c, 0, &sh, NULL);
    if (rc) return rc;
    int64_t start, end;
    if ((rc = attr_int(c, "start", 0, &start)) || (rc = attr_int(c, "end", sh.ndim, &end)))
        return rc;
    if (start < 0) start += sh.ndim;
    if (end < 0) end += sh.ndim;
    start = start < 0 ? 0 : start > sh.ndim ? sh.ndim : start;
    end = end < start ? start : end > sh.ndim ? sh.ndim : end;
    int64_t len = end - start;
    ls_tensor t;
    if ((rc = tensor_new(c, &t, LS_DT_I64, 1, &len))) return rc;
    for (int64_t d = 0; d < len; d++) ti(&t)[d] = sh.dims[start + d];
    return define_const(c, &t);
}

static int op_gather(lower_ctx *c)
{
    const ls_tensor *data, *idx;
    int rc;
    if ((rc = get_const(c, 0, &data)) || (rc = get_const(c, 1, &idx))) return rc;
    int64_t a64;
    int axis;
    if ((rc = attr_int(c, "axis", 0, &a64)) || (rc = norm_axis(c, a64, data->ndim, &axis)))
        return rc;
    if (idx->dtype != LS_DT_I64) return fail(c, LS_ERR_FORMAT, "indices are not integers");
    int64_t dims[2 * LS_NN_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < axis; d++) dims[nd++] = data->dims[d];
    for (int d = 0; d < idx->ndim; d++) dims[nd++] = idx->dims[d];
    for (int d = axis + 1; d < data->ndim; d++) dims[nd++] = data->dims[d];
    ls_tensor t;
    if ((rc = tensor_new(c, &t, data->dtype, nd, dims))) return rc;
    int64_t outer = dims_count(axis, data->dims), n = data->dims[axis];
    int64_t inner = dims_count(data->ndim - axis - 1, data->dims + axis + 1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < idx->count; j++) {
            int64_t k = idx->i[j] < 0 ? idx->i[j] + n : idx->i[j];
            if (k < 0 || k >= n) {
                ls_tensor_free(&t);
                return fail(c, LS_ERR_FORMAT, "index %lld out of range", (long long)idx->i[j]);
            }
            for (int64_t i = 0; i < inner; i++)
                copy_elem(&t, (o * idx->count + j) * inner + i, data, (o * n + k) * inner + i);
        }
    return define_const(c, &t);
}

static int op_unsqueeze(lower_ctx *c)
{
    shape in, out;
    sym *s;
    int64_t axes[LS_NN_MAX_DIMS];
    int n_axes, rc;
    if ((rc = input_shape(c, 0, &in, &s)) || (rc = axes_list(c, 13, 1, axes, &n_axes))) return rc;
    if (n_axes < 0) return fail(c, LS_ERR_FORMAT, "no axes");
    out.ndim = in.ndim + n_axes;
    if (out.ndim > LS_NN_MAX_DIMS)
        return fail(c, LS_ERR_UNSUPPORTED, "result of rank %d", out.ndim);
    int inserted[LS_NN_MAX_DIMS] = {0};
    for (int i = 0; i < n_axes; i++) {
        int a;
        if ((rc = norm_axis(c, axes[i], out.ndim, &a))) return rc;
        if (inserted[a]) return fail(c, LS_ERR_FORMAT, "axis %d repeated", a);
        inserted[a] = 1;
    }
    for (int d = 0, k = 0; d < out.ndim; d++) out.dims[d] = inserted[d] ? 1 : in.dims[k++];
    return define_view(c, s, &out);
}

static int op_squeeze(lower_ctx *c)
{
    shape in, out;
    sym *s;
    int64_t axes[LS_NN_MAX_DIMS];
    int n_axes, rc;
    if ((rc = input_shape(c, 0, &in, &s)) || (rc = axes_list(c, 13, 1, axes, &n_axes))) return rc;
    int drop[LS_NN_MAX_DIMS] = {0};
    for (int d = 0; n_axes < 0 && d < in.ndim; d++) drop[d] = in.dims[d] == 1;
    for (int i = 0; i < n_axes; i++) {
        int a;
        if ((rc = norm_axis(c, axes[i], in.ndim, &a))) return rc;
        if (in.dims[a] != 1)
            return fail(c, LS_ERR_FORMAT, "cannot squeeze axis %d of size %lld", a,
                        (long long)in.dims[a]);
        drop[a] = 1;
    }
    out.ndim = 0;
    for (int d = 0; d < in.ndim; d++)
        if (!drop[d]) out.dims[out.ndim++] = in.dims[d];
    return define_view(c, s, &out);
}

static int op_flatten(lower_ctx *c)
{
    shape in, out;
    sym *s;
    int64_t a64;
    int rc;
    if ((rc = input_shape(c, 0, &in, &s)) || (rc = attr_int(c, "axis", 1, &a64))) return rc;
    if (a64 < -in.ndim || a64 > in.ndim) return fail(c, LS_ERR_FORMAT, "axis out of range");
    int axis = (int)(a64 < 0 ? a64 + in.ndim : a64);
    out.ndim = 2;
    out.dims[0] = dims_count(axis, in.dims);
    out.dims[1] = dims_count(in.ndim - axis, in.dims + axis);
    return define_view(c, s, &out);
}

static int op_reshape(lower_ctx *c)
{
    shape in, out;
    sym *s;
    const ls_tensor *spec;
    int64_t allowzero;
    int rc;
    if ((rc = input_shape(c, 0, &in, &s)) || (rc = get_const(c, 1, &spec)) ||
        (rc = attr_int(c, "allowzero", 0, &allowzero)))
        return rc;
    if (spec->dtype != LS_DT_I64 || spec->ndim != 1 || spec->count > LS_NN_MAX_DIMS)
        return fail(c, LS_ERR_FORMAT, "bad shape tensor");
    out.ndim = (int)spec->count;
    int infer = -1;
    int64_t known = 1, total = dims_count(in.ndim, in.dims);
    for (int d = 0; d < out.ndim; d++) {
        int64_t v = spec->i[d];
        if (v == 0 && !allowzero) {
            if (d >= in.ndim) return fail(c, LS_ERR_FORMAT, "shape copies missing axis %d", d);
            v = in.dims[d];
        }
        if (v == -1) {
            if (infer >= 0) return fail(c, LS_ERR_FORMAT, "two -1 in the shape");
            infer = d;
            v = 1;
        } else if (v < 0 || v > LS_DIM_MAX) {
            return fail(c, LS_ERR_FORMAT, "bad size %lld in the shape", (long long)v);
        }
        out.dims[d] = v;
        known *= v;
        if (known > LS_COUNT_MAX) return fail(c, LS_ERR_FORMAT, "shape too large");
    }
    if (infer >= 0) {
        if (known == 0 || total % known)
            return fail(c, LS_ERR_FORMAT, "cannot infer -1 for %lld elements", (long long)total);
        out.dims[infer] = total / known;
    }
    return define_view(c, s, &out);
}

static int op_cast(lower_ctx *c)
{
    sym *s;
    int64_t to;
    int rc;
    if ((rc = get_sym(c, 0, &s)) || (rc = attr_int(c, "to", 0, &to))) return rc;
    int to_float = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                   to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
                   to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
                   to == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    int to_bool = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    if (to == ONNX__TENSOR_PROTO__DATA_TYPE__STRING || to <= 0 || to > 16)
        return fail(c, LS_ERR_UNSUPPORTED, "cast to type %lld", (long long)to);
    if (s->kind == SYM_ACT) {
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return fail(c, LS_ERR_UNSUPPORTED, "cast of a run-time tensor to type %lld",
                        (long long)to);
        return op_identity(c);
    }
    ls_tensor t;
    if ((rc = tensor_new(c, &t, to_float ? LS_DT_F32 : LS_DT_I64, s->t.ndim, s->t.dims))) return rc;
    for (int64_t k = 0; k < t.count; k++) {
        if (to_float) tf(&t)[k] = s->t.dtype == LS_DT_F32 ? s->t.f[k] : (float)s->t.i[k];
        else if (s->t.dtype == LS_DT_I64) ti(&t)[k] = to_bool ? s->t.i[k] != 0 : s->t.i[k];
        else if (to_bool) ti(&t)[k] = s->t.f[k] != 0.0f;
        else if (!(fabsf(s->t.f[k]) < 9.2e18f)) {
            ls_tensor_free(&t);
            return fail(c, LS_ERR_RANGE, "cannot cast %g to an integer", (double)s->t.f[k]);
        } else ti(&t)[k] = (int64_t)s->t.f[k]; /* truncation, as C and ONNX runtimes do */
    }
    return define_const(c, &t);
}

typedef enum arith { AR_ADD, AR_SUB, AR_MUL, AR_DIV } arith;

/* Numpy-broadcast elementwise arithmetic on two constants of one type. */
static int fold_binary(lower_ctx *c, arith op)
{
    const ls_tensor *a, *b;
    int rc;
    if ((rc = get_const(c, 0, &a)) || (rc = get_const(c, 1, &b))) return rc;
    if (a->dtype != b->dtype) return fail(c, LS_ERR_FORMAT, "operands of different types");
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t dims[LS_NN_MAX_DIMS], ad[LS_NN_MAX_DIMS], bd[LS_NN_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int ka = d - (nd - a->ndim), kb = d - (nd - b->ndim);
        ad[d] = ka >= 0 ? a->dims[ka] : 1;
        bd[d] = kb >= 0 ? b->dims[kb] : 1;
        if (ad[d] != bd[d] && ad[d] != 1 && bd[d] != 1)
            return fail(c, LS_ERR_FORMAT, "shapes do not broadcast on axis %d", d);
        dims[d] = ad[d] == 1 ? bd[d] : ad[d];
    }
    int64_t as[LS_NN_MAX_DIMS], bs[LS_NN_MAX_DIMS], os[LS_NN_MAX_DIMS];
    strides_of(nd, ad, as);
    strides_of(nd, bd, bs);
    strides_of(nd, dims, os);
    ls_tensor t;
    if ((rc = tensor_new(c, &t, a->dtype, nd, dims))) return rc;
    for (int64_t k = 0; k < t.count; k++) {
        int64_t ka = 0, kb = 0;
        for (int d = 0; d < nd; d++) {
            int64_t x = k / os[d] % dims[d];
            ka += (ad[d] == 1 ? 0 : x) * as[d];
            kb += (bd[d] == 1 ? 0 : x) * bs[d];
        }
        if (t.dtype == LS_DT_F32) {
            float x = a->f[ka], y = b->f[kb];
            tf(&t)[k] = op == AR_ADD ? x + y : op == AR_SUB ? x - y : op == AR_MUL ? x * y : x / y;
        } else {
            int64_t x = a->i[ka], y = b->i[kb];
            if (op == AR_DIV && (y == 0 || (x == INT64_MIN && y == -1))) {
                ls_tensor_free(&t);
                return fail(c, LS_ERR_RANGE, "integer division of %lld by %lld", (long long)x,
                            (long long)y);
            }
            /* Wrapping arithmetic: shape values never come near the limits. */
            uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
            ti(&t)[k] = op == AR_ADD   ? (int64_t)(ux + uy)
                        : op == AR_SUB ? (int64_t)(ux - uy)
                        : op == AR_MUL ? (int64_t)(ux * uy)
                                       : x / y;
        }
    }
    return define_const(c, &t);
}

static int op_sub(lower_ctx *c) { return fold_binary(c, AR_SUB); }
static int op_mul(lower_ctx *c) { return fold_binary(c, AR_MUL); }
static int op_div(lower_ctx *c) { return fold_binary(c, AR_DIV); }

static int op_constant_of_shape(lower_ctx *c)
{
    const ls_tensor *spec;
    int rc;
    if ((rc = get_const(c, 0, &spec))) return rc;
    if (spec->dtype != LS_DT_I64 || spec->ndim != 1 || spec->count > LS_NN_MAX_DIMS)
        return fail(c, LS_ERR_FORMAT, "bad shape tensor");
    ls_tensor fill = {.dtype = LS_DT_F32};
    float zero = 0.0f;
    fill.f = &zero;
    const Onnx__AttributeProto *a = ls_onnx_attr(c->node, "value");
    if (a) {
        if (!a->t) return fail(c, LS_ERR_FORMAT, "attribute 'value' is not a tensor");
        if ((rc = ls_tensor_decode(a->t, "value", &fill, c->err)))
            return fail(c, rc, "%s", c->err->msg);
        if (fill.count != 1) {
            ls_tensor_free(&fill);
            return fail(c, LS_ERR_FORMAT, "value holds %lld elements", (long long)fill.count);
        }
    }
    ls_tensor t;
    rc = tensor_new(c, &t, fill.dtype, (int)spec->count, spec->i);
    for (int64_t k = 0; !rc && k < t.count; k++) copy_elem(&t, k, &fill, 0);
    ls_tensor_free(&fill);
    return rc ? rc : define_const(c, &t);
}

static int op_slice(lower_ctx *c)
{
    const ls_tensor *data, *st, *en, *ax = NULL, *sp = NULL;
    int rc;
    if ((rc = get_const(c, 0, &data)) || (rc = get_const(c, 1, &st)) || (rc = get_const(c, 2, &en)))
        return rc;
    if (has_input(c->node, 3) && (rc = get_const(c, 3, &ax))) return rc;
    if (has_input(c->node, 4) && (rc = get_const(c, 4, &sp))) return rc;
    int64_t n = st->count;
    if (st->dtype != LS_DT_I64 || en->dtype != LS_DT_I64 || en->count != n ||
        (ax && (ax->dtype != LS_DT_I64 || ax->count != n)) ||
        (sp && (sp->dtype != LS_DT_I64 || sp->count != n)))
        return fail(c, LS_ERR_FORMAT, "inconsistent starts/ends/axes/steps");
    int nd = data->ndim;
    int64_t start[LS_NN_MAX_DIMS], step[LS_NN_MAX_DIMS], dims[LS_NN_MAX_DIMS];
    for (int d = 0; d < nd; d++) start[d] = 0, step[d] = 1, dims[d] = data->dims[d];
    for (int64_t k = 0; k < n; k++) {
        int a;
        if ((rc = norm_axis(c, ax ? ax->i[k] : k, nd, &a))) return rc;
        int64_t dim = data->dims[a], s = st->i[k], e = en->i[k], p = sp ? sp->i[k] : 1;
        if (p == 0 || p == INT64_MIN) return fail(c, LS_ERR_FORMAT, "step %lld", (long long)p);
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (p > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            dims[a] = e > s ? 1 + (e - s - 1) / p : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            dims[a] = s > e ? 1 + (s - e - 1) / (-p) : 0;
        }
        start[a] = s;
        step[a] = p;
    }
    ls_tensor t;
    if ((rc = tensor_new(c, &t, data->dtype, nd, dims))) return rc;
    int64_t is[LS_NN_MAX_DIMS], os[LS_NN_MAX_DIMS];
    strides_of(nd, data->dims, is);
    strides_of(nd, dims, os);
    for (int64_t k = 0; k < t.count; k++) {
        int64_t src = 0;
        for (int d = 0; d < nd; d++) src += (start[d] + (k / os[d] % dims[d]) * step[d]) * is[d];
        copy_elem(&t, k, data, src);
    }
    return define_const(c, &t);
}

static int op_transpose(lower_ctx *c)
{
    const ls_tensor *data;
    int64_t perm[LS_NN_MAX_DIMS];
    int n_perm, rc;
    if ((rc = get_const(c, 0, &data)) || (rc = attr_ints(c, "perm", perm, LS_NN_MAX_DIMS, &n_perm)))
        return rc;
    int nd = data->ndim;
    if (n_perm < 0)
        for (int d = 0; d < nd; d++) perm[d] = nd - 1 - d;
    else if (n_perm != nd)
        return fail(c, LS_ERR_FORMAT, "perm has %d entries for rank %d", n_perm, nd);
    int64_t dims[LS_NN_MAX_DIMS] = {0}, is[LS_NN_MAX_DIMS], os[LS_NN_MAX_DIMS];
    int seen[LS_NN_MAX_DIMS] = {0};
    for (int d = 0; d < nd; d++) {
        if (perm[d] < 0 || perm[d] >= nd || seen[perm[d]]++)
            return fail(c, LS_ERR_FORMAT, "perm is not a permutation");
        dims[d] = data->dims[perm[d]];
    }
    ls_tensor t;
    if ((rc = tensor_new(c, &t, data->dtype, nd, dims))) return rc;
    strides_of(nd, data->dims, is);
    strides_of(nd, dims, os);
    for (int64_t k = 0; k < t.count; k++) {
        int64_t src = 0;
        for (int d = 0; d < nd; d++) src += (k / os[d] % dims[d]) * is[perm[d]];
        copy_elem(&t, k, data, src);
    }
    return define_const(c, &t);
}

/* Concat of constants (shape vectors) or of activations. */
static int op_concat(lower_ctx *c)
{
    const Onnx__NodeProto *n = c->node;
    if (n->n_input < 1) return fail(c, LS_ERR_FORMAT, "no inputs");
    shape first, sh;
    sym *s;
    int64_t a64;
    int axis, rc, all_const = 1;
    if ((rc = input_shape(c, 0, &first, NULL)) || (rc = attr_int(c, "axis", 0, &a64)) ||
        (rc = norm_axis(c, a64, first.ndim, &axis)))
        return rc;
    shape out = first;
    out.dims[axis] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        if ((rc = input_shape(c, k, &sh, &s))) return rc;
        if (s->kind == SYM_ACT) all_const = 0;
        if (sh.ndim != first.ndim) return fail(c, LS_ERR_FORMAT, "inputs of different ranks");
        for (int d = 0; d < sh.ndim; d++)
            if (d != axis && sh.dims[d] != first.dims[d])
                return fail(c, LS_ERR_FORMAT, "input %zu differs on axis %d", k, d);
        out.dims[axis] += sh.dims[axis];
    }
    if (all_const) {
        ls_tensor t;
        const ls_tensor *in0;
        if ((rc = get_const(c, 0, &in0)) ||
            (rc = tensor_new(c, &t, in0->dtype, out.ndim, out.dims)))
            return rc;
        int64_t outer = dims_count(axis, out.dims),
                inner = dims_count(out.ndim - axis - 1, out.dims + axis + 1);
        int64_t off = 0;
        for (size_t k = 0; k < n->n_input; k++) {
            const ls_tensor *in;
            get_const(c, k, &in);
            if (in->dtype != t.dtype) {
                ls_tensor_free(&t);
                return fail(c, LS_ERR_FORMAT, "inputs of different types");
            }
            int64_t chunk = in->dims[axis] * inner;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t i = 0; i < chunk; i++)
                    copy_elem(&t, o * out.dims[axis] * inner + off + i, in, o * chunk + i);
            off += chunk;
        }
        return define_const(c, &t);
    }
    if (n->n_input > LS_NN_MAX_INPUTS)
        return fail(c, LS_ERR_UNSUPPORTED, "%zu inputs (at most %d)", n->n_input, LS_NN_MAX_INPUTS);
    int in[LS_NN_MAX_INPUTS];
    for (size_t k = 0; k < n->n_input; k++) {
        if ((rc = get_sym(c, k, &s))) return rc;
        in[k] = s->value;
        if (s->kind == SYM_CONST && (rc = const_value(c, s, &in[k]))) return rc;
    }
    ls_node *node;
    if ((rc = emit(c, LS_OP_CONCAT, (int)n->n_input, in, out.ndim, out.dims, &node))) return rc;
    node->attr.concat_axis = axis;
    return LS_OK;
}

/* Add: folded on constants, a graph node on activations. */
static int op_add(lower_ctx *c)
{
    sym *a, *b;
    int rc;
    if ((rc = get_sym(c, 0, &a)) || (rc = get_sym(c, 1, &b))) return rc;
    if (a->kind == SYM_CONST && b->kind == SYM_CONST) return fold_binary(c, AR_ADD);
    if (a->kind == SYM_CONST) { /* keep the activation first */
        sym *x = a;
        a = b;
        b = x;
    }
    /* Copied: adding the constant's value may move the value array. */
    ls_value va_copy = *val(c, a->value);
    const ls_value *va = &va_copy;
    int in[2] = {a->value, -1};
    if (b->kind == SYM_ACT) {
        const ls_value *vb = val(c, b->value);
        if (vb->ndim != va->ndim || memcmp(vb->dims, va->dims, sizeof(int64_t) * (size_t)va->ndim))
            return fail(c, LS_ERR_UNSUPPORTED, "operands of different shapes (broadcasting between "
                                               "run-time tensors is not supported)");
        in[1] = b->value;
    } else {
        /* A constant operand broadcasts into the activation's shape, never the reverse. */
        if (b->t.ndim > va->ndim) return fail(c, LS_ERR_UNSUPPORTED, "constant of higher rank");
        for (int d = 0; d < b->t.ndim; d++) {
            int64_t cd = b->t.dims[b->t.ndim - 1 - d], ad = va->dims[va->ndim - 1 - d];
            if (cd != 1 && cd != ad)
                return fail(c, LS_ERR_FORMAT, "constant '%s' does not broadcast", b->name);
        }
        if ((rc = const_value(c, b, &in[1]))) return rc;
    }
    int64_t dims[LS_NN_MAX_DIMS];
    memcpy(dims, va->dims, sizeof dims);
    return emit(c, LS_OP_ADD, 2, in, va->ndim, dims, NULL);
}

/* ---- compute ops ---- */

static int op_unary(lower_ctx *c, ls_op op)
{
    int x, rc;
    if ((rc = get_act(c, 0, &x))) return rc;
    int64_t dims[LS_NN_MAX_DIMS];
    memcpy(dims, val(c, x)->dims, sizeof dims);
    return emit(c, op, 1, &x, val(c, x)->ndim, dims, NULL);
}

static int op_relu(lower_ctx *c) { return op_unary(c, LS_OP_RELU); }
static int op_sigmoid(lower_ctx *c) { return op_unary(c, LS_OP_SIGMOID); }

/* A float constant operand of exactly the given shape. */
static int const_operand(lower_ctx *c, size_t k, int ndim, const int64_t *dims, int *value)
{
    sym *s;
    int rc;
    if ((rc = get_sym(c, k, &s))) return rc;
    if (s->kind != SYM_CONST)
        return fail(c, LS_ERR_UNSUPPORTED, "input '%s' must be a constant", s->name);
    if (s->t.ndim != ndim || memcmp(s->t.dims, dims, sizeof(int64_t) * (size_t)ndim))
        return fail(c, LS_ERR_FORMAT, "input '%s' has the wrong shape", s->name);
    return const_value(c, s, value);
}

static int op_conv(lower_ctx *c)
{
    int x, rc;
    if ((rc = get_act(c, 0, &x))) return rc;
    const ls_value *vx = val(c, x);
    sym *ws;
    if ((rc = get_sym(c, 1, &ws))) return rc;
    if (vx->ndim != 4 || ws->kind != SYM_CONST || ws->t.ndim != 4)
        return fail(c, LS_ERR_UNSUPPORTED,
                    "only 2-D convolutions with constant weights are supported");
    const int64_t *wd = ws->t.dims;
    int64_t group, ks[2], st[2] = {1, 1}, dil[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    int n_ks, n_st, n_dil, n_pads;
    char auto_pad[32];
    if ((rc = attr_int(c, "group", 1, &group)) ||
        (rc = attr_ints(c, "kernel_shape", ks, 2, &n_ks)) ||
        (rc = attr_ints(c, "strides", st, 2, &n_st)) ||
        (rc = attr_ints(c, "dilations", dil, 2, &n_dil)) ||
        (rc = attr_ints(c, "pads", pads, 4, &n_pads)) ||
        (rc = attr_string(c, "auto_pad", "NOTSET", auto_pad, sizeof auto_pad)))
        return rc;
    if ((n_st >= 0 && n_st != 2) || (n_dil >= 0 && n_dil != 2) || (n_pads >= 0 && n_pads != 4))
        return fail(c, LS_ERR_FORMAT, "strides/dilations/pads of the wrong length");
    if (n_ks >= 0 && (n_ks != 2 || ks[0] != wd[2] || ks[1] != wd[3]))
        return fail(c, LS_ERR_FORMAT, "kernel_shape disagrees with the weights");
    int64_t cin = vx->dims[1];
    if (group < 1 || wd[1] * group != cin || wd[0] % group)
        return fail(c, LS_ERR_FORMAT,
                    "weights [%lld,%lld,..] do not fit %lld input channels in %lld groups",
                    (long long)wd[0], (long long)wd[1], (long long)cin, (long long)group);
    for (int d = 0; d < 2; d++)
        if (st[d] < 1 || dil[d] < 1 || pads[d] < 0 || pads[d + 2] < 0 || wd[2 + d] < 1 ||
            st[d] > LS_DIM_MAX || dil[d] > LS_DIM_MAX || pads[d] > LS_DIM_MAX ||
            pads[d + 2] > LS_DIM_MAX)
            return fail(c, LS_ERR_FORMAT, "bad stride, dilation, pad or kernel size");
    int64_t out[4] = {vx->dims[0], wd[0], 0, 0};
    for (int d = 0; d < 2; d++) {
        int64_t in = vx->dims[2 + d], ext = dil[d] * (wd[2 + d] - 1) + 1;
        if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
            int64_t o = (in + st[d] - 1) / st[d], total = (o - 1) * st[d] + ext - in;
            if (total < 0) total = 0;
            int lower_first = !strcmp(auto_pad, "SAME_LOWER");
            pads[d] = lower_first ? (total + 1) / 2 : total / 2;
            pads[d + 2] = total - pads[d];
        } else if (!strcmp(auto_pad, "VALID")) {
            pads[d] = pads[d + 2] = 0;
        } else if (strcmp(auto_pad, "NOTSET")) {
            return fail(c, LS_ERR_UNSUPPORTED, "auto_pad '%s'", auto_pad);
        }
        out[2 + d] = (in + pads[d] + pads[d + 2] - ext) / st[d] + 1;
        if (in + pads[d] + pads[d + 2] < ext) out[2 + d] = 0;
    }
    int in[3] = {x, -1, -1}, n_in = 2;
    if ((rc = const_operand(c, 1, 4, wd, &in[1]))) return rc;
    if (has_input(c->node, 2)) {
        if ((rc = const_operand(c, 2, 1, &wd[0], &in[2]))) return rc;
        n_in = 3;
    }
    ls_node *node;
    if ((rc = emit(c, LS_OP_CONV, n_in, in, 4, out, &node))) return rc;
    ls_conv_attr *a = &node->attr.conv;
    for (int d = 0; d < 2; d++) {
        a->kernel[d] = (int)wd[2 + d];
        a->stride[d] = (int)st[d];
        a->dilation[d] = (int)dil[d];
    }
    for (int d = 0; d < 4; d++) a->pad[d] = (int)pads[d];
    a->group = (int)group;
    a->fuse_relu = 0;
    a->fuse_sigmoid = 0;
    a->residual = -1;
    return LS_OK;
}

static int op_batchnorm(lower_ctx *c)
{
    int x, rc, in[5];
    float eps;
    int64_t training;
    if ((rc = get_act(c, 0, &x))) return rc;
    if ((rc = attr_float(c, "epsilon", 1e-5f, &eps)) ||
        (rc = attr_int(c, "training_mode", 0, &training)))
        return rc;
    if (training) return fail(c, LS_ERR_UNSUPPORTED, "training mode");
    /* Copied: adding the operands' values may move the value array. */
    int ndim = val(c, x)->ndim;
    int64_t dims[LS_NN_MAX_DIMS];
    memcpy(dims, val(c, x)->dims, sizeof dims);
    if (ndim < 2) return fail(c, LS_ERR_FORMAT, "input of rank %d", ndim);
    in[0] = x;
    for (int k = 1; k < 5; k++)
        if ((rc = const_operand(c, (size_t)k, 1, &dims[1], &in[k]))) return rc;
    ls_node *node;
    if ((rc = emit(c, LS_OP_BATCHNORM, 5, in, ndim, dims, &node))) return rc;
    node->attr.bn_eps = eps;
    return LS_OK;
}

static int op_resize(lower_ctx *c)
{
    int x, rc;
    if ((rc = get_act(c, 0, &x))) return rc;
    const ls_value *vx = val(c, x);
    if (vx->ndim != 4) return fail(c, LS_ERR_UNSUPPORTED, "only 4-D (NCHW) inputs are supported");
    char mode[32], coord[32], nearest[32];
    if ((rc = attr_string(c, "mode", "nearest", mode, sizeof mode)) ||
        (rc =
             attr_string(c, "coordinate_transformation_mode", "half_pixel", coord, sizeof coord)) ||
        (rc = attr_string(c, "nearest_mode", "round_prefer_floor", nearest, sizeof nearest)))
        return rc;
    ls_resize_attr ra = {0};
    if (!strcmp(mode, "nearest")) ra.mode = LS_RESIZE_NEAREST;
    else if (!strcmp(mode, "linear")) ra.mode = LS_RESIZE_LINEAR;
    else return fail(c, LS_ERR_UNSUPPORTED, "mode '%s' (nearest and linear are supported)", mode);
    if (!strcmp(coord, "half_pixel")) ra.coord = LS_COORD_HALF_PIXEL;
    else if (!strcmp(coord, "align_corners")) ra.coord = LS_COORD_ALIGN_CORNERS;
    else if (!strcmp(coord, "asymmetric")) ra.coord = LS_COORD_ASYMMETRIC;
    else if (!strcmp(coord, "pytorch_half_pixel")) ra.coord = LS_COORD_PYTORCH_HALF_PIXEL;
    else return fail(c, LS_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s'", coord);
    if (!strcmp(nearest, "round_prefer_floor")) ra.nearest = LS_NEAREST_ROUND_PREFER_FLOOR;
    else if (!strcmp(nearest, "round_prefer_ceil")) ra.nearest = LS_NEAREST_ROUND_PREFER_CEIL;
    else if (!strcmp(nearest, "floor")) ra.nearest = LS_NEAREST_FLOOR;
    else if (!strcmp(nearest, "ceil")) ra.nearest = LS_NEAREST_CEIL;
    else return fail(c, LS_ERR_UNSUPPORTED, "nearest_mode '%s'", nearest);
    /* Inputs: X, roi, scales, sizes; roi only matters for tf_crop_and_resize. */
    const ls_tensor *scales = NULL, *sizes = NULL;
    if (has_input(c->node, 2) && (rc = get_const(c, 2, &scales))) return rc;
    if (has_input(c->node, 3) && (rc = get_const(c, 3, &sizes))) return rc;
    if (scales && scales->count == 0) scales = NULL;
    if (sizes && sizes->count == 0) sizes = NULL;
    if (!scales == !sizes) return fail(c, LS_ERR_FORMAT, "give exactly one of scales and sizes");
    const ls_tensor *given = scales ? scales : sizes;
    if (given->count != 4 || given->dtype != (scales ? LS_DT_F32 : LS_DT_I64))
        return fail(c, LS_ERR_FORMAT, "%s must hold 4 values of the right type",
                    scales ? "scales" : "sizes");
    int64_t out[4];
    for (int d = 0; d < 4; d++) {
        if (scales) {
            if (!(scales->f[d] > 0.0f && scales->f[d] < 1e6f))
                return fail(c, LS_ERR_FORMAT, "scale %g", (double)scales->f[d]);
            out[d] = (int64_t)floor((double)vx->dims[d] * (double)scales->f[d]);
        } else {
            out[d] = sizes->i[d];
        }
    }
    if (out[0] != vx->dims[0] || out[1] != vx->dims[1])
        return fail(c, LS_ERR_UNSUPPORTED, "resizing the batch or channel axis");
    for (int d = 0; d < 2; d++)
        ra.scale[d] =
            scales ? scales->f[2 + d] : (float)((double)out[2 + d] / (double)vx->dims[2 + d]);
    ls_node *node;
    if ((rc = emit(c, LS_OP_RESIZE, 1, &x, 4, out, &node))) return rc;
    node->attr.resize = ra;
    return LS_OK;
}

static int op_pad(lower_ctx *c)
{
    int x, rc;
    char mode[32];
    if ((rc = get_act(c, 0, &x)) || (rc = attr_string(c, "mode", "constant", mode, sizeof mode)))
        return rc;
    if (strcmp(mode, "constant"))
        return fail(c, LS_ERR_UNSUPPORTED, "mode '%s' (only constant)", mode);
    const ls_value *vx = val(c, x);
    const ls_tensor *pads, *value = NULL;
    if ((rc = get_const(c, 1, &pads))) return rc;
    if (has_input(c->node, 2) && (rc = get_const(c, 2, &value))) return rc;
    if (has_input(c->node, 3)) return fail(c, LS_ERR_UNSUPPORTED, "the axes input");
    if (pads->dtype != LS_DT_I64 || pads->count != 2 * vx->ndim)
        return fail(c, LS_ERR_FORMAT, "pads must hold %d integers", 2 * vx->ndim);
    if (value && (value->count != 1 || value->dtype != LS_DT_F32))
        return fail(c, LS_ERR_FORMAT, "constant_value must be one float");
    ls_pad_attr pa = {.value = value ? value->f[0] : 0.0f};
    int64_t out[LS_NN_MAX_DIMS];
    for (int d = 0; d < vx->ndim; d++) {
        int64_t b = pads->i[d], e = pads->i[d + vx->ndim];
        if (b < 0 || e < 0) return fail(c, LS_ERR_UNSUPPORTED, "negative pads (cropping)");
        if (b > LS_DIM_MAX || e > LS_DIM_MAX) return fail(c, LS_ERR_FORMAT, "pads too large");
        pa.pads[d] = b;
        pa.pads[d + vx->ndim] = e;
        out[d] = vx->dims[d] + b + e;
    }
    ls_node *node;
    if ((rc = emit(c, LS_OP_PAD, 1, &x, vx->ndim, out, &node))) return rc;
    node->attr.pad = pa;
    return LS_OK;
}

/* ---- driver ---- */

typedef struct op_entry {
    const char *type;
    int (*lower)(lower_ctx *c);
} op_entry;

static const op_entry op_table[] = {
    {"Constant", op_constant},   {"Identity", op_identity},
    {"Shape", op_shape},         {"Gather", op_gather},
    {"Unsqueeze", op_unsqueeze}, {"Squeeze", op_squeeze},
    {"Flatten", op_flatten},     {"Reshape", op_reshape},
    {"Cast", op_cast},           {"Sub", op_sub},
    {"Mul", op_mul},             {"Div", op_div},
    {"Add", op_add},             {"Concat", op_concat},
    {"ConstantOfShape", op_constant_of_shape},
    {"Slice", op_slice},         {"Transpose", op_transpose},
    {"Conv", op_conv},           {"BatchNormalization", op_batchnorm},
    {"Relu", op_relu},           {"Sigmoid", op_sigmoid},
    {"Resize", op_resize},       {"Pad", op_pad},
};

static int bind_inputs(lower_ctx *c, int batch)
{
    const ls_onnx_model *m = c->m;
    ls_graph *g = c->b.g;
    if (m->n_inputs > LS_NN_MAX_INPUTS || m->n_outputs > LS_NN_MAX_INPUTS)
        return fail(c, LS_ERR_UNSUPPORTED, "%d inputs and %d outputs (at most %d each)",
                    m->n_inputs, m->n_outputs, LS_NN_MAX_INPUTS);
    const Onnx__GraphProto *gp = m->proto->graph;
    for (int i = 0; i < m->n_inputs; i++) {
        const ls_onnx_io *io = &m->inputs[i];
        if (io->ndim < 1)
            return fail(c, LS_ERR_UNSUPPORTED, "input '%s' has no declared shape", io->name);
        for (size_t k = 0; k < gp->n_input; k++) {
            const Onnx__TypeProto *ty = gp->input[k]->type;
            if (gp->input[k]->name && !strcmp(gp->input[k]->name, io->name) &&
                ty->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
                return fail(c, LS_ERR_UNSUPPORTED,
                            "input '%s' has element type %d (float32 expected)", io->name,
                            ty->tensor_type->elem_type);
        }
        int64_t dims[LS_NN_MAX_DIMS];
        for (int d = 0; d < io->ndim; d++) {
            dims[d] = io->dims[d];
            if (d == 0 && dims[0] < 0) dims[0] = batch;
            else if (d == 0 && dims[0] != batch)
                return fail(c, LS_ERR_INVALID_ARG,
                            "input '%s' has a fixed batch of %lld: the model cannot run batch %d",
                            io->name, (long long)dims[0], batch);
            else if (dims[d] < 0)
                return fail(
                    c, LS_ERR_UNSUPPORTED,
                    "input '%s' has a symbolic size on axis %d: only the batch axis may vary",
                    io->name, d);
        }
        if (bounded_count(io->ndim, dims, 1) < 0)
            return fail(c, LS_ERR_UNSUPPORTED, "input '%s' has an empty or too large shape",
                        io->name);
        int v = ls_builder_add_value(&c->b, io->name, io->ndim, dims, NULL, c->err);
        if (v < 0) return v;
        sym *s = bind(c, io->name, SYM_ACT);
        if (!s) return c->err->code;
        s->value = v;
        g->inputs[g->n_inputs++] = v;
    }
    return LS_OK;
}

static int bind_outputs(lower_ctx *c)
{
    ls_graph *g = c->b.g;
    for (int i = 0; i < c->m->n_outputs; i++) {
        const ls_onnx_io *io = &c->m->outputs[i];
        sym *s = lookup(c, io->name);
        if (!s) return fail(c, LS_ERR_FORMAT, "output '%s' is produced by no node", io->name);
        if (s->kind != SYM_ACT)
            return fail(c, LS_ERR_UNSUPPORTED, "output '%s' is a constant", io->name);
        ls_value *v = &g->values[s->value];
        for (int k = 0; k < g->n_inputs; k++)
            if (g->inputs[k] == s->value)
                return fail(c, LS_ERR_UNSUPPORTED, "output '%s' is an input", io->name);
        /* A declared shape must agree with the inferred one (batch axis aside). */
        for (int d = 0; io->ndim == v->ndim && d < v->ndim; d++)
            if (d > 0 && io->dims[d] > 0 && io->dims[d] != v->dims[d])
                return fail(c, LS_ERR_FORMAT, "output '%s' is declared with size %lld on axis %d, "
                                              "computed %lld",
                            io->name, (long long)io->dims[d], d, (long long)v->dims[d]);
        if (io->ndim >= 0 && io->ndim != v->ndim)
            return fail(c, LS_ERR_FORMAT, "output '%s' is declared with rank %d, computed %d",
                        io->name, io->ndim, v->ndim);
        if (strcmp(v->name, io->name)) { /* reached through Identity: take the output's name */
            char *name = strdup(io->name);
            if (!name) return fail(c, LS_ERR_NOMEM, "out of memory");
            free(v->name);
            v->name = name;
        }
        g->outputs[g->n_outputs++] = s->value;
    }
    return LS_OK;
}

static int lower_nodes(lower_ctx *c)
{
    const Onnx__GraphProto *gp = c->m->proto->graph;
    char label[64];
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        c->node = n;
        c->label = ls_onnx_node_label(n, (int)i, label, sizeof label);
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
            return fail(c, LS_ERR_UNSUPPORTED, "operator domain '%s' is not supported", n->domain);
        const op_entry *e = NULL;
        for (size_t k = 0; k < sizeof op_table / sizeof op_table[0]; k++)
            if (!strcmp(op_table[k].type, n->op_type)) e = &op_table[k];
        if (!e) return fail(c, LS_ERR_UNSUPPORTED, "operator '%s' is not supported", n->op_type);
        int rc = check_single_output(c);
        if (!rc) rc = e->lower(c);
        if (rc) return rc;
    }
    c->node = NULL;
    return LS_OK;
}

static void ctx_free(lower_ctx *c)
{
    for (int i = 0; i < c->n_syms; i++)
        if (c->syms[i].kind == SYM_CONST) ls_tensor_free(&c->syms[i].t);
    free(c->syms);
    free(c->table);
}

static int build(const ls_onnx_model *m, int batch, int optimize, ls_graph **out, ls_error *err)
{
    ls_error local;
    if (!err) err = &local; /* the context reads back codes from it */
    *out = NULL;
    if (!m || batch < 1)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "bad model or batch %d", batch);
    if (m->opset < LS_ONNX_MIN_OPSET || m->opset > LS_ONNX_MAX_OPSET)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "opset %d is not supported (%d to %d are)",
                            m->opset, LS_ONNX_MIN_OPSET, LS_ONNX_MAX_OPSET);
    lower_ctx c = {.m = m, .err = err};
    const Onnx__GraphProto *gp = m->proto->graph;
    size_t names = (size_t)m->n_init + (size_t)m->n_inputs;
    for (size_t i = 0; i < gp->n_node; i++) names += gp->node[i]->n_output;
    size_t tcap = 16;
    while (tcap < 2 * names) tcap *= 2;
    c.cap_syms = (int)names;
    c.syms = calloc(names + 1, sizeof *c.syms);
    c.table = calloc(tcap, sizeof *c.table);
    c.table_mask = tcap - 1;
    int rc = (c.syms && c.table) ? ls_builder_init(&c.b, batch, err)
                                 : ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < m->n_init; i++) {
        sym *s = bind(&c, m->init_names[i], SYM_CONST);
        if (!s) rc = err->code;
        else {
            s->t = m->inits[i];
            s->t.owned = NULL; /* the model owns it */
        }
    }
    if (!rc) rc = bind_inputs(&c, batch);
    if (!rc) rc = lower_nodes(&c);
    if (!rc) rc = bind_outputs(&c);
    ctx_free(&c);
    if (!rc) ls_graph_relink(c.b.g, NULL);
    if (!rc && optimize) rc = ls_graph_optimize(&c.b, err);
    if (rc) {
        ls_graph_destroy(c.b.g);
        return rc;
    }
    *out = c.b.g;
    return LS_OK;
}

int ls_graph_build(const ls_onnx_model *m, int batch, ls_graph **out, ls_error *err)
{
    return build(m, batch, 1, out, err);
}

int ls_graph_build_unoptimized(const ls_onnx_model *m, int batch, ls_graph **out, ls_error *err)
{
    return build(m, batch, 0, out, err);
}
