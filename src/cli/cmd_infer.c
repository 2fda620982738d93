/* cmd_infer.c - `lipsync infer MODEL.onnx NAME=in.npy ... -o out.npy`:
 * runs a model on .npy inputs with the oneDNN engine (or the reference
 * executor), optionally timing repeated runs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/npy.h"
#include "nn/engine.h"
#include "nn/lower.h"
#include "nn/onnx.h"
#include "nn/ref.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync infer MODEL.onnx [NAME=]IN.npy ... -o OUT.npy [-o OUT2.npy ...]\n"
            "                     [--batch B] [--threads T] [--repeat R] [--precision fp32|bf16]\n"
            "                     [--reference] [--describe]\n\n"
            "Runs the model on the inputs and writes its outputs (NCHW float32 .npy).\n"
            "NAME= binds a file to the graph input of that name; a bare file goes to the\n"
            "unbound input whose shape (past the batch axis) it matches.\n"
            "  --batch B      tile the inputs along axis 0 to B items (default: their batch)\n"
            "  --threads T    threads for the run (default: all online CPUs)\n"
            "  --repeat R     after one warm-up run, time R runs; last line median_ms=<ms>\n"
            "  --precision P  fp32 (default) or bf16 (bf16 weights and activations)\n"
            "  --reference    use the plain C reference executor instead of the engine\n"
            "  --describe     print the engine's compiled plan\n");
}

int cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cli_parse_precision(const char *text, ls_precision *out)
{
    ls_error err;
    if (ls_precision_parse(text, out, &err)) {
        fprintf(stderr, "lipsync: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int cli_compile_model(const char *path, int batch, ls_precision prec, int threads,
                      ls_onnx_model **model, ls_graph **graph, ls_engine **engine, ls_error *err)
{
    *model = NULL;
    *graph = NULL;
    if (engine) *engine = NULL;
    int rc = ls_onnx_load(path, model, err);
    if (!rc) rc = ls_graph_build(*model, batch, graph, err);
    if (!rc && engine) rc = ls_engine_create(*graph, prec, threads, engine, err);
    if (rc) {
        ls_graph_destroy(*graph);
        ls_onnx_destroy(*model);
        *graph = NULL;
        *model = NULL;
    }
    return rc;
}

typedef struct infer_input {
    const char *name; /* NULL for a bare file */
    const char *path;
    ls_npy a;
    int slot; /* graph input index it feeds */
} infer_input;

static int item_matches(const ls_npy *a, const ls_value *v)
{
    if (a->ndim != v->ndim) return 0;
    for (int d = 1; d < v->ndim; d++)
        if (a->shape[d] != v->dims[d]) return 0;
    return 1;
}

/* "name [d0,d1,...], ..." of the graph's inputs, for a file that binds to none:
 * the user needs the names (and shapes) the graph does have. */
static void input_names(const ls_graph *g, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < g->n_inputs && n < cap; k++) {
        const ls_value *v = &g->values[g->inputs[k]];
        n += (size_t)snprintf(buf + n, cap - n, "%s%s [", k ? ", " : "", v->name ? v->name : "?");
        for (int d = 0; d < v->ndim && n < cap; d++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? "," : "", (long long)v->dims[d]);
        if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "]");
    }
}

/* Binds every file to a graph input: by name first, then bare files by shape. */
static int bind_inputs(const ls_graph *g, infer_input *in, int n, ls_error *err)
{
    int used[LS_NN_MAX_INPUTS] = {0};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            if ((pass == 0) != (in[i].name != NULL)) continue;
            in[i].slot = -1;
            for (int k = 0; k < g->n_inputs && in[i].slot < 0; k++) {
                const ls_value *v = &g->values[g->inputs[k]];
                if (used[k]) continue;
                if (in[i].name ? (v->name && !strcmp(v->name, in[i].name))
                               : item_matches(&in[i].a, v))
                    in[i].slot = k;
            }
            if (in[i].slot < 0) {
                char names[512];
                input_names(g, names, sizeof names);
                if (in[i].name)
                    return ls_error_set(err, LS_ERR_NOT_FOUND,
                                        "%s: no graph input named '%s' (inputs: %s)", in[i].path,
                                        in[i].name, names);
                return ls_error_set(err, LS_ERR_NOT_FOUND,
                                    "%s: no unbound graph input matches its shape (inputs: %s)",
                                    in[i].path, names);
            }
            used[in[i].slot] = 1;
        }
    for (int k = 0; k < g->n_inputs; k++)
        if (!used[k])
            return ls_error_set(err, LS_ERR_NOT_FOUND, "graph input '%s' has no file",
                                g->values[g->inputs[k]].name ? g->values[g->inputs[k]].name : "?");
    for (int i = 0; i < n; i++)
        if (!item_matches(&in[i].a, &g->values[g->inputs[in[i].slot]]))
            return ls_error_set(err, LS_ERR_FORMAT, "%s: shape does not fit graph input '%s'",
                                in[i].path, g->values[g->inputs[in[i].slot]].name);
    return LS_OK;
}

