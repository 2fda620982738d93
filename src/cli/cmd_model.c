/* cmd_model.c - `lipsync model check DIR`: validate a model directory. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "pipeline/model.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync model check DIR\n"
            "\n"
            "Validates a model directory (model.json, the UNet and audio encoder ONNX files,\n"
            "the avatar), compiles both networks and prints what it found.\n"
            "model.json: {\"name\": ..., \"unet\": \"unet.onnx\", \"encoder\": \"audio_encoder.onnx\",\n"
            "             \"avatar\": \"avatar\", \"fps\": 25, \"batch\": 8,\n"
            "             \"unet_inputs\": {\"visual\": NAME, \"audio\": NAME}, \"encoder_input\": NAME}\n"
            "(the input names are optional: inputs are found by shape).\n");
}

int cmd_model(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) return cli_missing("model", "the subcommand: check DIR");
    if (strcmp(argv[1], "check")) {
        fprintf(stderr, "lipsync: model: unknown subcommand '%s' (check; see `lipsync model "
                        "--help`)\n", argv[1]);
        return 2;
    }
    if (argc < 3) return cli_missing("model check", "DIR");
    if (argc > 3) return cli_unexpected("model check", argv[3]);
    ls_error err = {0};
    if (ls_model_check(argv[2], stdout, &err)) return cli_fail("model check", &err);
    printf("ok\n");
    return 0;
}
