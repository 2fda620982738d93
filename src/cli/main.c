/* main.c - the `lipsync` binary: a table of subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "media/log.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0"
#endif

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const cli_command commands[] = {
    {"help", "list the subcommands, or show one's help", cmd_help},
    {"version", "print the version", cmd_version},
    {"mel", "compute the 80-bin mel spectrogram of an audio file (.npy out)", cmd_mel},
    {"render", "lip-sync a model's avatar to an audio file, writing an MP4", cmd_render},
    {"model", "check a model directory", cmd_model},
    {"quantize", "calibrate a model directory for --precision int8", cmd_quantize},
    {"bench", "run a benchmark: pipeline, mel, engine, image, serve", cmd_bench},
    {"info", "describe an ONNX model: inputs, ops, parameters, MACs", cmd_info},
    {"infer", "run an ONNX model on .npy inputs (oneDNN engine)", cmd_infer},
    {"avatar", "prepare or inspect an avatar directory", cmd_avatar},
    {"croprect", "print the crop rectangle of .lms landmark files", cmd_croprect},
    {"serve", "serve the pipeline over HTTP and WebSocket", cmd_serve},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: lipsync COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`lipsync COMMAND --help` describes one command.\n");
}

static int cmd_help(int argc, char **argv)
{
    /* `lipsync help --help` is help's own help: the same list. */
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: lipsync help [COMMAND]: the list below, or COMMAND's --help\n\n");
        usage(stdout);
        return 0;
    }
    if (argc > 1) {
        const cli_command *c = find_command(argv[1]);
        if (!c) {
            fprintf(stderr, "lipsync: unknown command '%s'\n", argv[1]);
            return 2;
        }
        char *sub[] = {argv[1], "--help", NULL};
        return c->run(2, sub);
    }
    usage(stdout);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("lipsync %s\n", LS_VERSION);
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int cli_fail(const char *what, const ls_error *err)
{
    fprintf(stderr, "lipsync: %s: %s\n", what, err && err->msg[0] ? err->msg : "failed");
    return 1;
}

int cli_missing(const char *cmd, const char *what)
{
    fprintf(stderr, "lipsync: %s: missing %s (see `lipsync %s --help`)\n", cmd, what, cmd);
    return 2;
}

int cli_unexpected(const char *cmd, const char *arg)
{
    fprintf(stderr, "lipsync: %s: unexpected argument '%s' (see `lipsync %s --help`)\n", cmd, arg,
            cmd);
    return 2;
}

int cli_option_error(const char *cmd, int c, char **argv)
{
    /* A long option is the word getopt stepped past; a short one may sit
     * inside a cluster (-xv), so it is named by its letter. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char text[256];
    if (!strncmp(word, "--", 2))
        snprintf(text, sizeof text, "%.*s", (int)strcspn(word, "="), word);
    else
        snprintf(text, sizeof text, "-%c", optopt > 0 && optopt < 128 ? optopt : '?');
    if (c == ':') {
        char what[300];
        snprintf(what, sizeof what, "the value of %s", text);
        return cli_missing(cmd, what);
    }
    fprintf(stderr, "lipsync: %s: unknown option '%s' (see `lipsync %s --help`)\n", cmd, text,
            cmd);
    return 2;
}

int cli_fail_audio(const char *path, const ls_error *err)
{
    cli_fail("audio", err);
    struct stat st;
    if (err && err->code == LS_ERR_FORMAT && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size > 0)
        fprintf(stderr, "lipsync: %s has no header libsndfile knows; if it is raw PCM, give its "
                        "format: --raw s16le:RATE:CHANNELS (or f32le:RATE:CHANNELS)\n", path);
    return 1;
}

int cli_parse_int(const char *opt, const char *text, int min, int max)
{
    char *end;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || *end || end == text || v < min || v > max) {
        fprintf(stderr, "lipsync: %s wants an integer in %d..%d, got '%s'\n", opt, min, max,
                text ? text : "");
        return -1;
    }
    return (int)v;
}

int cli_parse_int_list(const char *opt, const char *text, int min, int max, int *out, int cap)
{
    char item[32];
    int n = 0;
    for (const char *p = text ? text : "";; p++) {
        size_t len = strcspn(p, ",");
        if (n == cap) {
            fprintf(stderr, "lipsync: %s takes at most %d values, got '%s'\n", opt, cap, text);
            return -1;
        }
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), p);
        if (len >= sizeof item || (out[n++] = cli_parse_int(opt, item, min, max)) < 0) {
            if (len >= sizeof item) cli_parse_int(opt, p, min, max); /* names the whole item */
            return -1;
        }
        p += len;
        if (!*p) return n;
    }
}

/* oneDNN runs on libgomp here, whose idle threads spin for a long while by
 * default. On cores shared with our own pool (and other sessions) that costs
 * up to 4x (see bench/README.md); sleeping at once costs too: a thread woken
 * for each of a run's ~90 parallel regions, after an idle gap, doubled a
 * small model's run time. So unless the user chose, idle OpenMP threads spin
 * briefly (GOMP_SPINCOUNT 100000, about a millisecond), then sleep. libgomp
 * reads these once, when it loads (before main), so the only way to set them
 * from here is to start again with them set. */
static void prefer_brief_openmp_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0 || setenv("GOMP_SPINCOUNT", "100000", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* No /proc (or exec failed): carry on with libgomp's default. */
}

int main(int argc, char **argv)
{
    prefer_brief_openmp_spin(argv);
    /* FFmpeg's own lines (encoder statistics, warnings our errors already
     * cover) stay off stderr unless a command's --verbose asks for them. */
    ls_media_set_log_level(0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return cmd_help(1, argv);
    if (!strcmp(argv[1], "--version")) return cmd_version(1, argv);
    const cli_command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "lipsync: unknown command '%s' (see `lipsync help`)\n", argv[1]);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