/* Item i of the tiled batch is item i % n of the file. */
static float *tile(const ls_npy *a, int64_t batch)
{
    size_t item = a->count / (size_t)a->shape[0];
    float *p = malloc((size_t)batch * item * sizeof *p);
    if (!p) return NULL;
    for (int64_t b = 0; b < batch; b++)
        memcpy(p + (size_t)b * item, a->data + (size_t)(b % a->shape[0]) * item, item * sizeof *p);
    return p;
}

typedef struct infer_opts {
    const char *model;
    const char *outs[LS_NN_MAX_INPUTS];
    int n_outs, batch, threads, repeat, reference, describe;
    ls_precision prec;
} infer_opts;

/* 0: parsed; 1: --help printed; 2: a usage error, named. */
static int parse_args(int argc, char **argv, infer_opts *o, infer_input *in, int *n_in)
{
    enum { O_BATCH = 256, O_THREADS, O_REPEAT, O_PREC, O_REFERENCE, O_DESCRIBE };
    static const struct option opts[] = {
        {"batch", required_argument, 0, O_BATCH},    {"threads", required_argument, 0, O_THREADS},
        {"repeat", required_argument, 0, O_REPEAT},  {"precision", required_argument, 0, O_PREC},
        {"reference", no_argument, 0, O_REFERENCE}, {"describe", no_argument, 0, O_DESCRIBE},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->threads = cli_default_threads();
    *n_in = 0;
    int c;
    optind = 1;
    /* The leading ':' : getopt reports, we print (cli_option_error). */
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (o->n_outs == LS_NN_MAX_INPUTS) {
                fprintf(stderr, "lipsync: infer: more than %d -o\n", LS_NN_MAX_INPUTS);
                return 2;
            }
            o->outs[o->n_outs++] = optarg;
            break;
        case O_BATCH: if ((o->batch = cli_parse_int("--batch", optarg, 1, 4096)) < 0) return 2; break;
        case O_THREADS: if ((o->threads = cli_parse_int("--threads", optarg, 1, 1024)) < 0) return 2; break;
        case O_REPEAT: if ((o->repeat = cli_parse_int("--repeat", optarg, 1, 100000)) < 0) return 2; break;
        case O_PREC:
            if (cli_parse_precision(optarg, &o->prec)) return 2;
            if (o->prec == LS_PREC_INT8) {
                fprintf(stderr, "lipsync: infer runs fp32 or bf16; int8 needs a calibrated model "
                                "directory (lipsync quantize, then render or serve)\n");
                return 2;
            }
            break;
        case O_REFERENCE: o->reference = 1; break;
        case O_DESCRIBE: o->describe = 1; break;
        case 'h': usage(stdout); return 1;
        case ':':
            if (optopt == 'o') return cli_missing("infer", "the file after -o");
            return cli_option_error("infer", c, argv);
        default: return cli_option_error("infer", c, argv);
        }
    }
    /* getopt_long put the operands last: MODEL.onnx, then the input files. */
    if (optind == argc) return cli_missing("infer", "MODEL.onnx");
    o->model = argv[optind++];
    for (; optind < argc; optind++) {
        if (*n_in == LS_NN_MAX_INPUTS) {
            fprintf(stderr, "lipsync: infer: more than %d input files\n", LS_NN_MAX_INPUTS);
            return 2;
        }
        const char *a = argv[optind], *eq = strchr(a, '=');
        infer_input *x = &in[(*n_in)++];
        memset(x, 0, sizeof *x);
        x->name = eq ? strndup(a, (size_t)(eq - a)) : NULL;
        x->path = eq ? eq + 1 : a;
    }
    if (!*n_in) return cli_missing("infer", "the input files ([NAME=]IN.npy ...)");
    if (!o->n_outs) return cli_missing("infer", "-o OUT.npy");
    return 0;
}

