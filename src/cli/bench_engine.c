/* bench_engine.c - `lipsync bench engine MODEL.onnx`: the engine's own
 * speed (median ms per run and per item, GFLOP/s), per-step profiles, and a
 * line-protocol server that bench/run.sh drives to interleave our runs with
 * ONNX Runtime's in one process pair. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "nn/engine.h"
#include "nn/lower.h"
#include "nn/onnx.h"
#include "nn/quant.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: lipsync bench engine MODEL.onnx [--batch B] [--threads T] [--precision fp32|bf16|int8]\n"
        "                            [--layout auto|any|blocked|nhwc|mixed]\n"
        "                            [--warmup W] [--runs R] [--profile] [--describe] [--serve]\n\n"
        "Times the engine on seeded random inputs: W warm-up runs (default 2), then R\n"
        "timed runs (default 10); prints the median per run and per item and GFLOP/s\n"
        "(2 x conv multiply-adds / median). --profile adds the mean time of every step\n"
        "and GFLOP/s per conv class (1x1, fused 1x1+depthwise, depthwise, dense).\n"
        "--layout: how activation layouts are chosen (default auto: the measured-faster\n"
        "of any, oneDNN's choice per conv, and blocked, nChw16c/nChw8c, for this\n"
        "precision and CPU).\n"
        "--precision int8 calibrates on the first item of those inputs (one run of the\n"
        "reference executor).\n"
        "--serve prints the graph inputs (`input NAME d0,d1,...`) and `ready`, then\n"
        "answers each stdin line `run` with `ms <time of one run>` until `quit`.\n");
}

typedef struct bench_opts {
    const char *model;
    int batch, threads, warmup, runs, profile, describe, serve;
    ls_precision prec;
    ls_layout_policy layout;
} bench_opts;

/* 0: parsed; 1: --help printed; 2: a usage error, named. */
static int parse(int argc, char **argv, bench_opts *o)
{
    enum { O_BATCH = 256, O_THREADS, O_WARMUP, O_RUNS, O_PREC, O_LAYOUT, O_PROFILE, O_DESCRIBE,
           O_SERVE };
    static const struct option opts[] = {
        {"batch", required_argument, 0, O_BATCH},     {"threads", required_argument, 0, O_THREADS},
        {"warmup", required_argument, 0, O_WARMUP},   {"runs", required_argument, 0, O_RUNS},
        {"precision", required_argument, 0, O_PREC},  {"layout", required_argument, 0, O_LAYOUT},
        {"profile", no_argument, 0, O_PROFILE},       {"describe", no_argument, 0, O_DESCRIBE},
        {"serve", no_argument, 0, O_SERVE},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    *o = (bench_opts){NULL, 1, cli_default_threads(), 2, 10, 0, 0, 0, LS_PREC_FP32,
                      LS_LAYOUT_AUTO};
    ls_error err;
    int c;
    optind = 1;
    /* The leading ':' : getopt reports, we print (cli_option_error). */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_BATCH: if ((o->batch = cli_parse_int("--batch", optarg, 1, 100000)) < 0) return 2; break;
        case O_THREADS: if ((o->threads = cli_parse_int("--threads", optarg, 1, 100000)) < 0) return 2; break;
        case O_WARMUP: if ((o->warmup = cli_parse_int("--warmup", optarg, 0, 100000)) < 0) return 2; break;
        case O_RUNS: if ((o->runs = cli_parse_int("--runs", optarg, 1, 100000)) < 0) return 2; break;
        case O_PREC: if (cli_parse_precision(optarg, &o->prec)) return 2; break;
        case O_LAYOUT:
            if (ls_layout_parse(optarg, &o->layout, &err)) {
                fprintf(stderr, "lipsync: bench engine: %s\n", err.msg);
                return 2;
            }
            break;
        case O_PROFILE: o->profile = 1; break;
        case O_DESCRIBE: o->describe = 1; break;
        case O_SERVE: o->serve = 1; break;
        case 'h': usage(stdout); return 1;
        default: return cli_option_error("bench engine", c, argv);
        }
    }
    if (optind == argc) return cli_missing("bench engine", "MODEL.onnx");
    if (optind < argc - 1) return cli_unexpected("bench engine", argv[optind + 1]);
    o->model = argv[optind];
    return 0;
}

static int serve(ls_engine_ctx *ctx, const ls_graph *g, const float *const *ins, float *const *outs)
{
    for (int k = 0; k < g->n_inputs; k++) {
        const ls_value *v = &g->values[g->inputs[k]];
        printf("input %s ", v->name ? v->name : "?");
        for (int d = 0; d < v->ndim; d++) printf("%s%lld", d ? "," : "", (long long)v->dims[d]);
        printf("\n");
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    ls_error err;
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4)) break;
        if (strncmp(line, "run", 3)) {
            printf("error unknown command\n");
        } else {
            double t0 = ls_now();
            if (ls_engine_run(ctx, ins, outs, &err)) return cli_fail("run", &err);
            printf("ms %.3f\n", (ls_now() - t0) * 1e3);
        }
        fflush(stdout);
    }
    return 0;
}

