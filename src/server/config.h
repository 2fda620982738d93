/* config.h - `lipsync serve` settings: defaults < config file < LS_* env < flags.
 *
 * Every setting has one name used in all three places: "max_sessions" in the
 * JSON config file, LS_MAX_SESSIONS in the environment, --max-sessions on the
 * command line. Later sources override earlier ones. Unknown keys, values of
 * the wrong type and out-of-range numbers are errors naming the key and the
 * source, so a typo never silently runs a server with the default.
 */
#ifndef LS_SERVER_CONFIG_H
#define LS_SERVER_CONFIG_H

#include <stddef.h>

#include "core/error.h"

#define LS_CONFIG_STR_MAX 512
#define LS_CONFIG_MAX_PRELOAD 16

typedef struct ls_server_config {
    char host[LS_CONFIG_STR_MAX];        /* bind address; default 127.0.0.1 */
    int port;                            /* 0: any free port (printed) */
    char models_root[LS_CONFIG_STR_MAX]; /* one model directory per subfolder */
    char preload[LS_CONFIG_STR_MAX];     /* comma-separated model ids loaded at start */
    char web_root[LS_CONFIG_STR_MAX];    /* the browser client's files; "" : none */
    char token[LS_CONFIG_STR_MAX];       /* bearer token; "" : no auth */
    int max_models;                      /* resident models (LRU beyond) */
    int max_sessions;                    /* concurrent streams + render/batch jobs */
    int max_jobs;                        /* render/batch jobs at once; 0: workers-1, >= 1 */
    long long max_body_bytes;            /* request bodies above this get 413 */
    long long max_body_bytes_total;      /* all bodies held at once; a new one past it gets 503 */
    double max_audio_seconds;            /* render/batch audio longer than this: 413 */
    int idle_timeout_s;                  /* streams with no traffic are closed */
    int stream_queue_frames;             /* frames a stream holds for a client behind */
    int drain_timeout_s;                 /* on SIGTERM: how long running sessions may finish */
    int workers;                         /* compute threads driving sessions */
    int threads;                         /* shared pool threads for image work */
    int batch;                           /* session batch size; 0: the model's */
    char precision[LS_CONFIG_STR_MAX];   /* engine precision: "fp32", "bf16" or "int8" */
    int jpeg_quality;                    /* 1..100 */
    double silence_rms;                  /* live mode: RMS below this is silence */
    int verbose;                         /* 0 quiet, 1 requests */
    char stun_server[LS_CONFIG_STR_MAX]; /* WebRTC: stun://HOST:PORT, "" : none (LANs) */
    char turn_server[LS_CONFIG_STR_MAX]; /* WebRTC: turn(s)://USER:PASS@HOST:PORT, "" : none */
} ls_server_config;

void ls_server_config_defaults(ls_server_config *c);

/* Sets one key from its text value; source names where it came from. */
int ls_server_config_set(ls_server_config *c, const char *key, const char *value,
                         const char *source, ls_error *err);

/* Reads a JSON object of settings (numbers, strings, booleans as 0/1). */
int ls_server_config_load_file(ls_server_config *c, const char *path, ls_error *err);

/* Applies LS_<KEY> variables from envp (NULL-terminated "NAME=value" list). */
int ls_server_config_apply_env(ls_server_config *c, char *const *envp, ls_error *err);

/* Checks that web_root, when not "", is a folder holding the browser
 * client (its index.html): a wrong --web-root fails at start with a message
 * naming the folder, rather than a server whose / answers 404. */
int ls_server_config_check_web_root(const ls_server_config *c, ls_error *err);

/* Writes the setting names, one per line with a summary, for --help. */
void ls_server_config_describe(char *buf, size_t cap);

#endif
