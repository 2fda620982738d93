/* onnx.c - parsing an ONNX file and decoding its tensors. */
#include "nn/onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian; this decoder assumes a little-endian host"
#endif

/* Far more than any model we run; keeps size arithmetic clear of overflow. */
#define LS_TENSOR_MAX_ELEMS ((int64_t)1 << 36)

/* ---- tensors ---- */

void ls_tensor_free(ls_tensor *t)
{
    if (!t) return;
    free(t->owned);
    memset(t, 0, sizeof *t);
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Bytes per element in raw_data, 0 for types we cannot hold. */
static size_t raw_elem_size(int dt)
{
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    default: return 0;
    }
}

static int is_float_type(int dt)
{
    return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
           dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
           dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
           dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

/* The k-th element of `size` bytes of raw little-endian data, as bits. */
static uint64_t raw_bits(const uint8_t *p, size_t size, int64_t k)
{
    uint64_t v = 0;
    memcpy(&v, p + size * (size_t)k, size); /* little-endian host: low bytes first */
    return v;
}

/* Element k of raw data of a floating type dt. */
static double raw_get_real(const uint8_t *p, int dt, int64_t k)
{
    uint64_t b = raw_bits(p, raw_elem_size(dt), k);
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
        uint32_t u = (uint32_t)b;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
        double d;
        memcpy(&d, &b, 8);
        return d;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return half_to_float((uint16_t)b);
    default: return bf16_to_float((uint16_t)b);
    }
}

/* Element k of raw data of an integer type dt; uint64 beyond int64 sets *overflow. */
static int64_t raw_get_int(const uint8_t *p, int dt, int64_t k, int *overflow)
{
    uint64_t b = raw_bits(p, raw_elem_size(dt), k);
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        if (b > INT64_MAX) *overflow = 1;
        return (int64_t)b;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return (int32_t)(uint32_t)b;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return (int16_t)(uint16_t)b;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)(uint8_t)b;
    default: return (int64_t)b; /* int64, and unsigned types that fit */
    }
}

/* Fills t from the typed field that ONNX uses for dt (float_data,
 * double_data, int64_data, int32_data or uint64_data). */
static int decode_typed(const Onnx__TensorProto *tp, const char *what, int dt, ls_tensor *t,
                        ls_error *err)
{
    size_t n;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: n = tp->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: n = tp->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: n = tp->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: n = tp->n_uint64_data; break;
    default: n = tp->n_int32_data; break; /* int8..int32, uint8, uint16, bool, float16, bfloat16 */
    }
    if ((int64_t)n != t->count)
        return ls_error_set(err, LS_ERR_FORMAT, "tensor '%s': %zu values for %lld elements", what,
                            n, (long long)t->count);
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { /* alias the proto's array */
        t->f = tp->float_data;
        return LS_OK;
    }
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
        t->i = tp->int64_data;
        return LS_OK;
    }
    t->owned = malloc((size_t)(t->count ? t->count : 1) * 8);
    if (!t->owned) return ls_error_set(err, LS_ERR_NOMEM, "tensor '%s': out of memory", what);
    if (t->dtype == LS_DT_F32) {
        float *f = t->owned;
        for (int64_t k = 0; k < t->count; k++) {
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) f[k] = (float)tp->double_data[k];
            else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16)
                f[k] = half_to_float((uint16_t)tp->int32_data[k]);
            else f[k] = bf16_to_float((uint16_t)tp->int32_data[k]);
        }
        t->f = f;
    } else {
        int64_t *v = t->owned;
        for (int64_t k = 0; k < t->count; k++) {
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32 ||
                dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64) {
                if (tp->uint64_data[k] > INT64_MAX)
                    return ls_error_set(err, LS_ERR_RANGE, "tensor '%s': value beyond int64", what);
                v[k] = (int64_t)tp->uint64_data[k];
            } else {
                v[k] = tp->int32_data[k];
            }
        }
        t->i = v;
    }
    return LS_OK;
}