static int run_infer(const infer_opts *o, infer_input *in, int n_in)
{
    ls_error err = {0};
    for (int i = 0; i < n_in; i++)
        if (ls_npy_read(in[i].path, &in[i].a, &err) || in[i].a.ndim < 1 || in[i].a.shape[0] < 1) {
            if (!err.msg[0]) ls_error_set(&err, LS_ERR_FORMAT, "%s: empty array", in[i].path);
            return cli_fail("reading input", &err);
        }
    int64_t batch = o->batch ? o->batch : in[0].a.shape[0];
    for (int i = 0; !o->batch && i < n_in; i++)
        if (in[i].a.shape[0] != batch) {
            fprintf(stderr, "lipsync: inputs differ in batch (%lld vs %lld); use --batch\n",
                    (long long)in[i].a.shape[0], (long long)batch);
            return 1;
        }
    ls_onnx_model *model;
    ls_graph *g;
    ls_engine *e = NULL;
    if (cli_compile_model(o->model, (int)batch, o->prec, o->threads, &model, &g,
                          o->reference ? NULL : &e, &err))
        return cli_fail(o->model, &err);
    int status = 1;
    ls_engine_ctx *ctx = NULL;
    const float *ins[LS_NN_MAX_INPUTS] = {0};
    float *outs[LS_NN_MAX_INPUTS] = {0};
    double *times = NULL;
    if (o->n_outs > g->n_outputs) {
        fprintf(stderr, "lipsync: the model has %d outputs, %d -o given\n", g->n_outputs,
                o->n_outs);
        goto done;
    }
    if (bind_inputs(g, in, n_in, &err)) {
        cli_fail("binding inputs", &err);
        goto done;
    }
    for (int i = 0; i < n_in; i++)
        if (!(ins[in[i].slot] = tile(&in[i].a, batch))) goto done;
    for (int k = 0; k < g->n_outputs; k++)
        if (!(outs[k] = malloc((size_t)ls_value_count(&g->values[g->outputs[k]]) * sizeof(float))))
            goto done;
    if (e) {
        if (o->describe) ls_engine_describe(e, stdout);
        if (ls_engine_ctx_create(e, &ctx, &err)) {
            cli_fail("engine", &err);
            goto done;
        }
    }
    int runs = o->repeat ? o->repeat + 1 : 1;
    times = calloc((size_t)runs, sizeof *times);
    for (int r = 0; times && r < runs; r++) {
        double t0 = ls_now();
        int rc = e ? ls_engine_run(ctx, ins, outs, &err) : ls_ref_run(g, ins, outs, &err);
        times[r] = (ls_now() - t0) * 1e3;
        if (rc) {
            cli_fail("run", &err);
            goto done;
        }
    }
    for (int k = 0; k < o->n_outs; k++) {
        const ls_value *v = &g->values[g->outputs[k]];
        if (ls_npy_write_f32(o->outs[k], outs[k], v->ndim, v->dims, &err)) {
            cli_fail("writing output", &err);
            goto done;
        }
    }
    if (o->repeat) {
        printf("model=%s batch=%lld threads=%d precision=%s executor=%s runs=%d\n", o->model,
               (long long)batch, o->threads, ls_precision_name(o->prec), e ? "engine" : "reference",
               o->repeat);
        printf("median_ms=%.3f\n", ls_median(times + 1, (size_t)o->repeat));
    }
    status = 0;
done:
    free(times);
    for (int k = 0; k < LS_NN_MAX_INPUTS; k++) {
        free((void *)ins[k]);
        free(outs[k]);
    }
    ls_engine_ctx_destroy(ctx);
    ls_engine_destroy(e);
    ls_graph_destroy(g);
    ls_onnx_destroy(model);
    return status;
}

int cmd_infer(int argc, char **argv)
{
    infer_opts o;
    infer_input in[LS_NN_MAX_INPUTS];
    int n_in = 0;
    int rc = parse_args(argc, argv, &o, in, &n_in);
    int status = rc == 1 ? 0 : rc ? 2 : run_infer(&o, in, n_in);
    for (int i = 0; i < n_in; i++) {
        free((void *)in[i].name);
        ls_npy_free(&in[i].a);
    }
    return status;
}
