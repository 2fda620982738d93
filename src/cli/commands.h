/* commands.h - the lipsync subcommands and the helpers they share.
 *
 * Each subcommand is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * subcommand's name; it returns the process exit status (0 ok, 1 failure,
 * 2 usage error) and prints its own --help.
 */
#ifndef LS_CLI_COMMANDS_H
#define LS_CLI_COMMANDS_H

#include "core/error.h"
#include "nn/engine.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

/* Returns 1 if argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Prints "lipsync: <what>: <message>" for a failed call and returns 1. */
int cli_fail(const char *what, const ls_error *err);
/* Prints "lipsync: <cmd>: missing <what> (see `lipsync <cmd> --help`)" and
 * returns 2: a usage error names the argument it lacks. */
int cli_missing(const char *cmd, const char *what);
/* Prints "lipsync: <cmd>: unexpected argument '<arg>' (see ...)" and returns 2. */
int cli_unexpected(const char *cmd, const char *arg);
/* For getopt_long run with an optstring that starts with ':' (getopt prints
 * nothing): c is what it returned, ':' for an option without its value, '?'
 * for an unknown one. Prints "lipsync: <cmd>: missing the value of <option>"
 * or "lipsync: <cmd>: unknown option '<option>'" (see ...) and returns 2. */
int cli_option_error(const char *cmd, int c, char **argv);
/* cli_fail("audio", err) for a file that failed to decode without --raw; when
 * libsndfile did not recognise a file that is there, adds a hint that raw PCM
 * needs --raw (a headerless file is the usual cause). Returns 1. */
int cli_fail_audio(const char *path, const ls_error *err);
/* Parses a positive int option value; prints an error and returns -1 if bad. */
int cli_parse_int(const char *opt, const char *text, int min, int max);
/* Parses a list like "1,8,25" into out[0..cap): returns how many, or -1
 * after printing what is wrong (a bad item, none, more than cap). */
int cli_parse_int_list(const char *opt, const char *text, int min, int max, int *out, int cap);

int cmd_bench(int argc, char **argv);
int cmd_avatar(int argc, char **argv);
int cmd_croprect(int argc, char **argv);
int cmd_mel(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Benchmarks, dispatched by `lipsync bench NAME`. */
int bench_image(int argc, char **argv);
int bench_mel(int argc, char **argv);
int bench_pipeline(int argc, char **argv);
int bench_serve(int argc, char **argv);
int bench_engine(int argc, char **argv);

/* Online CPUs: the default thread count of the nn commands. */
int cli_default_threads(void);
/* "fp32" / "bf16" / "int8" into an ls_precision (engine.h); prints the error and
 * returns -1 otherwise. */
int cli_parse_precision(const char *text, ls_precision *out);
/* Loads MODEL.onnx, lowers it for `batch` and, when engine is not NULL,
 * compiles it for `threads` threads (cmd_infer.c); on failure everything
 * is released. */
struct ls_onnx_model;
int cli_compile_model(const char *path, int batch, ls_precision precision, int threads,
                      struct ls_onnx_model **model, ls_graph **graph, ls_engine **engine,
                      ls_error *err);

#endif
