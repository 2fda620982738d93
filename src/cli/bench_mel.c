/* bench_mel.c - `lipsync bench mel`: mel real-time factor on one thread.
 *
 * Whole-file and streaming (20 ms chunks, as a live session sends) over the
 * same 60 s of synthetic speech-like audio, interleaved run by run so both
 * see the same machine load; medians over the runs. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "cli/commands.h"
#include "core/clock.h"

/* Harmonics of a wandering pitch with noise: exercises every mel bin. */
static void synth_audio(float *x, size_t n)
{
    uint64_t s = 0x243f6a8885a308d3ull;
    double phase = 0;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / 16000.0;
        double f0 = 140 + 40 * sin(2 * M_PI * 0.7 * t);
        phase += 2 * M_PI * f0 / 16000.0;
        double v = 0;
        for (int h = 1; h <= 12; h++) v += sin(h * phase) / h;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v += ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.05;
        x[i] = (float)(0.2 * v * (0.6 + 0.4 * sin(2 * M_PI * 3 * t)));
    }
}

int bench_mel(int argc, char **argv)
{
    int runs = 15, seconds = 60, c;
    static const struct option opts[] = {{"runs", required_argument, 0, 'r'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': if ((runs = cli_parse_int("--runs", optarg, 1, 1000)) < 0) return 2; break;
        case 's': if ((seconds = cli_parse_int("--seconds", optarg, 1, 3600)) < 0) return 2; break;
        case 'h':
            printf("usage: lipsync bench mel [--runs N] [--seconds S]\n"
                   "Real-time factor (audio seconds per compute second) of the mel\n"
                   "spectrogram on one thread, whole-file and streamed in 20 ms chunks.\n");
            return 0;
        default: return cli_option_error("bench mel", c, argv);
        }
    }
    if (optind < argc) return cli_unexpected("bench mel", argv[optind]);
    size_t n = (size_t)seconds * 16000;
    float *x = malloc(n * sizeof *x);
    size_t rows_cap = ls_mel_rows(n);
    float *rows = malloc(rows_cap * LS_MEL_BINS * sizeof *rows);
    double *t_whole = calloc((size_t)runs, sizeof(double));
    double *t_stream = calloc((size_t)runs, sizeof(double));
    ls_error err = {0};
    ls_mel *m;
    int rc = ls_mel_create(&m, &err);
    if (rc || !x || !rows || !t_whole || !t_stream) {
        free(x); free(rows); free(t_whole); free(t_stream); ls_mel_destroy(m);
        return cli_fail("bench mel", &err);
    }
    synth_audio(x, n);
    int status = 0;
    for (int r = 0; r < runs && !status; r++) {
        float *mel;
        size_t T;
        double t0 = ls_now();
        if (ls_mel_compute(x, n, &mel, &T, &err)) status = cli_fail("mel", &err);
        t_whole[r] = ls_now() - t0;
        if (!status) free(mel);

        ls_mel_reset(m);
        size_t got, at = 0;
        t0 = ls_now();
        for (size_t off = 0; off < n && !status; off += 320) {
            size_t len = n - off < 320 ? n - off : 320;
            if (ls_mel_push(m, x + off, len, rows + at * LS_MEL_BINS, rows_cap - at, &got, &err))
                status = cli_fail("mel push", &err);
            at += got;
        }
        if (!status && ls_mel_flush(m, rows + at * LS_MEL_BINS, rows_cap - at, &got, &err))
            status = cli_fail("mel flush", &err);
        t_stream[r] = ls_now() - t0;
    }
    if (!status) {
        double mw = ls_median(t_whole, (size_t)runs), ms = ls_median(t_stream, (size_t)runs);
        printf("mel, %d s of 16 kHz audio, 1 thread, median of %d runs\n", seconds, runs);
        printf("  whole file : %8.2f ms  real-time factor %7.0fx\n", mw * 1e3, seconds / mw);
        printf("  streamed   : %8.2f ms  real-time factor %7.0fx  (20 ms chunks)\n", ms * 1e3,
               seconds / ms);
        printf("rtf=%.0f\n", seconds / mw);
    }
    ls_mel_destroy(m);
    free(x); free(rows); free(t_whole); free(t_stream);
    return status;
}