static int decode_raw(const Onnx__TensorProto *tp, const char *what, int dt, ls_tensor *t,
                      ls_error *err)
{
    size_t es = raw_elem_size(dt);
    if (tp->raw_data.len != (size_t)t->count * es)
        return ls_error_set(err, LS_ERR_FORMAT,
                            "tensor '%s': raw_data holds %zu bytes, %lld expected", what,
                            tp->raw_data.len, (long long)t->count * (long long)es);
    const uint8_t *p = tp->raw_data.data;
    /* float32 and int64 are used in place when the buffer is aligned. */
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && ((uintptr_t)p % sizeof(float)) == 0) {
        t->f = (const float *)(const void *)p;
        return LS_OK;
    }
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && ((uintptr_t)p % sizeof(int64_t)) == 0) {
        t->i = (const int64_t *)(const void *)p;
        return LS_OK;
    }
    t->owned = malloc((size_t)(t->count ? t->count : 1) * 8);
    if (!t->owned) return ls_error_set(err, LS_ERR_NOMEM, "tensor '%s': out of memory", what);
    if (t->dtype == LS_DT_F32) {
        float *f = t->owned;
        for (int64_t k = 0; k < t->count; k++) f[k] = (float)raw_get_real(p, dt, k);
        t->f = f;
    } else {
        int64_t *v = t->owned;
        int overflow = 0;
        for (int64_t k = 0; k < t->count; k++) v[k] = raw_get_int(p, dt, k, &overflow);
        if (overflow)
            return ls_error_set(err, LS_ERR_RANGE, "tensor '%s': value beyond int64", what);
        t->i = v;
    }
    return LS_OK;
}

int ls_tensor_decode(const Onnx__TensorProto *tp, const char *what, ls_tensor *t, ls_error *err)
{
    memset(t, 0, sizeof *t);
    if (tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || tp->n_external_data)
        return ls_error_set(err, LS_ERR_UNSUPPORTED,
                            "tensor '%s' keeps its data in an external file: external data is not "
                            "supported (save the model with its weights inside the .onnx file)",
                            what);
    if (tp->segment)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "tensor '%s' is segmented: not supported",
                            what);
    int dt = tp->data_type;
    if (!raw_elem_size(dt))
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "tensor '%s' has data type %d: not supported",
                            what, dt);
    if (tp->n_dims > LS_NN_MAX_DIMS)
        return ls_error_set(err, LS_ERR_UNSUPPORTED,
                            "tensor '%s' has rank %zu (at most %d supported)", what, tp->n_dims,
                            LS_NN_MAX_DIMS);
    t->dtype = is_float_type(dt) ? LS_DT_F32 : LS_DT_I64;
    t->ndim = (int)tp->n_dims;
    t->count = 1;
    for (int d = 0; d < t->ndim; d++) {
        int64_t v = tp->dims[d];
        if (v < 0 || (v > 0 && t->count > LS_TENSOR_MAX_ELEMS / v))
            return ls_error_set(err, LS_ERR_FORMAT, "tensor '%s': bad dimension %lld on axis %d",
                                what, (long long)v, d);
        t->dims[d] = v;
        t->count *= v;
    }
    int rc =
        tp->has_raw_data ? decode_raw(tp, what, dt, t, err) : decode_typed(tp, what, dt, t, err);
    if (rc) ls_tensor_free(t);
    return rc;
}

/* ---- the model ---- */

const Onnx__AttributeProto *ls_onnx_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

const char *ls_onnx_node_label(const Onnx__NodeProto *n, int index, char *buf, size_t cap)
{
    if (n->name && n->name[0]) return n->name;
    snprintf(buf, cap, "%s_%d", n->op_type ? n->op_type : "?", index);
    return buf;
}

int ls_onnx_find_init(const ls_onnx_model *m, const char *name)
{
    for (int i = 0; i < m->n_init; i++)
        if (!strcmp(m->init_names[i], name)) return i;
    return -1;
}

void ls_onnx_destroy(ls_onnx_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_init; i++) ls_tensor_free(&m->inits[i]);
    free(m->inits);
    free(m->init_names);
    free(m->inputs);
    free(m->outputs);
    if (m->proto) onnx__model_proto__free_unpacked(m->proto, NULL);
    free(m);
}

