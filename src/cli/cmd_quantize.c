/* cmd_quantize.c - `lipsync quantize DIR --audio SPEECH`: calibrate a model
 * directory for int8 (pipeline/quantize.h). */
#include <getopt.h>
#include <stdio.h>

#include "audio/decode.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "pipeline/quantize.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync quantize DIR --audio SPEECH [--frames N] [--threads T]\n"
            "\n"
            "Calibrates model directory DIR for --precision int8: runs the model in float32\n"
            "on its avatar frames with SPEECH (any audio file), records the range of every\n"
            "UNet activation on N frames (default 32, at most 128) and writes DIR/int8.json.\n"
            "It then runs N other frames in int8 and in float32 and prints their difference\n"
            "per output pixel in 1/255 steps (mean and largest). Loading a model with\n"
            "precision int8 (render, serve, bench pipeline) needs this file; it names the\n"
            "unet.onnx it was measured on, so quantize again after replacing the model.\n");
}

int cmd_quantize(int argc, char **argv)
{
    enum { O_AUDIO = 256, O_FRAMES, O_THREADS };
    static const struct option opts[] = {{"audio", required_argument, 0, O_AUDIO},
                                         {"frames", required_argument, 0, O_FRAMES},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *audio_path = NULL;
    ls_quantize_options qo = {.frames = 32, .threads = cli_default_threads()};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_AUDIO: audio_path = optarg; break;
        case O_FRAMES: if ((qo.frames = cli_parse_int("--frames", optarg, 2, 128)) < 0) return 2; break;
        case O_THREADS: if ((qo.threads = cli_parse_int("--threads", optarg, 1, 1024)) < 0) return 2; break;
        case 'h': usage(stdout); return 0;
        default: return cli_option_error("quantize", c, argv);
        }
    }
    if (optind == argc) return cli_missing("quantize", "DIR");
    if (optind < argc - 1) return cli_unexpected("quantize", argv[optind + 1]);
    if (!audio_path) return cli_missing("quantize", "--audio SPEECH");
    const char *dir = argv[optind];
    ls_error err = {0};
    ls_audio audio = {0};
    if (ls_audio_load_16k(audio_path, NULL, 0, &audio, &err)) return cli_fail_audio(audio_path, &err);
    ls_quantize_report r;
    double t0 = ls_now();
    int rc = ls_model_quantize(dir, audio.samples, audio.n, &qo, &r, &err);
    ls_audio_free(&audio);
    if (rc) return cli_fail("quantize", &err);
    printf("quantize %s: %d frames calibrated, %d int8 convs; int8 vs fp32 on %d other frames: "
           "mean %.3f, max %.1f (1/255 steps); %.1f s\n",
           dir, r.calib_items, r.int8_convs, r.check_items, r.mean_err, r.max_err, ls_now() - t0);
    printf("wrote %s/int8.json\n", dir);
    return 0;
}
