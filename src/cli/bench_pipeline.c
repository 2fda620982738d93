/* bench_pipeline.c - `lipsync bench pipeline MODEL_DIR`.
 *
 * End-to-end frames per second of the streaming pipeline (JPEG frames out)
 * at batch 1, 8 and 25, next to the engine alone (UNet batch + encoder
 * batch, the work the pipeline cannot avoid) measured in the same run,
 * interleaved, medians over the runs. The ratio says how much of the rest
 * (mel, model inputs, compositing, JPEG) the pipeline hides. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "pipeline/model.h"
#include "pipeline/model_internal.h"
#include "pipeline/drive.h"
#include "pipeline/session.h"

typedef struct engine_bufs {
    float *in[LS_NN_MAX_INPUTS], *out[LS_NN_MAX_INPUTS];
    int n_in, n_out;
} engine_bufs;

static int bufs_alloc(engine_bufs *b, const ls_graph *g)
{
    memset(b, 0, sizeof *b);
    b->n_in = g->n_inputs;
    b->n_out = g->n_outputs;
    for (int i = 0; i < g->n_inputs; i++)
        if (!(b->in[i] = calloc((size_t)ls_value_count(&g->values[g->inputs[i]]), sizeof(float)))) return -1;
    for (int i = 0; i < g->n_outputs; i++)
        if (!(b->out[i] = calloc((size_t)ls_value_count(&g->values[g->outputs[i]]), sizeof(float)))) return -1;
    return 0;
}

static void bufs_free(engine_bufs *b)
{
    for (int i = 0; i < b->n_in; i++) free(b->in[i]);
    for (int i = 0; i < b->n_out; i++) free(b->out[i]);
}

/* Speech-like audio: harmonics of a gliding pitch, syllable-rate envelope. */
static int count_frame(void *ctx, const ls_frame *f, ls_error *err)
{
    (void)f;
    (void)err;
    ++*(int64_t *)ctx;
    return LS_OK;
}

static float *bench_audio(size_t n)
{
    float *x = malloc(n * sizeof *x);
    if (!x) return NULL;
    double phase = 0;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / 16000.0;
        phase += 2 * 3.141592653589793 * (120 + 30 * sin(2 * 3.14159 * 1.3 * t)) / 16000.0;
        double v = sin(phase) + 0.5 * sin(2 * phase);
        x[i] = (float)(0.25 * v * (0.5 + 0.5 * sin(2 * 3.14159 * 4.0 * t)));
    }
    return x;
}

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: lipsync bench pipeline MODEL_DIR [--batches 1,8,25] [--runs N] [--seconds S]\n"
            "                                        [--threads T] [--precision fp32|bf16|int8]\n"
            "End-to-end fps (audio in, JPEG frames out) against engine-only fps (UNet +\n"
            "encoder batches alone), interleaved in one run, medians over N runs (default 3)\n"
            "of S seconds of audio (default 4).\n");
    return code;
}