static int parse_io(const Onnx__ValueInfoProto *vi, const char *kind, ls_onnx_io *io, ls_error *err)
{
    memset(io, 0, sizeof *io);
    if (!vi->name || !vi->name[0])
        return ls_error_set(err, LS_ERR_FORMAT, "a graph %s has no name", kind);
    io->name = vi->name;
    io->ndim = -1;
    const Onnx__TypeProto *ty = vi->type;
    if (!ty || ty->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !ty->tensor_type)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "graph %s '%s' is not a tensor", kind,
                            vi->name);
    const Onnx__TensorShapeProto *sh = ty->tensor_type->shape;
    if (!sh) return LS_OK;
    if (sh->n_dim > LS_NN_MAX_DIMS)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "graph %s '%s' has rank %zu (at most %d)",
                            kind, vi->name, sh->n_dim, LS_NN_MAX_DIMS);
    io->ndim = (int)sh->n_dim;
    for (int d = 0; d < io->ndim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
        io->dims[d] = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dim->dim_value > 0)
            io->dims[d] = dim->dim_value;
        else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            io->dim_names[d] = dim->dim_param;
    }
    return LS_OK;
}

static int index_model(ls_onnx_model *m, ls_error *err)
{
    const Onnx__ModelProto *p = m->proto;
    const Onnx__GraphProto *g = p->graph;
    if (!g) return ls_error_set(err, LS_ERR_FORMAT, "the file holds no graph (not an ONNX model?)");
    m->opset = -1;
    for (size_t i = 0; i < p->n_opset_import; i++) {
        const char *dom = p->opset_import[i]->domain;
        if (!dom || !dom[0] || !strcmp(dom, "ai.onnx")) m->opset = (int)p->opset_import[i]->version;
    }
    if (m->opset < 0)
        return ls_error_set(err, LS_ERR_FORMAT, "the model declares no opset for the ONNX domain");
    for (size_t i = 0; i < g->n_node; i++)
        if (!g->node[i]->op_type || !g->node[i]->op_type[0])
            return ls_error_set(err, LS_ERR_FORMAT, "node %zu has no op_type", i);

    m->inits = calloc(g->n_initializer + 1, sizeof *m->inits);
    m->init_names = calloc(g->n_initializer + 1, sizeof *m->init_names);
    m->inputs = calloc(g->n_input + 1, sizeof *m->inputs);
    m->outputs = calloc(g->n_output + 1, sizeof *m->outputs);
    if (!m->inits || !m->init_names || !m->inputs || !m->outputs)
        return ls_error_set(err, LS_ERR_NOMEM, "out of memory indexing the model");
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        if (!tp->name || !tp->name[0])
            return ls_error_set(err, LS_ERR_FORMAT, "initializer %zu has no name", i);
        int rc = ls_tensor_decode(tp, tp->name, &m->inits[m->n_init], err);
        if (rc) {
            ls_error_prefix(err, "initializer %zu", i);
            return rc;
        }
        m->init_names[m->n_init++] = tp->name;
    }
    /* Before IR version 4, initializers were listed among the inputs too. */
    for (size_t i = 0; i < g->n_input; i++) {
        if (g->input[i]->name && ls_onnx_find_init(m, g->input[i]->name) >= 0) continue;
        int rc = parse_io(g->input[i], "input", &m->inputs[m->n_inputs], err);
        if (rc) return rc;
        m->n_inputs++;
    }
    for (size_t i = 0; i < g->n_output; i++) {
        int rc = parse_io(g->output[i], "output", &m->outputs[m->n_outputs], err);
        if (rc) return rc;
        m->n_outputs++;
    }
    if (m->n_inputs == 0 || m->n_outputs == 0)
        return ls_error_set(err, LS_ERR_FORMAT, "the graph has %d inputs and %d outputs",
                            m->n_inputs, m->n_outputs);
    return LS_OK;
}

/* protobuf-c unpacks nested messages recursively without a depth limit,
 * and ONNX nests without bound (a node's attribute holds a graph of nodes
 * with attributes...): a small file can thus exhaust the stack. This walk
 * of the wire format refuses nesting deeper than any real model has before
 * unpacking; framing errors are left for the unpacker to report. */
#define LS_ONNX_MAX_NESTING 64

static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

static int nesting_ok(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                      int depth)
{
    if (depth > LS_ONNX_MAX_NESTING) return 0;
    size_t i = 0;
    while (i < len) {
        uint64_t key, n;
        if (!read_varint(p, len, &i, &key)) return 1;
        switch (key & 7) {
        case 0:
            if (!read_varint(p, len, &i, &n)) return 1;
            break;
        case 1: i += 8; break;
        case 5: i += 4; break;
        case 2: {
            if (!read_varint(p, len, &i, &n) || n > len - i) return 1;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !nesting_ok(f->descriptor, p + i, (size_t)n, depth + 1))
                return 0;
            i += (size_t)n;
            break;
        }
        default: return 1; /* groups or garbage: the unpacker refuses them */
        }
    }
    return 1;
}

