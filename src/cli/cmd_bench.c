/* cmd_bench.c - `lipsync bench NAME`: dispatches to the benchmarks. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct bench_entry {
    const char *name, *args, *summary;
    int (*run)(int argc, char **argv);
} bench_entry;

/* The arguments of each benchmark, as its own --help gives them: `lipsync
 * bench --help` is where people look for what to type (test_cli checks that
 * every option of a benchmark's --help is listed here). */
static const bench_entry benches[] = {
    {"pipeline",
     "MODEL_DIR [--batches 1,8,25] [--runs N] [--seconds S] [--threads T]\n"
     "[--precision fp32|bf16|int8]",
     "end-to-end fps vs engine-only fps on a model directory", bench_pipeline},
    {"mel", "[--runs N] [--seconds S]",
     "mel spectrogram real-time factor, one thread, 60 s of audio", bench_mel},
    {"engine",
     "MODEL.onnx [--batch B] [--threads T] [--precision fp32|bf16|int8]\n"
     "[--layout auto|any|blocked|nhwc|mixed]\n"
     "[--warmup W] [--runs R] [--profile] [--describe] [--serve]",
     "the neural engine on an ONNX model: median ms, GFLOP/s", bench_engine},
    {"image", "[--runs N] [--quality Q] [--threads T]",
     "model input + composite + JPEG per 1280x720 frame, 1-2 threads", bench_image},
    {"serve",
     "--models-root DIR --model ID [--clients 1,2,4]\n"
     "[--mode live|fast|both|batch] [--seconds S] [--audio FILE]\n"
     "[--threads T] [--batch B] [--batch-sizes 8,25]",
     "N concurrent streaming clients on loopback: fps, latencies;\n"
     "batch: POST /v1/batch walking a clip, ms per call", bench_serve},
};
#define N_BENCHES (sizeof benches / sizeof benches[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: lipsync bench NAME [ARGS...]\n\nbenchmarks:\n");
    for (size_t i = 0; i < N_BENCHES; i++) {
        fprintf(out, "  %-9s ", benches[i].name);
        /* Continuation lines of the arguments line up under their first. */
        for (const char *p = benches[i].args; *p; p++) {
            if (*p == '\n') fputs("\n            ", out);
            else fputc(*p, out);
        }
        fprintf(out, "\n            %s\n", benches[i].summary);
    }
    fprintf(out, "\n`lipsync bench NAME --help` describes one.\n");
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < N_BENCHES; i++)
        if (!strcmp(benches[i].name, argv[1])) return benches[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lipsync: unknown benchmark '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