/* Observes g's model at batch 1 on item 0 of ins and applies the ranges to g
 * (*cal holds them: it must outlive the engines compiled from g). */
static int calibrate_on_first_item(const ls_onnx_model *model, ls_graph *g,
                                   const float *const *ins, ls_calib **cal, ls_error *err)
{
    ls_graph *one = NULL;
    int rc = ls_graph_build(model, 1, &one, err);
    if (!rc) rc = ls_calib_create(one, cal, err);
    if (!rc) rc = ls_calib_observe(*cal, one, ins, err);
    if (!rc) rc = ls_calib_apply(*cal, g, err);
    ls_graph_destroy(one);
    return rc;
}

int bench_engine(int argc, char **argv)
{
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : 2;
    ls_error err = {0};
    ls_onnx_model *model;
    ls_graph *g;
    if (cli_compile_model(o.model, o.batch, o.prec, o.threads, &model, &g, NULL, &err))
        return cli_fail(o.model, &err);
    int status = 1;
    ls_engine *e = NULL;
    ls_calib *cal = NULL;
    ls_engine_ctx *ctx = NULL;
    float *ins[LS_NN_MAX_INPUTS] = {0}, *outs[LS_NN_MAX_INPUTS] = {0};
    double *t = calloc((size_t)o.runs, sizeof *t);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < g->n_inputs; k++) {
        size_t n = (size_t)ls_value_count(&g->values[g->inputs[k]]);
        if (!(ins[k] = malloc(n * sizeof(float)))) goto done;
        for (size_t i = 0; i < n; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            ins[k][i] = (float)(rng >> 40) / (float)(1 << 24);
        }
    }
    /* int8 ranges from the first item of these inputs (a speed figure, not an
     * accuracy one: real models are calibrated by lipsync quantize). */
    if (o.prec == LS_PREC_INT8 &&
        calibrate_on_first_item(model, g, (const float *const *)ins, &cal, &err)) {
        cli_fail("calibration", &err);
        goto done;
    }
    if (ls_engine_create_ex(g, o.prec, o.threads, o.layout, &e, &err)) {
        cli_fail(o.model, &err);
        goto done;
    }
    for (int k = 0; k < g->n_outputs; k++)
        if (!(outs[k] = malloc((size_t)ls_value_count(&g->values[g->outputs[k]]) * sizeof(float))))
            goto done;
    if (!t || ls_engine_ctx_create(e, &ctx, &err)) {
        cli_fail("engine", &err);
        goto done;
    }
    if (o.describe) ls_engine_describe(e, stdout);
    const float *const *cin = (const float *const *)ins;
    if (o.serve) {
        status = serve(ctx, g, cin, outs);
        goto done;
    }
    for (int r = 0; r < o.warmup + o.runs; r++) {
        double t0 = ls_now();
        if (ls_engine_run(ctx, cin, outs, &err)) {
            cli_fail("run", &err);
            goto done;
        }
        if (r >= o.warmup) t[r - o.warmup] = (ls_now() - t0) * 1e3;
    }
    double med = ls_median(t, (size_t)o.runs), p10 = ls_percentile(t, (size_t)o.runs, 10),
           p90 = ls_percentile(t, (size_t)o.runs, 90);
    printf("engine model=%s batch=%d threads=%d precision=%s layout=%s runs=%d\n", o.model,
           o.batch, o.threads, ls_precision_name(o.prec), ls_layout_name(ls_engine_layout(e)),
           o.runs);
    printf("median_ms=%.2f p10_ms=%.2f p90_ms=%.2f per_item_ms=%.2f gflop=%.3f gflops=%.1f\n", med,
           p10, p90, med / o.batch, ls_engine_flops(e) / 1e9, ls_engine_flops(e) / (med * 1e6));
    if (o.profile) {
        ls_engine_ctx_profile(ctx, 1);
        for (int r = 0; r < o.runs; r++)
            if (ls_engine_run(ctx, cin, outs, &err)) {
                cli_fail("run", &err);
                goto done;
            }
        ls_engine_ctx_print_profile(ctx, stdout);
    }
    status = 0;
done:
    free(t);
    for (int k = 0; k < LS_NN_MAX_INPUTS; k++) {
        free(ins[k]);
        free(outs[k]);
    }
    ls_engine_ctx_destroy(ctx);
    ls_engine_destroy(e);
    ls_calib_destroy(cal);
    ls_graph_destroy(g);
    ls_onnx_destroy(model);
    return status;
}
