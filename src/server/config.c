#include "server/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/engine.h"

typedef enum { KEY_STR, KEY_INT, KEY_LL, KEY_DBL } key_type;

typedef struct key_desc {
    const char *name;
    key_type type;
    size_t offset;
    double min, max;
    const char *help;
} key_desc;

#define OFF(f) offsetof(ls_server_config, f)
static const key_desc keys[] = {
    {"host", KEY_STR, OFF(host), 0, 0, "bind address (default 127.0.0.1)"},
    {"port", KEY_INT, OFF(port), 0, 65535, "TCP port; 0 picks a free one (default 8080)"},
    {"models_root", KEY_STR, OFF(models_root), 0, 0, "folder with one model directory per id"},
    {"preload", KEY_STR, OFF(preload), 0, 0, "comma-separated model ids to load at start"},
    {"web_root", KEY_STR, OFF(web_root), 0, 0, "browser client folder served at / (\"\": none)"},
    {"token", KEY_STR, OFF(token), 0, 0, "bearer token required on all but /health"},
    {"max_models", KEY_INT, OFF(max_models), 1, 1024, "models resident at once (LRU)"},
    {"max_sessions", KEY_INT, OFF(max_sessions), 1, 4096, "concurrent streams and jobs"},
    {"max_jobs", KEY_INT, OFF(max_jobs), 0, 255,
     "render/batch jobs at once, below workers; 0: workers-1"},
    {"max_body_bytes", KEY_LL, OFF(max_body_bytes), 1, 1e12, "largest request body"},
    {"max_body_bytes_total", KEY_LL, OFF(max_body_bytes_total), 1, 1e12,
     "request body bytes held at once (received or being received)"},
    {"max_audio_seconds", KEY_DBL, OFF(max_audio_seconds), 1, 86400,
     "longest audio a render or batch call may carry (longer: 413)"},
    {"idle_timeout_s", KEY_INT, OFF(idle_timeout_s), 1, 86400,
     "close streams idle (or not read from) for this long"},
    {"stream_queue_frames", KEY_INT, OFF(stream_queue_frames), 8, 100000,
     "frames a stream computes ahead of a client that reads slowly"},
    {"drain_timeout_s", KEY_INT, OFF(drain_timeout_s), 0, 86400,
     "on SIGTERM/SIGINT: seconds running sessions may finish"},
    {"workers", KEY_INT, OFF(workers), 1, 256, "compute threads driving sessions"},
    {"threads", KEY_INT, OFF(threads), 1, 256, "shared pool threads for image work"},
    {"batch", KEY_INT, OFF(batch), 0, 64, "session batch size; 0: the model's"},
    {"precision", KEY_STR, OFF(precision), 0, 0,
     "engine precision: fp32, bf16 (faster, less exact) or int8 (lipsync quantize first)"},
    {"jpeg_quality", KEY_INT, OFF(jpeg_quality), 1, 100, "JPEG quality of frames"},
    {"silence_rms", KEY_DBL, OFF(silence_rms), 0, 1, "RMS below which audio is silence (speech events)"},
    {"verbose", KEY_INT, OFF(verbose), 0, 2, "log level"},
    {"stun_server", KEY_STR, OFF(stun_server), 0, 0,
     "WebRTC STUN server, stun://HOST:PORT (\"\": none, enough on a LAN)"},
    {"turn_server", KEY_STR, OFF(turn_server), 0, 0,
     "WebRTC TURN server, turn://USER:PASSWORD@HOST:PORT (\"\": none)"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void ls_server_config_defaults(ls_server_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->host, "127.0.0.1");
    c->port = 8080;
    strcpy(c->models_root, "models");
    c->max_models = 2;
    c->max_sessions = 8;
    c->max_body_bytes = 64ll << 20;
    c->max_body_bytes_total = 256ll << 20;
    c->max_audio_seconds = 600;
    c->idle_timeout_s = 60;
    c->stream_queue_frames = 200;
    c->drain_timeout_s = 30;
    c->workers = 4;
    c->threads = 2;
    c->jpeg_quality = 85;
    strcpy(c->precision, "fp32");
    c->silence_rms = 0.003;
}

static const key_desc *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

static int set_number(ls_server_config *c, const key_desc *k, double v, const char *source,
                      ls_error *err)
{
    if (!isfinite(v) || v < k->min || v > k->max)
        return ls_error_set(err, LS_ERR_RANGE, "%s: %s = %g is outside %g..%g", source, k->name,
                            v, k->min, k->max);
    char *field = (char *)c + k->offset;
    if (k->type == KEY_INT) {
        if (v != floor(v))
            return ls_error_set(err, LS_ERR_FORMAT, "%s: %s wants an integer, got %g", source,
                                k->name, v);
        *(int *)field = (int)v;
    } else if (k->type == KEY_LL) {
        if (v != floor(v))
            return ls_error_set(err, LS_ERR_FORMAT, "%s: %s wants an integer, got %g", source,
                                k->name, v);
        *(long long *)field = (long long)v;
    } else {
        *(double *)field = v;
    }
    return LS_OK;
}

/* webrtcbin takes its ICE servers as URLs and only warns on one it cannot
 * read, so a typo would surface as peers that never connect: check the
 * scheme here. "" is none. */
static int ice_url_ok(const char *key, const char *value)
{
    if (!value[0]) return 1;
    if (!strcmp(key, "stun_server")) return !strncmp(value, "stun://", 7) && value[7];
    if (!strcmp(key, "turn_server"))
        return (!strncmp(value, "turn://", 7) && value[7]) ||
               (!strncmp(value, "turns://", 8) && value[8]);
    return 1;
}

int ls_server_config_set(ls_server_config *c, const char *key, const char *value,
                         const char *source, ls_error *err)
{
    const key_desc *k = find_key(key);
    if (!k) return ls_error_set(err, LS_ERR_NOT_FOUND, "%s: unknown setting '%s'", source, key);
    if (!value) return ls_error_set(err, LS_ERR_INVALID_ARG, "%s: %s needs a value", source, key);
    if (k->type == KEY_STR) {
        if (strlen(value) >= LS_CONFIG_STR_MAX)
            return ls_error_set(err, LS_ERR_RANGE, "%s: %s is longer than %d bytes", source, key,
                                LS_CONFIG_STR_MAX - 1);
        ls_precision p;
        if (!strcmp(k->name, "precision") && ls_precision_parse(value, &p, err))
            return ls_error_prefix(err, "%s", source);
        if (!ice_url_ok(k->name, value))
            return ls_error_set(err, LS_ERR_FORMAT, "%s: %s wants %s://HOST:PORT, got '%s'",
                                source, key, k->name[0] == 's' ? "stun" : "turn", value);
        strcpy((char *)c + k->offset, value);
        return LS_OK;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end || errno)
        return ls_error_set(err, LS_ERR_FORMAT, "%s: %s wants a number, got '%s'", source, key,
                            value);
    return set_number(c, k, v, source, err);
}

int ls_server_config_load_file(ls_server_config *c, const char *path, ls_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ls_error_set(err, LS_ERR_IO, "cannot open config %s", path);
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 20)) {
                free(text);
                fclose(f);
                return ls_error_set(err, LS_ERR_RANGE, "config %s is larger than 1 MiB", path);
            }
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return ls_error_set(err, LS_ERR_NOMEM, "reading config %s", path);
            }
            text = t;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
    }
    fclose(f);
    text[len] = '\0';
    const char *where = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &where, 1);
    if (!root) {
        int rc = ls_error_set(err, LS_ERR_FORMAT, "config %s: invalid JSON near byte %ld", path,
                              where ? (long)(where - text) : 0L);
        free(text);
        return rc;
    }
    free(text);
    int rc = LS_OK;
    if (!cJSON_IsObject(root)) rc = ls_error_set(err, LS_ERR_FORMAT, "config %s: not an object", path);
    char source[LS_CONFIG_STR_MAX + 16];
    snprintf(source, sizeof source, "config %s", path);
    for (cJSON *it = root->child; it && rc == LS_OK; it = it->next) {
        const key_desc *k = find_key(it->string);
        if (!k) {
            rc = ls_error_set(err, LS_ERR_NOT_FOUND, "%s: unknown setting '%s'", source, it->string);
        } else if (k->type == KEY_STR) {
            if (!cJSON_IsString(it))
                rc = ls_error_set(err, LS_ERR_FORMAT, "%s: %s wants a string", source, k->name);
            else
                rc = ls_server_config_set(c, k->name, it->valuestring, source, err);
        } else if (cJSON_IsBool(it)) {
            rc = set_number(c, k, cJSON_IsTrue(it) ? 1 : 0, source, err);
        } else if (cJSON_IsNumber(it)) {
            rc = set_number(c, k, it->valuedouble, source, err);
        } else {
            rc = ls_error_set(err, LS_ERR_FORMAT, "%s: %s wants a number", source, k->name);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int ls_server_config_apply_env(ls_server_config *c, char *const *envp, ls_error *err)
{
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, "LS_", 3) != 0) continue;
        const char *eq = strchr(e, '=');
        if (!eq) continue;
        char name[64];
        size_t n = (size_t)(eq - e - 3);
        if (n == 0 || n >= sizeof name) continue;
        for (size_t j = 0; j < n; j++) name[j] = (char)tolower((unsigned char)e[3 + j]);
        name[n] = '\0';
        /* LS_* also names test and build variables: only settings apply. */
        if (!find_key(name)) continue;
        char source[80];
        snprintf(source, sizeof source, "environment LS_%.*s", (int)n, e + 3);
        int rc = ls_server_config_set(c, name, eq + 1, source, err);
        if (rc) return rc;
    }
    return LS_OK;
}

int ls_server_config_check_web_root(const ls_server_config *c, ls_error *err)
{
    if (!c->web_root[0]) return LS_OK;
    struct stat st;
    if (stat(c->web_root, &st) != 0 || !S_ISDIR(st.st_mode))
        return ls_error_set(err, LS_ERR_NOT_FOUND,
                            "web_root %s is not a directory (the browser client's folder; "
                            "web_root \"\" serves none)",
                            c->web_root);
    char index[LS_CONFIG_STR_MAX + 16];
    snprintf(index, sizeof index, "%s/index.html", c->web_root);
    if (stat(index, &st) != 0 || !S_ISREG(st.st_mode))
        return ls_error_set(err, LS_ERR_NOT_FOUND,
                            "web_root %s has no index.html: not the browser client's folder "
                            "(web/ of the source tree, share/lipsync/web where installed)",
                            c->web_root);
    return LS_OK;
}

void ls_server_config_describe(char *buf, size_t cap)
{
    size_t used = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < N_KEYS && used < cap; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s", keys[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        int w = snprintf(buf + used, cap - used, "  --%-18s %s\n", flag, keys[i].help);
        if (w < 0) break;
        used += (size_t)w;
    }
}
