/* cmd_bench.c - `lipsync bench NAME`: dispatches to the benchmarks. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const cli_command benches[] = {
    {"pipeline", "end-to-end fps vs engine-only fps on a model directory", bench_pipeline},
    {"mel", "mel spectrogram real-time factor, one thread, 60 s of audio", bench_mel},
    {"engine", "the neural engine on an ONNX model: median ms, GFLOP/s", bench_engine},
    {"image", "model input + composite + JPEG per 1280x720 frame, 1-2 threads", bench_image},
    {"serve", "N concurrent streaming clients on loopback: fps, latencies", bench_serve},
};
#define N_BENCHES (sizeof benches / sizeof benches[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: lipsync bench NAME [ARGS...]\n\nbenchmarks:\n");
    for (size_t i = 0; i < N_BENCHES; i++)
        fprintf(out, "  %-10s %s\n", benches[i].name, benches[i].summary);
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
