/* cmd_mel.c - `lipsync mel`: audio file -> [T,80] mel spectrogram .npy. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "audio/decode.h"
#include "audio/mel.h"
#include "audio/windows.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "core/npy.h"
#include "pipeline/features.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync mel INPUT [-o OUT.npy] [--windows WIN.npy] [--raw FMT:RATE:CH]\n"
            "\n"
            "Decodes INPUT (WAV, FLAC, Ogg, MP3, ... or raw PCM with --raw), resamples it to\n"
            "16 kHz mono and computes the models' 80-bin mel spectrogram.\n"
            "  -o, --output FILE    write the [T,80] float32 mel as .npy\n"
            "  -w, --windows FILE   write the encoder input [N,1,80,16] as .npy\n"
            "  -r, --raw SPEC       INPUT is raw PCM: s16le|f32le:RATE:CHANNELS\n"
            "Prints a summary (duration, rows, windows, value range).\n");
}

int cmd_mel(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"windows", required_argument, 0, 'w'},
                                         {"raw", required_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out_path = NULL, *win_path = NULL, *raw_text = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:w:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'w': win_path = optarg; break;
        case 'r': raw_text = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind == argc) return cli_missing("mel", "INPUT (an audio file)");
    if (optind < argc - 1) return cli_unexpected("mel", argv[optind + 1]);
    const char *in_path = argv[optind];
    ls_error err = {0};
    ls_raw_spec raw;
    if (raw_text && ls_raw_spec_parse(raw_text, &raw, &err)) return cli_fail("--raw", &err);

    ls_audio audio;
    if (ls_audio_load_16k(in_path, raw_text ? &raw : NULL, 0, &audio, &err))
        return raw_text ? cli_fail("decode", &err) : cli_fail_audio(in_path, &err);
    double t0 = ls_now();
    float *mel;
    size_t T;
    if (ls_mel_compute(audio.samples, audio.n, &mel, &T, &err)) {
        ls_audio_free(&audio);
        return cli_fail("mel", &err);
    }
    double t_mel = ls_now() - t0;
    int status = 0;
    if (out_path) {
        int64_t shape[2] = {(int64_t)T, LS_MEL_BINS};
        if (ls_npy_write_f32(out_path, mel, 2, shape, &err)) status = cli_fail("write", &err);
    }
    size_t n_win = ls_mel_window_count(T);
    if (!status && win_path) {
        float *win = n_win ? malloc(n_win * LS_MEL_BINS * LS_MEL_WINDOW * sizeof *win) : NULL;
        size_t got;
        if (!win && n_win) {
            status = cli_fail("windows", &(ls_error){LS_ERR_NOMEM, "out of memory"});
        } else if (ls_mel_windows(mel, T, win, n_win, &got, &err)) {
            status = cli_fail("windows", &err);
        } else {
            int64_t shape[4] = {(int64_t)got, 1, LS_MEL_BINS, LS_MEL_WINDOW};
            if (ls_npy_write_f32(win_path, win, 4, shape, &err)) status = cli_fail("write", &err);
        }
        free(win);
    }
    if (!status) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        for (size_t i = 0; i < T * LS_MEL_BINS; i++) {
            lo = mel[i] < lo ? mel[i] : lo;
            hi = mel[i] > hi ? mel[i] : hi;
            sum += mel[i];
        }
        double secs = (double)audio.n / LS_AUDIO_MODEL_RATE;
        printf("audio: %s, %.3f s at 16 kHz (%zu samples)\n", in_path, secs, audio.n);
        printf("mel: %zu rows x %d bins, min %.4f max %.4f mean %.4f\n", T, LS_MEL_BINS, lo, hi,
               T ? sum / (double)(T * LS_MEL_BINS) : 0.0);
        /* render makes N+2 frames from N windows: say so, with the reason,
         * rather than print a frame count that render does not match. */
        printf("mel windows (encoder inputs, %d per second): %zu\n", LS_VIDEO_FPS, n_win);
        printf("video frames (what render makes): %lld = windows + 2: the features repeat "
               "the first and last window (as SyncTalk_2D's inference does)\n",
               (long long)ls_feature_frame_count((int64_t)n_win));
        printf("mel time: %.2f ms (%.0fx real time)\n", t_mel * 1e3,
               t_mel > 0 ? secs / t_mel : 0.0);
        if (out_path) printf("wrote %s\n", out_path);
        if (win_path && n_win) printf("wrote %s\n", win_path);
    }
    free(mel);
    ls_audio_free(&audio);
    return status;
}