int bench_pipeline(int argc, char **argv)
{
    const char *dir = NULL;
    int batches[8] = {1, 8, 25}, n_batches = 3, runs = 3, seconds = 4;
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    ls_precision precision = LS_PREC_FP32;
    ls_error err = {0};
    enum { O_BATCHES = 256, O_RUNS, O_SECONDS, O_THREADS, O_PREC };
    static const struct option opts[] = {
        {"batches", required_argument, 0, O_BATCHES}, {"runs", required_argument, 0, O_RUNS},
        {"seconds", required_argument, 0, O_SECONDS}, {"threads", required_argument, 0, O_THREADS},
        {"precision", required_argument, 0, O_PREC},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    /* The leading ':' : getopt reports, we print (cli_option_error). */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_BATCHES:
            if ((n_batches = cli_parse_int_list("--batches", optarg, 1, 64, batches, 8)) < 0) return 2;
            break;
        case O_RUNS: if ((runs = cli_parse_int("--runs", optarg, 1, 100)) < 0) return 2; break;
        case O_SECONDS: if ((seconds = cli_parse_int("--seconds", optarg, 1, 600)) < 0) return 2; break;
        case O_THREADS: if ((threads = cli_parse_int("--threads", optarg, 1, 256)) < 0) return 2; break;
        case O_PREC:
            if (ls_precision_parse(optarg, &precision, &err)) return cli_fail("--precision", &err);
            break;
        case 'h': return usage(stdout, 0);
        default: return cli_option_error("bench pipeline", c, argv);
        }
    }
    if (optind == argc) return cli_missing("bench pipeline", "MODEL_DIR");
    if (optind < argc - 1) return cli_unexpected("bench pipeline", argv[optind + 1]);
    dir = argv[optind];
    if (!dir || n_batches == 0) return usage(stderr, 2);
    ls_pool *pool;
    ls_model *model = NULL;
    ls_model_options mo = {.engine_threads = threads, .precision = precision};
    if (ls_pool_create(threads, &pool, &err) || ls_model_load(dir, &mo, pool, &model, &err)) {
        ls_pool_destroy(pool);
        return cli_fail("bench pipeline", &err);
    }
    size_t n = (size_t)seconds * 16000;
    float *audio = bench_audio(n);
    double *e2e = calloc((size_t)runs, sizeof(double)), *eng = calloc((size_t)runs, sizeof(double));
    int status = audio && e2e && eng ? 0 : cli_fail("bench pipeline", &(ls_error){LS_ERR_NOMEM, "out of memory"});
    printf("pipeline on %s: %d s of audio, %d threads, %s, median of %d runs\n", dir, seconds,
           threads, ls_precision_name(precision), runs);
    printf("batch  e2e fps  engine fps  e2e/engine | ms/frame: mel  encoder  input   unet  paint\n");
    for (int bi = 0; bi < n_batches && !status; bi++) {
        int B = batches[bi];
        const ls_model_engines *e;
        ls_engine_ctx *uc = NULL, *ec = NULL;
        engine_bufs ub, eb;
        if (ls_model_engines_get(model, B, threads, &e, &err) || ls_engine_ctx_create(e->unet, &uc, &err) ||
            ls_engine_ctx_create(e->enc, &ec, &err) || bufs_alloc(&ub, e->unet_graph) ||
            bufs_alloc(&eb, e->enc_graph)) {
            status = cli_fail("bench pipeline", &err);
            ls_engine_ctx_destroy(uc);
            ls_engine_ctx_destroy(ec);
            break;
        }
        ls_stage_times last = {0};
        int64_t frames = 0;
        for (int r = -1; r < runs && !status; r++) { /* run -1 warms up */
            /* Engine only: one UNet batch and one encoder batch. */
            double t0 = ls_now();
            if (ls_engine_run(uc, (const float *const *)ub.in, ub.out, &err) ||
                ls_engine_run(ec, (const float *const *)eb.in, eb.out, &err)) {
                status = cli_fail("engine", &err);
                break;
            }
            double t_engine = ls_now() - t0;
            /* End to end, audio fed in 40 ms chunks as a live client sends. */
            ls_session *s;
            ls_session_options so = {.batch = B};
            if (ls_session_create(model, pool, &so, &s, &err)) {
                status = cli_fail("session", &err);
                break;
            }
            frames = 0;
            t0 = ls_now();
            ls_drive_options dopt = {.chunk = 640, .finish = 1};
            ls_drive_sink sink = {.frame = count_frame, .ctx = &frames};
            if (ls_session_drive(s, audio, n, &dopt, &sink, &err))
                status = cli_fail("session", &err);
            double t_e2e = ls_now() - t0;
            ls_session_get_times(s, &last);
            ls_session_destroy(s);
            if (r >= 0) {
                e2e[r] = (double)frames / t_e2e;
                eng[r] = B / t_engine;
            }
        }
        if (!status) {
            double fe = ls_median(e2e, (size_t)runs), fg = ls_median(eng, (size_t)runs);
            double per = last.frames ? 1e3 / (double)last.frames : 0;
            printf("%5d %8.2f %11.2f %10.1f%% | %13.2f %8.2f %6.2f %6.2f %6.2f\n", B, fe, fg,
                   100 * fe / fg, last.mel * per, last.encoder * per, last.input * per,
                   last.unet * per, (last.composite + last.encode) * per);
        }
        ls_engine_ctx_destroy(uc);
        ls_engine_ctx_destroy(ec);
        bufs_free(&ub);
        bufs_free(&eb);
    }
    free(audio);
    free(e2e);
    free(eng);
    ls_model_release(model);
    ls_pool_destroy(pool);
    return status;
}