int ls_onnx_load_bytes(const uint8_t *bytes, size_t len, ls_onnx_model **out, ls_error *err)
{
    *out = NULL;
    if (!bytes && len) return ls_error_set(err, LS_ERR_INVALID_ARG, "no bytes given");
    if (len && !nesting_ok(&onnx__model_proto__descriptor, bytes, len, 0))
        return ls_error_set(err, LS_ERR_FORMAT,
                            "not a valid ONNX model: messages nested more than %d deep",
                            LS_ONNX_MAX_NESTING);
    ls_onnx_model *m = calloc(1, sizeof *m);
    if (!m) return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    m->proto = onnx__model_proto__unpack(NULL, len, bytes ? bytes : (const uint8_t *)"");
    if (!m->proto) {
        free(m);
        return ls_error_set(err, LS_ERR_FORMAT,
                            "not a valid ONNX model: the protobuf data is truncated or corrupted "
                            "(%zu bytes)",
                            len);
    }
    int rc = index_model(m, err);
    if (rc) {
        ls_onnx_destroy(m);
        return rc;
    }
    *out = m;
    return LS_OK;
}

int ls_onnx_load(const char *path, ls_onnx_model **out, ls_error *err)
{
    uint8_t *bytes;
    size_t len;
    *out = NULL;
    int rc = ls_read_file(path, &bytes, &len, err);
    if (rc) return rc;
    rc = ls_onnx_load_bytes(bytes, len, out, err);
    free(bytes);
    if (rc) ls_error_prefix(err, "%s", path);
    return rc;
}

/* ---- inspection ---- */

int ls_onnx_opset(const ls_onnx_model *m) { return m->opset; }

const char *ls_onnx_producer(const ls_onnx_model *m)
{
    return m->proto->producer_name ? m->proto->producer_name : "";
}

int ls_onnx_n_inputs(const ls_onnx_model *m) { return m->n_inputs; }
int ls_onnx_n_outputs(const ls_onnx_model *m) { return m->n_outputs; }

const ls_onnx_io *ls_onnx_input(const ls_onnx_model *m, int i)
{
    return i >= 0 && i < m->n_inputs ? &m->inputs[i] : NULL;
}

const ls_onnx_io *ls_onnx_output(const ls_onnx_model *m, int i)
{
    return i >= 0 && i < m->n_outputs ? &m->outputs[i] : NULL;
}

int ls_onnx_n_nodes(const ls_onnx_model *m) { return (int)m->proto->graph->n_node; }

const char *ls_onnx_node_op(const ls_onnx_model *m, int i)
{
    return i >= 0 && i < ls_onnx_n_nodes(m) ? m->proto->graph->node[i]->op_type : NULL;
}

int ls_onnx_fixed_batch(const ls_onnx_model *m)
{
    for (int i = 0; i < m->n_inputs; i++)
        if (m->inputs[i].ndim > 0 && m->inputs[i].dims[0] > 0) return (int)m->inputs[i].dims[0];
    return 0;
}

int64_t ls_onnx_param_count(const ls_onnx_model *m)
{
    const Onnx__GraphProto *g = m->proto->graph;
    int64_t total = 0;
    /* A tensor shared by several nodes is one set of parameters. */
    char *counted = calloc((size_t)m->n_init + 1, 1);
    if (!counted) return -1;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        size_t first = 0, last = 0; /* operand range holding learned parameters */
        if (!strcmp(n->op_type, "Conv")) first = 1, last = 2;
        else if (!strcmp(n->op_type, "BatchNormalization")) first = 1, last = 2;
        else if (!strcmp(n->op_type, "Add")) first = 0, last = 1;
        else continue;
        for (size_t k = first; k <= last && k < n->n_input; k++) {
            int t = n->input[k][0] ? ls_onnx_find_init(m, n->input[k]) : -1;
            if (t < 0 || counted[t] || m->inits[t].dtype != LS_DT_F32) continue;
            counted[t] = 1;
            total += m->inits[t].count;
        }
    }
    free(counted);
    return total;
}
