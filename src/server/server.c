/* server.c - the event loop: HTTP routes, the WebSocket stream protocol,
 * limits and auth. Compute happens in jobs.c and stream.c on workers.
 *
 * HTTP API (every error is {"error": "<message>", "status": N}):
 *   GET  /health                    {"status":"ok", ...}; never needs the token;
 *                                   503 {"status":"draining", ...} once a drain
 *                                   (SIGTERM, ls_server_drain) began
 *   GET  /metrics                   Prometheus text format
 *   GET  /v1/models                 {"models":[{id, state, ...}]}
 *   POST /v1/models/{id}/load       loads (or touches) a model
 *   DELETE /v1/models/{id}          unloads it (sessions using it keep it)
 *   POST /v1/render?model=ID&start_frame=N&output=mp4|mjpeg|jpeg-zip
 *        body: an audio file (WAV, FLAC, Ogg, MP3...); answer: the video
 *   POST /v1/batch?model=ID&batch_size=B&start_frame=G[&format=multipart]
 *        body: raw float32 little-endian 16 kHz mono samples of the stream
 *        from its start; answer: frames G..G+B-1 of that stream (avatar
 *        position follows the global frame index) as base64 JPEG in JSON,
 *        or multipart/mixed (also chosen by Accept: multipart/mixed)
 *   GET  /, /app.js, /style.css     the browser client (web_root)
 * With a token configured, every API route but /health wants
 * "Authorization: Bearer TOKEN" or "?token=TOKEN" (browsers cannot set
 * headers on WebSockets); the client's static files are public (they hold
 * no data, and the browser fetches them without headers).
 *
 * WebSocket GET /v1/stream?model=ID (refused before the upgrade with a JSON
 * 401/404/503 answer). Client -> server:
 *   text {"type":"start","format":"s16le"|"f32le","rate":R,"channels":C,
 *         "start_frame":N,"batch":B,"live":false,
 *         "skip_silence":<live>}                         once, before audio
 *   binary audio in that format, any chunk size (samples may be split)
 *   text {"type":"flush"}      run the frames that are ready now
 *   text {"type":"interrupt"}  drop queued and in-flight frames
 *   text {"type":"end"}        end of audio: remaining frames, then "done"
 * Server -> client:
 *   binary frame: "LSF1", u32 flags (bit 0: the avatar's own frame, sent
 *          without inference as its audio is silent), i64 frame index, f64 timestamp
 *          (index/25 s), then the JPEG (all little-endian)
 *   text {"type":"ready"|"speech_start"|"speech_end"|"stats"|"interrupted"
 *         |"done"|"error", ...}
 * Live mode ("live":true) flushes after every chunk and paces frames at
 * 25 fps against the session clock. Speech events come from the RMS of
 * each 40 ms of 16 kHz audio against silence_rms; with skip_silence (the
 * default in live mode) a frame whose whole audio window is below it skips
 * inference (session.h).
 */
#include "server/server_priv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "nn/engine.h"

#define WRITE_CHUNK 65536
#define TEXT_MSG_MAX 65536
/* Input flow control: stop reading a stream's socket while this much audio
 * waits for a worker, or this many frames wait for the client. */
#define INBOX_PAUSE_BYTES (4u << 20)
#define OUTBOX_PAUSE_FRAMES 200
#define MAX_PROTOCOL_ERRORS 32
/* Request size limits. lws cuts the request URI (each query argument on its
 * own) and every header it knows at HTTP_FIELD_MAX bytes (token_limits: it
 * keeps the first bytes and skips the rest of the line), and we answer such
 * a request 414 or 431 (request_check). All the request head lws stores -
 * the kept parts, plus unknown headers, which it stores whole - must fit in
 * HTTP_HEAD_MAX bytes: past that, or past its fixed count of URI arguments
 * and headers (about 90), or at a %00 (NUL) its URI decoder refuses (see
 * request_check), lws's parser fails and closes the connection without a
 * callback that could answer (lws 4.1, parsers.c: LPR_FAIL, no hook). */
#define HTTP_FIELD_MAX 8192
#define HTTP_HEAD_MAX 32768

/* ---- conn lifetime and the ready list ---- */

void conn_init(conn *c, conn_kind kind, ls_server *srv)
{
    c->kind = kind;
    c->srv = srv;
    pthread_mutex_init(&c->lock, NULL);
    c->refs = 1; /* the loop's */
    atomic_init(&c->closed, 0);
}

void conn_ref(conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->refs++;
    pthread_mutex_unlock(&c->lock);
}

void http_body_release(http_req *r)
{
    ls_buf_free(&r->body);
    if (r->body_reserved) {
        atomic_fetch_sub(&r->c.srv->body_bytes, (long long)r->body_reserved);
        r->body_reserved = 0;
    }
}

void http_slot_release(http_req *r)
{
    if (r->holds_slot) atomic_fetch_sub(&r->c.srv->active_jobs, 1);
    r->holds_slot = 0;
}

static void http_req_free(http_req *r)
{
    http_slot_release(r);
    if (r->unsent) atomic_fetch_sub(&r->c.srv->unsent_jobs, 1);
    http_body_release(r);
    ls_buf_free(&r->resp);
    pthread_mutex_destroy(&r->c.lock);
    free(r);
}

void conn_unref(conn *c)
{
    pthread_mutex_lock(&c->lock);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last) return;
    if (c->kind == CONN_HTTP)
        http_req_free((http_req *)c);
    else
        stream_free((stream *)c);
}

void conn_notify(conn *c)
{
    ls_server *srv = c->srv;
    pthread_mutex_lock(&srv->ready_lock);
    if (!c->on_ready_list) {
        c->on_ready_list = 1;
        conn_ref(c);
        c->ready_next = srv->ready_head;
        srv->ready_head = c;
    }
    pthread_mutex_unlock(&srv->ready_lock);
    lws_cancel_service(srv->ctx);
}

/* [loop] Asks for writable callbacks for every conn with news. A conn
 * stays marked on_ready_list until its link has been read (under the lock):
 * a worker may notify it again at once, and that rewrites ready_next. */
static void drain_ready(ls_server *srv)
{
    pthread_mutex_lock(&srv->ready_lock);
    conn *c = srv->ready_head;
    srv->ready_head = NULL;
    pthread_mutex_unlock(&srv->ready_lock);
    while (c) {
        pthread_mutex_lock(&srv->ready_lock);
        conn *next = c->ready_next;
        c->on_ready_list = 0;
        pthread_mutex_unlock(&srv->ready_lock);
        if (c->wsi) lws_callback_on_writable(c->wsi);
        conn_unref(c);
        c = next;
    }
}

/* ---- HTTP responses ---- */

int http_status_for(int code)
{
    switch (code) {
    case LS_ERR_INVALID_ARG:
    case LS_ERR_FORMAT:
    case LS_ERR_RANGE: return 400;
    case LS_ERR_UNSUPPORTED: return 415;
    case LS_ERR_NOT_FOUND: return 404;
    case LS_ERR_BUSY: return 503;
    case LS_ERR_STATE: return 409;
    case LS_ERR_TOO_LARGE: return 413;
    default: return 500;
    }
}

void http_set_json(http_req *r, int status, const char *json)
{
    r->status = status;
    snprintf(r->content_type, sizeof r->content_type, "application/json");
    r->resp.len = 0;
    ls_buf_append(&r->resp, json, strlen(json));
    ls_buf_append(&r->resp, "\n", 1);
}

/* {"error": text, "status": status}, malloc'd (cJSON_free), or NULL. */
static char *error_body(int status, const char *fmt, va_list ap)
{
    char text[LS_ERROR_MSG_MAX + 64];
    vsnprintf(text, sizeof text, fmt, ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", text);
    cJSON_AddNumberToObject(j, "status", status);
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return body;
}

void http_set_error(http_req *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = error_body(status, fmt, ap);
    va_end(ap);
    http_set_json(r, status, body ? body : "{\"error\":\"out of memory\"}");
    cJSON_free(body);
    ls_metrics_add(r->c.srv->metrics, LS_M_ERRORS, 1);
}

void http_finish(http_req *r)
{
    atomic_store(&r->ready, 1);
    conn_notify(&r->c);
}

/* A Retry-After header of seconds; nonzero when it does not fit. */
static int add_retry_after(struct lws *wsi, int seconds, unsigned char **p, unsigned char *end)
{
    char v[16];
    int n = snprintf(v, sizeof v, "%d", seconds);
    return lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                       (const unsigned char *)v, n, p, end);
}

/* [loop] Writes the next piece of a ready response; <0 closes. */
static int http_write(struct lws *wsi, http_req *r)
{
    unsigned char buf[LWS_PRE + WRITE_CHUNK];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (!r->headers_sent) {
        if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->content_type, r->resp.len,
                                        &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end))
            return -1;
        if (r->disposition[0] &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
                                        (const unsigned char *)r->disposition,
                                        (int)strlen(r->disposition), &p, end))
            return -1;
        if (r->close_after &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                        (const unsigned char *)"close", 5, &p, end))
            return -1;
        if (r->retry_after_s > 0 && add_retry_after(wsi, r->retry_after_s, &p, end)) return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
        r->headers_sent = 1;
        ls_metrics_add(r->c.srv->metrics, LS_M_REQUESTS, 1);
        if (r->c.srv->cfg.verbose)
            lwsl_user("%d %zu bytes\n", r->status, r->resp.len);
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t left = r->resp.len - r->sent;
    size_t n = left < WRITE_CHUNK ? left : WRITE_CHUNK;
    int last = n == left;
    if (n) memcpy(start, r->resp.data + r->sent, n);
    if (lws_write(wsi, start, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    r->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (r->close_after) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- request parsing helpers ---- */

/* The value of query argument name ("model="), URL-decoded by lws, into
 * buf: 1, or 0 when absent, or -1 when longer than cap - 1 bytes (never
 * cut short). lws_get_urlarg_by_name cannot tell those apart: it stops at
 * the first argument too long for buf, whichever its name. */
static int get_arg(struct lws *wsi, const char *name, char *buf, int cap)
{
    char frag[HTTP_FIELD_MAX + 1]; /* lws keeps no argument longer */
    size_t nl = strlen(name);
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) return 0;
        if ((size_t)n < nl || strncmp(frag, name, nl)) continue;
        if ((size_t)n - nl >= (size_t)cap) return -1;
        memcpy(buf, frag + nl, (size_t)n - nl + 1);
        return 1;
    }
}

/* http_arg_fn over lws's query arguments (ctx: the wsi). */
static int lws_arg(void *wsi, const char *name, char *buf, int cap)
{
    return get_arg(wsi, name, buf, cap);
}

/* A decimal integer in min..max (min >= 0): digits only, no sign, no
 * spaces, no overflow. */
int http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!isdigit((unsigned char)s[0])) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < min || v > max) return 0;
    *out = v;
    return 1;
}

/* The tokens lws keeps a request line's URI in, one per method. */
static const enum lws_token_indexes uri_tokens[] = {
    WSI_TOKEN_GET_URI,  WSI_TOKEN_POST_URI,   WSI_TOKEN_OPTIONS_URI, WSI_TOKEN_PUT_URI,
    WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI, WSI_TOKEN_HEAD_URI,
};

static int is_uri_token(int h)
{
    if (h == WSI_TOKEN_HTTP_URI_ARGS) return 1;
    for (size_t i = 0; i < sizeof uri_tokens / sizeof uri_tokens[0]; i++)
        if (h == (int)uri_tokens[i]) return 1;
    return 0;
}

/* [loop] What lws passed on but we refuse before routing: 0 when the
 * request is fine, else the HTTP status, with the message in why.
 * - 414 / 431: lws cut the URI (or a query argument) / a header at
 *   HTTP_FIELD_MAX bytes; a cut piece is exactly that long.
 * - 400: a NUL byte (%00) in the path. lws's URI decoder fails the whole
 *   request (closing without a callback) at a %00 anywhere but right after
 *   a '/' or "/."; there it keeps the NUL, which would end the path early.
 * - 505 / 400: a version other than HTTP/1.x, or not a version at all. */
static int request_check(struct lws *wsi, char *why, size_t cap)
{
    for (int h = 0; h < (int)WSI_TOKEN_COUNT; h++) {
        if (h == WSI_TOKEN_HTTP || lws_hdr_total_length(wsi, h) < HTTP_FIELD_MAX) continue;
        /* Pieces past the last are 0 long; there are at most
         * WSI_TOKEN_COUNT (lws's fragment table). */
        for (int f = 0; f < (int)WSI_TOKEN_COUNT; f++) {
            if (lws_hdr_fragment_length(wsi, h, f) < HTTP_FIELD_MAX) continue;
            if (is_uri_token(h)) {
                snprintf(why, cap, "request URI %s longer than %d bytes",
                         h == WSI_TOKEN_HTTP_URI_ARGS ? "query argument" : "path",
                         HTTP_FIELD_MAX - 1);
                return 414;
            }
            const char *name = (const char *)lws_token_to_string(h);
            int n = name ? (int)strcspn(name, ": ") : 0;
            snprintf(why, cap, "header %.*s longer than %d bytes", n, n ? name : "field",
                     HTTP_FIELD_MAX - 1);
            return 431;
        }
    }
    for (size_t i = 0; i < sizeof uri_tokens / sizeof uri_tokens[0]; i++) {
        if (lws_hdr_total_length(wsi, uri_tokens[i]) <= 0) continue;
        /* lws counts the bytes but the NUL, and its copy stops at a NUL. */
        char path[HTTP_FIELD_MAX + 1];
        int n = lws_hdr_copy(wsi, path, sizeof path, uri_tokens[i]);
        if (n > 0 && strlen(path) < (size_t)n) {
            snprintf(why, cap, "bad path: it holds a NUL byte (%%00)");
            return 400;
        }
    }
    char v[16];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP);
    if (n > 0) {
        if (n >= (int)sizeof v || lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP) != n ||
            strncmp(v, "HTTP/", 5)) {
            snprintf(why, cap, "malformed HTTP version in the request line");
            return 400;
        }
        if (n != 8 || strncmp(v, "HTTP/1.", 7) || !isdigit((unsigned char)v[7])) {
            snprintf(why, cap, "%s is not supported: this server speaks HTTP/1.1", v);
            return 505;
        }
    }
    return 0;
}

#define TOKEN_ARG_MAX (LS_CONFIG_STR_MAX + 16)

/* Bearer token from the Authorization header or the token= query arg: 1
 * when it matches, 0 when not, -1 when token= is longer than any token. */
static int authorized(ls_server *srv, struct lws *wsi)
{
    const char *token = srv->cfg.token;
    if (!token[0]) return 1;
    char h[LS_CONFIG_STR_MAX + 16];
    if (lws_hdr_copy(wsi, h, sizeof h, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, token))
        return 1;
    char q[TOKEN_ARG_MAX];
    int a = get_arg(wsi, "token=", q, sizeof q);
    return a < 0 ? -1 : a && !strcmp(q, token);
}

/* Seconds a client refused at a limit is told to wait (Retry-After): a
 * hint, as when a slot comes free is not known. */
#define RETRY_AFTER_S 2

/* [loop] Whether a new stream or (job) render/batch job may start: 1, or
 * 0 with the 503 answer's message in why. Only the loop adds streams and
 * jobs (workers only end them), so the check stays true until the caller
 * counts it. */
static int slot_free(ls_server *srv, int job, char *why, size_t cap)
{
    int used = atomic_load(&srv->active_streams) + atomic_load(&srv->active_jobs);
    if (used >= srv->cfg.max_sessions) {
        ls_metrics_add(srv->metrics, LS_M_SESSIONS_REJECTED, 1);
        snprintf(why, cap, "too many sessions (max_sessions %d); retry later",
                 srv->cfg.max_sessions);
        return 0;
    }
    if (job && atomic_load(&srv->active_jobs) >= srv->max_jobs) {
        ls_metrics_add(srv->metrics, LS_M_SESSIONS_REJECTED, 1);
        snprintf(why, cap, "too many render and batch jobs (max_jobs %d); retry later",
                 srv->max_jobs);
        return 0;
    }
    return 1;
}

/* While draining, a new stream, render or batch call is refused: the load
 * balancer sends it to another instance (docs/server.md). */
#define DRAINING_MSG "server is draining (shutting down): new sessions go elsewhere"

static char *health_json(ls_server *srv)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", srv->draining ? "draining" : "ok");
    if (srv->draining) {
        double left = srv->drain_deadline - ls_now();
        cJSON_AddNumberToObject(j, "drain_left_s", left > 0 ? left : 0);
    }
    cJSON_AddStringToObject(j, "version", LS_VERSION);
    cJSON_AddNumberToObject(j, "uptime_s", ls_now() - srv->started_at);
    cJSON_AddNumberToObject(j, "sessions", atomic_load(&srv->active_streams));
    cJSON_AddNumberToObject(j, "jobs", atomic_load(&srv->active_jobs));
    cJSON_AddNumberToObject(j, "max_sessions", srv->cfg.max_sessions);
    cJSON_AddNumberToObject(j, "max_jobs", srv->max_jobs);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

cJSON *model_entry_json(const ls_registry_entry *e);
cJSON *model_entry_json(const ls_registry_entry *e)
{
    static const char *states[] = {"available", "loading", "resident", "failed"};
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", e->id);
    cJSON_AddStringToObject(m, "state", states[e->state]);
    cJSON_AddNumberToObject(m, "users", e->users);
    if (e->state == LS_MODEL_RESIDENT) {
        cJSON_AddStringToObject(m, "name", e->name);
        cJSON_AddNumberToObject(m, "fps", e->fps);
        cJSON_AddNumberToObject(m, "width", e->width);
        cJSON_AddNumberToObject(m, "height", e->height);
        cJSON_AddNumberToObject(m, "frames", e->n_frames);
        cJSON_AddNumberToObject(m, "batch", e->batch);
        cJSON_AddNumberToObject(m, "memory_bytes", (double)e->memory_bytes);
        cJSON_AddNumberToObject(m, "idle_s", e->idle_s);
    }
    if (e->state == LS_MODEL_FAILED) cJSON_AddStringToObject(m, "error", e->error);
    return m;
}

static void models_json(ls_server *srv, http_req *r)
{
    ls_registry_entry list[256];
    int n = ls_registry_list(srv->registry, list, 256);
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "models");
    for (int i = 0; i < n && i < 256; i++) cJSON_AddItemToArray(arr, model_entry_json(&list[i]));
    cJSON_AddNumberToObject(j, "max_models", srv->cfg.max_models);
    char *s = cJSON_PrintUnformatted(j);
    http_set_json(r, 200, s ? s : "{}");
    cJSON_free(s);
    cJSON_Delete(j);
}

static void metrics_text(ls_server *srv, http_req *r)
{
    ls_metrics_gauges g = {0};
    g.sessions_active = atomic_load(&srv->active_streams);
    g.jobs_active = atomic_load(&srv->active_jobs);
    ls_workq_stats ws;
    ls_workq_get_stats(srv->workq, &ws);
    g.queue_depth = ws.queued[LS_TASK_STREAM] + ws.queued[LS_TASK_JOB];
    g.workers_busy = ws.running[LS_TASK_STREAM] + ws.running[LS_TASK_JOB];
    g.job_tasks_queued = ws.queued[LS_TASK_JOB];
    g.job_tasks_running = ws.running[LS_TASK_JOB];
    g.frames_queued = atomic_load(&srv->frames_queued);
    g.body_bytes = atomic_load(&srv->body_bytes);
    ls_registry_stats st;
    ls_registry_get_stats(srv->registry, &st);
    g.models_resident = st.resident;
    g.models_loading = st.loading;
    g.models_bytes = st.resident_bytes;
    g.model_loads = st.loads;
    g.model_evictions = st.evictions;
    g.model_load_failures = st.load_failures;
    char *text = ls_metrics_render(srv->metrics, &g);
    if (!text) {
        http_set_error(r, 500, "metrics: out of memory");
        return;
    }
    r->status = 200;
    snprintf(r->content_type, sizeof r->content_type, "text/plain; version=0.0.4");
    ls_buf_append(&r->resp, text, strlen(text));
    free(text);
}

/* The browser client's files: a fixed list, so no path reaches elsewhere. */
static const struct {
    const char *url, *file, *mime;
} web_files[] = {
    {"/", "index.html", "text/html"},
    {"/index.html", "index.html", "text/html"},
    {"/app.js", "app.js", "application/javascript"},
    {"/style.css", "style.css", "text/css"},
};

static int serve_web(ls_server *srv, struct lws *wsi, http_req *r, const char *uri)
{
    for (size_t i = 0; i < sizeof web_files / sizeof web_files[0]; i++) {
        if (strcmp(uri, web_files[i].url)) continue;
        char path[LS_CONFIG_STR_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", srv->cfg.web_root, web_files[i].file);
        struct stat st;
        if (!srv->cfg.web_root[0] || stat(path, &st) != 0) return 0;
        r->serving_file = 1;
        int n = lws_serve_http_file(wsi, path, web_files[i].mime, NULL, 0);
        if (n < 0) return -1;
        if (n > 0 && lws_http_transaction_completed(wsi)) return -1;
        return 1;
    }
    return 0;
}

/* The job routes: /v1/models/{id}[/load] (id filled), /v1/render,
 * /v1/batch; ROUTE_NONE sets *too_long when only the id's length kept it
 * from a route. */
route http_route(const char *uri, int post, int del, char *id, int *too_long)
{
    *too_long = 0;
    if (post && !strcmp(uri, "/v1/render")) return ROUTE_RENDER;
    if (post && !strcmp(uri, "/v1/batch")) return ROUTE_BATCH;
    const char *prefix = "/v1/models/";
    if (strncmp(uri, prefix, strlen(prefix))) return ROUTE_NONE;
    const char *rest = uri + strlen(prefix);
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    route rt = post && slash && !strcmp(slash, "/load") ? ROUTE_LOAD
               : del && !slash                          ? ROUTE_UNLOAD
                                                        : ROUTE_NONE;
    if (n == 0) return ROUTE_NONE;
    if (n > LS_MODEL_ID_MAX) {
        *too_long = rt != ROUTE_NONE;
        return ROUTE_NONE;
    }
    memcpy(id, rest, n);
    id[n] = '\0';
    return rt;
}

/* 400 for a query argument too long for its buffer (get_arg < 0). */
static void arg_too_long(http_req *r, const char *name, int cap)
{
    http_set_error(r, 400, "query parameter %.*s is longer than %d bytes",
                   (int)strcspn(name, "="), name, cap - 1);
}

/* Whether the Accept header names multipart/mixed, however long it is. */
static int accepts_multipart(struct lws *wsi)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_ACCEPT);
    if (n <= 0) return 0;
    char *a = malloc((size_t)n + 1);
    int yes = a && lws_hdr_copy(wsi, a, n + 1, WSI_TOKEN_HTTP_ACCEPT) > 0 &&
              strstr(a, "multipart/mixed");
    free(a);
    return yes;
}

int http_parse_job_args(http_req *r, http_arg_fn get, void *ctx, char *why, size_t cap)
{
    char v[128];
    int a = get(ctx, "model=", r->model, sizeof r->model);
    if (a < 0) {
        snprintf(why, cap, "model id too long (at most %d bytes)", LS_MODEL_ID_MAX);
        return -1;
    }
    if (!a || !r->model[0]) {
        snprintf(why, cap, "missing model=ID query parameter");
        return -1;
    }
    /* Every argument we read: one too long for its buffer is an error, not
     * absent. */
    static const char *const args[] = {"start_frame=", "output=", "batch_size=", "format="};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        if (get(ctx, args[i], v, sizeof v) < 0) {
            snprintf(why, cap, "query parameter %.*s is longer than %d bytes",
                     (int)strcspn(args[i], "="), args[i], (int)sizeof v - 1);
            return -1;
        }
    r->start_frame = 0;
    if (get(ctx, "start_frame=", v, sizeof v) > 0 &&
        !http_parse_i64(v, 0, INT64_C(1) << 40, &r->start_frame)) {
        snprintf(why, cap, "start_frame wants an integer >= 0, got '%s'", v);
        return -1;
    }
    if (r->route == ROUTE_RENDER) {
        snprintf(r->output, sizeof r->output, "mp4");
        if (get(ctx, "output=", v, sizeof v) > 0) {
            if (strcmp(v, "mp4") && strcmp(v, "mjpeg") && strcmp(v, "jpeg-zip")) {
                snprintf(why, cap, "output wants mp4, mjpeg or jpeg-zip, got '%s'", v);
                return -1;
            }
            snprintf(r->output, sizeof r->output, "%.15s", v);
        }
    } else {
        int64_t b = 0;
        if (get(ctx, "batch_size=", v, sizeof v) <= 0 || !http_parse_i64(v, 1, 32, &b)) {
            snprintf(why, cap, "batch_size wants an integer in 1..32");
            return -1;
        }
        r->batch_size = (int)b;
        r->multipart = get(ctx, "format=", v, sizeof v) > 0 && !strcmp(v, "multipart");
    }
    return 0;
}

/* [loop] A new request: answers the cheap routes at once, prepares jobs. */
static int http_begin(ls_server *srv, struct lws *wsi, http_req *r, const char *uri)
{
    int get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    int post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    int del = lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0;
    char why[160];
    int bad = request_check(wsi, why, sizeof why);
    if (bad) {
        http_set_error(r, bad, "%s", why);
        goto reject_body;
    }
    if (!strcmp(uri, "/health")) {
        if (!get) goto method;
        /* 503 while draining: health checks take the instance out. */
        char *s = health_json(srv);
        http_set_json(r, srv->draining ? 503 : 200,
                      s ? s : srv->draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}");
        cJSON_free(s);
        goto ready;
    }
    /* The client's static files hold no data and are fetched by the browser
     * without headers; every API call they make needs the token. */
    if (get) {
        int w = serve_web(srv, wsi, r, uri);
        if (w) return w < 0 ? -1 : 0;
    }
    int auth = authorized(srv, wsi);
    if (auth < 0) {
        arg_too_long(r, "token=", TOKEN_ARG_MAX);
        goto reject_body;
    }
    if (!auth) {
        http_set_error(r, 401, "missing or wrong bearer token");
        goto ready;
    }
    if (get && !strcmp(uri, "/metrics")) {
        metrics_text(srv, r);
        goto ready;
    }
    if (get && !strcmp(uri, "/v1/models")) {
        models_json(srv, r);
        goto ready;
    }
    if (get && !strcmp(uri, "/v1/stream")) {
        http_set_error(r, 426, "/v1/stream wants a WebSocket upgrade");
        goto ready;
    }
    char id[LS_MODEL_ID_MAX + 1];
    int id_too_long;
    route rt = http_route(uri, post, del, id, &id_too_long);
    if (id_too_long) {
        http_set_error(r, 400, "model id too long (at most %d bytes)", LS_MODEL_ID_MAX);
        goto reject_body;
    }
    if (rt == ROUTE_NONE) {
        int known = !strcmp(uri, "/v1/render") || !strcmp(uri, "/v1/batch") ||
                    !strcmp(uri, "/metrics") || !strcmp(uri, "/v1/models") ||
                    !strncmp(uri, "/v1/models/", 11);
        if (known) goto method;
        http_set_error(r, 404, "no such endpoint: %.200s", uri);
        goto ready;
    }
    r->route = rt;
    if ((rt == ROUTE_RENDER || rt == ROUTE_BATCH) && srv->draining) {
        http_set_error(r, 503, DRAINING_MSG);
        goto reject_body;
    }
    if (rt == ROUTE_LOAD || rt == ROUTE_UNLOAD) {
        snprintf(r->model, sizeof r->model, "%s", id);
    } else {
        char why[LS_ERROR_MSG_MAX];
        if (http_parse_job_args(r, lws_arg, wsi, why, sizeof why)) {
            http_set_error(r, 400, "%s", why);
            goto reject_body;
        }
        if (rt == ROUTE_BATCH && !r->multipart && accepts_multipart(wsi)) r->multipart = 1;
    }
    if (post) {
        char cl[32];
        int64_t len = -1;
        int has_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
        if (!has_len && rt == ROUTE_LOAD)
            len = 0; /* a body-less POST */
        else if (!has_len) {
            http_set_error(r, 411, "a Content-Length is required");
            goto reject_body;
        } else if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
                   !http_parse_i64(cl, 0, INT64_MAX, &len)) {
            http_set_error(r, 400, "Content-Length wants a byte count");
            goto reject_body;
        }
        if (len > srv->cfg.max_body_bytes) {
            http_set_error(r, 413, "body of %lld bytes exceeds the limit of %lld bytes",
                           (long long)len, srv->cfg.max_body_bytes);
            goto reject_body;
        }
        if (len > srv->cfg.max_body_bytes_total) { /* could never fit: 413, not 503 */
            http_set_error(r, 413,
                           "body of %lld bytes exceeds max_body_bytes_total, the %lld bytes "
                           "all bodies may hold at once",
                           (long long)len, srv->cfg.max_body_bytes_total);
            goto reject_body;
        }
        if ((rt == ROUTE_RENDER || rt == ROUTE_BATCH) && len == 0) {
            http_set_error(r, 400, "empty body: audio expected");
            goto ready;
        }
        r->body_expected = (size_t)len;
        if (rt == ROUTE_LOAD) {
            /* A load uses no body: one sent is read and dropped. */
            r->discard_body = 1;
            return len > 0 ? 0 : 1;
        }
        /* A job's slot and its body's bytes are taken now, from the head,
         * before a byte of the body is read: a client refused here costs
         * nothing, and bodies in flight hold at most max_body_bytes_total. */
        char busy[160];
        if (!slot_free(srv, 1, busy, sizeof busy)) {
            http_set_error(r, 503, "%s", busy);
            r->retry_after_s = RETRY_AFTER_S;
            goto reject_body;
        }
        long long held = atomic_load(&srv->body_bytes);
        if (len > srv->cfg.max_body_bytes_total - held) {
            http_set_error(r, 503,
                           "request bodies in flight: %lld bytes held, a %lld byte body would "
                           "pass max_body_bytes_total (%lld); retry later",
                           held, (long long)len, srv->cfg.max_body_bytes_total);
            r->retry_after_s = RETRY_AFTER_S;
            goto reject_body;
        }
        if (ls_buf_reserve(&r->body, (size_t)len + 1)) {
            http_set_error(r, 503, "out of memory for a %lld byte body", (long long)len);
            r->retry_after_s = RETRY_AFTER_S;
            goto reject_body;
        }
        atomic_fetch_add(&srv->body_bytes, len);
        r->body_reserved = (size_t)len;
        atomic_fetch_add(&srv->active_jobs, 1);
        atomic_fetch_add(&srv->unsent_jobs, 1);
        r->holds_slot = r->unsent = 1;
        return 0; /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    return 1; /* no body: dispatch now */
method:
    http_set_error(r, 405, "method not allowed on %.200s", uri);
    /* lws takes everything after a POST, PUT or PATCH without a
     * Content-Length for its body, up to the connection's end. */
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) &&
        (post || lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0 ||
         lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI) > 0))
        goto reject_body;
    goto ready;
reject_body:
    /* The body is not read: the connection cannot carry another request. */
    r->ignore_body = 1;
    r->close_after = 1;
ready:
    r->ignore_body = 1; /* answered: a body that follows is read and dropped */
    atomic_store(&r->ready, 1);
    lws_callback_on_writable(wsi);
    return 0;
}

/* [loop] Body complete (or none): queue the job (a render or batch job
 * holds its slot since its head arrived, http_begin). */
static void http_dispatch(ls_server *srv, struct lws *wsi, http_req *r)
{
    if (r->dispatched) return;
    r->dispatched = 1;
    /* Jobs may run longer than lws's idle timeout: the worker decides. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    conn_ref(&r->c);
    if (ls_workq_submit(srv->workq, LS_TASK_JOB, job_run, r) != LS_OK) {
        conn_unref(&r->c);
        http_set_error(r, 503, "server out of memory");
        atomic_store(&r->ready, 1);
        lws_callback_on_writable(wsi);
    }
}

/* Sends a JSON error as the answer to a refused WebSocket upgrade. */
static int refuse_upgrade(ls_server *srv, struct lws *wsi, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = error_body(status, fmt, ap);
    va_end(ap);
    if (!body) return -1;
    size_t n = strlen(body);
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    int rc = -1;
    if (n < 1024 &&
        !lws_add_http_common_headers(wsi, (unsigned)status, "application/json", n, &p, end) &&
        !lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                     (const unsigned char *)"close", 5, &p, end) &&
        (status != 503 || !add_retry_after(wsi, RETRY_AFTER_S, &p, end)) &&
        !lws_finalize_write_http_header(wsi, start, &p, end)) {
        memcpy(start, body, n);
        if (lws_write(wsi, start, n, LWS_WRITE_HTTP_FINAL) == (int)n) rc = 1;
    }
    cJSON_free(body);
    ls_metrics_add(srv->metrics, LS_M_ERRORS, 1);
    return rc;
}

static int confirm_upgrade(ls_server *srv, struct lws *wsi)
{
    char why[160];
    int bad = request_check(wsi, why, sizeof why);
    if (bad) return refuse_upgrade(srv, wsi, bad, "%s", why);
    char uri[256];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/v1/stream"))
        return refuse_upgrade(srv, wsi, 404, "WebSocket is served on /v1/stream only");
    int auth = authorized(srv, wsi);
    if (auth < 0)
        return refuse_upgrade(srv, wsi, 400, "query parameter token is longer than %d bytes",
                              TOKEN_ARG_MAX - 1);
    if (!auth) return refuse_upgrade(srv, wsi, 401, "missing or wrong bearer token");
    if (srv->draining) return refuse_upgrade(srv, wsi, 503, DRAINING_MSG);
    char id[LS_MODEL_ID_MAX + 1];
    int a = get_arg(wsi, "model=", id, sizeof id);
    if (a < 0)
        return refuse_upgrade(srv, wsi, 400, "model id too long (at most %d bytes)",
                              LS_MODEL_ID_MAX);
    if (!a || !id[0])
        return refuse_upgrade(srv, wsi, 400, "missing model=ID query parameter");
    ls_registry_entry e;
    ls_error err = {0};
    int rc = ls_registry_state(srv->registry, id, &e, &err);
    if (rc) return refuse_upgrade(srv, wsi, http_status_for(rc), "%s", err.msg);
    char busy[160];
    if (!slot_free(srv, 0, busy, sizeof busy)) return refuse_upgrade(srv, wsi, 503, "%s", busy);
    return 0;
}

/* ---- streams, loop side ---- */

static void streams_add(ls_server *srv, stream *s)
{
    if (srv->n_streams == srv->cap_streams) {
        int cap = srv->cap_streams ? srv->cap_streams * 2 : 16;
        stream **g = realloc(srv->streams, (size_t)cap * sizeof *g);
        if (!g) return; /* only the idle scan misses it */
        srv->streams = g;
        srv->cap_streams = cap;
    }
    srv->streams[srv->n_streams++] = s;
}

static void streams_remove(ls_server *srv, stream *s)
{
    for (int i = 0; i < srv->n_streams; i++)
        if (srv->streams[i] == s) {
            srv->streams[i] = srv->streams[--srv->n_streams];
            return;
        }
}

static void stream_error_locked(stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void stream_error_locked(stream *s, const char *fmt, ...)
{
    if (s->protocol_errors >= MAX_PROTOCOL_ERRORS) return; /* being cut off */
    char text[LS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "error");
    cJSON_AddStringToObject(j, "message", text);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (t) stream_queue_event_locked(s, t);
    cJSON_free(t);
    ls_metrics_add(s->c.srv->metrics, LS_M_ERRORS, 1);
    /* A client that keeps sending wrong messages is cut off, so its error
     * events cannot pile up without bound. */
    if (++s->protocol_errors >= MAX_PROTOCOL_ERRORS) s->close_when_sent = 1;
}

/* A field of "start" of the wrong type is an error naming it, never its
 * default; numbers are checked (finite, in range, integral) before any
 * conversion, as converting an out-of-range double is undefined. */
static int parse_start(cJSON *j, stream_start *st, char *why, size_t cap)
{
    memset(st, 0, sizeof *st);
    cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!f || (cJSON_IsString(f) && !strcmp(f->valuestring, "s16le")))
        st->format = LS_PCM_S16LE;
    else if (cJSON_IsString(f) && !strcmp(f->valuestring, "f32le"))
        st->format = LS_PCM_F32LE;
    else {
        if (cJSON_IsString(f))
            snprintf(why, cap, "start: format wants s16le or f32le, got '%.40s'", f->valuestring);
        else
            snprintf(why, cap, "start: format wants the string s16le or f32le");
        return 0;
    }
    struct {
        const char *name;
        double min, max, def;
    } nums[] = {{"rate", LS_AUDIO_MIN_RATE, LS_AUDIO_MAX_RATE, LS_AUDIO_MODEL_RATE},
                {"channels", 1, 8, 1},
                {"start_frame", 0, 1e12, 0},
                {"batch", 0, 64, 0}};
    double v[4];
    for (int i = 0; i < 4; i++) {
        cJSON *n = cJSON_GetObjectItemCaseSensitive(j, nums[i].name);
        v[i] = nums[i].def;
        if (!n) continue;
        double d = cJSON_IsNumber(n) ? n->valuedouble : NAN;
        /* !(in range) also rejects NaN; floor() of a finite double is exact. */
        if (!(d >= nums[i].min && d <= nums[i].max) || d != floor(d)) {
            snprintf(why, cap, "start: %s wants an integer in %.0f..%.0f", nums[i].name,
                     nums[i].min, nums[i].max);
            return 0;
        }
        v[i] = d;
    }
    st->rate = (int)v[0];
    st->channels = (int)v[1];
    st->start_frame = (int64_t)v[2];
    st->batch = (int)v[3];
    cJSON *live = cJSON_GetObjectItemCaseSensitive(j, "live");
    if (live && !cJSON_IsBool(live)) {
        snprintf(why, cap, "start: live wants true or false");
        return 0;
    }
    st->live = cJSON_IsTrue(live);
    cJSON *skip = cJSON_GetObjectItemCaseSensitive(j, "skip_silence");
    if (skip && !cJSON_IsBool(skip)) {
        snprintf(why, cap, "start: skip_silence wants true or false");
        return 0;
    }
    st->skip_silence = skip ? cJSON_IsTrue(skip) : st->live;
    return 1;
}

ctl_type stream_parse_control(const char *text, size_t len, stream_start *st, char *why,
                              size_t cap)
{
    static const char *names[] = {"start", "flush", "end", "interrupt"};
    static const ctl_type types[] = {CTL_START, CTL_FLUSH, CTL_END, CTL_INTERRUPT};
    cJSON *j = cJSON_ParseWithLength(text, len);
    cJSON *type = j ? cJSON_GetObjectItemCaseSensitive(j, "type") : NULL;
    ctl_type t = CTL_BAD;
    if (!j || !cJSON_IsObject(j)) {
        snprintf(why, cap, "control message is not a JSON object");
    } else if (!cJSON_IsString(type)) {
        snprintf(why, cap, "control message without a \"type\" string");
    } else {
        for (int i = 0; i < 4 && t == CTL_BAD; i++)
            if (!strcmp(type->valuestring, names[i])) t = types[i];
        if (t == CTL_BAD)
            snprintf(why, cap, "unknown control message type '%.40s'", type->valuestring);
        else if (t == CTL_START && !parse_start(j, st, why, cap))
            t = CTL_BAD_START;
    }
    cJSON_Delete(j);
    return t;
}

const char *stream_control_name(ctl_type t)
{
    switch (t) {
    case CTL_START:
    case CTL_BAD_START: return "start";
    case CTL_FLUSH: return "flush";
    case CTL_END: return "end";
    case CTL_INTERRUPT: return "interrupt";
    default: return "?";
    }
}

/* [loop] Drops everything of s not yet sent: queued audio, queued frames,
 * and the batch a worker may be computing (its frames carry an old epoch).
 * Events stay. Lock held. */
static void stream_drop_pending_locked(stream *s)
{
    s->epoch++;
    s->audio_in.len = 0;
    s->want_flush = 0;
    msg **pp = &s->out_head, *keep = NULL, **kt = &keep;
    while (*pp) {
        msg *m = *pp;
        *pp = m->next;
        if (m->binary) {
            s->out_frames--;
            atomic_fetch_sub(&s->c.srv->frames_queued, 1);
            stream_msg_put(s, m);
        } else {
            m->next = NULL;
            *kt = m;
            kt = &m->next;
        }
    }
    s->out_head = keep;
    s->out_tail = NULL;
    for (msg *m = keep; m; m = m->next) s->out_tail = m;
    if (s->session) ls_session_interrupt(s->session);
}

/* [loop] One complete JSON control message. */
static void stream_control(stream *s, const char *text, size_t len)
{
    char why[160];
    stream_start st;
    ctl_type t = stream_parse_control(text, len, &st, why, sizeof why);
    pthread_mutex_lock(&s->c.lock);
    if (t == CTL_BAD) {
        stream_error_locked(s, "%s", why);
    } else if (t == CTL_START || t == CTL_BAD_START) {
        if (s->started)
            stream_error_locked(s, "start: the stream has already started");
        else if (t == CTL_BAD_START)
            stream_error_locked(s, "%s", why);
        else {
            s->start = st;
            s->started = 1;
            s->want_start = 1;
            stream_schedule_locked(s);
        }
    } else if (!s->started || s->ended) {
        stream_error_locked(s, "%s: %s", stream_control_name(t),
                            s->ended ? "the stream has ended" : "send start first");
    } else if (t == CTL_FLUSH) {
        s->want_flush = 1;
        stream_schedule_locked(s);
    } else if (t == CTL_END) {
        s->ended = 1;
        s->want_end = 1;
        stream_schedule_locked(s);
    } else { /* CTL_INTERRUPT */
        stream_drop_pending_locked(s);
        s->pacing = 0;
        stream_queue_event_locked(s, "{\"type\":\"interrupted\"}");
    }
    pthread_mutex_unlock(&s->c.lock);
    conn_notify(&s->c);
}

/* [loop] Pauses reading while the worker or the client lags behind. */
static void stream_flow(stream *s)
{
    pthread_mutex_lock(&s->c.lock);
    int full = s->audio_in.len > INBOX_PAUSE_BYTES || s->out_frames > OUTBOX_PAUSE_FRAMES;
    pthread_mutex_unlock(&s->c.lock);
    if (full != s->rx_paused && s->c.wsi) {
        lws_rx_flow_control(s->c.wsi, full ? 0 : 1);
        s->rx_paused = full;
    }
}

static int stream_receive(stream *s, struct lws *wsi, const void *in, size_t len)
{
    s->last_rx = ls_now();
    if (lws_frame_is_binary(wsi)) {
        pthread_mutex_lock(&s->c.lock);
        if (!s->started || s->ended) {
            stream_error_locked(s, "audio %s", s->ended ? "after end" : "before start");
        } else if (ls_buf_append(&s->audio_in, in, len)) {
            stream_error_locked(s, "out of memory for audio");
        } else {
            s->audio_in_t = s->last_rx;
            stream_schedule_locked(s);
        }
        pthread_mutex_unlock(&s->c.lock);
        stream_flow(s);
        conn_notify(&s->c);
        return 0;
    }
    if (!s->text_open) { /* the first bytes of a message */
        s->text_open = 1;
        s->text_in.len = 0;
        s->text_overflow = 0;
    }
    if (s->text_in.len + len > TEXT_MSG_MAX)
        s->text_overflow = 1;
    else
        ls_buf_append(&s->text_in, in, len);
    /* lws hands over a frame in pieces as the bytes arrive: a message is
     * whole at the final fragment's last byte. */
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    s->text_open = 0;
    if (s->text_overflow) {
        pthread_mutex_lock(&s->c.lock);
        stream_error_locked(s, "control message longer than %d bytes", TEXT_MSG_MAX);
        pthread_mutex_unlock(&s->c.lock);
        conn_notify(&s->c);
        return 0;
    }
    stream_control(s, (const char *)s->text_in.data, s->text_in.len);
    return 0;
}

/* [loop] Sends the next outbox message; live streams wait for its time. */
static int stream_writable(stream *s, struct lws *wsi)
{
    ls_server *srv = s->c.srv;
    pthread_mutex_lock(&s->c.lock);
    msg *m = s->out_head;
    if (!m) {
        int close = s->close_when_sent, going_away = s->going_away;
        pthread_mutex_unlock(&s->c.lock);
        if (close && going_away) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"draining", 8);
            return -1;
        }
        if (close) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
            return -1;
        }
        stream_flow(s);
        return 0;
    }
    double now = ls_now();
    if (m->binary && s->cfg.live) {
        if (!s->pacing) {
            s->pacing = 1;
            s->pace_t0 = now;
            s->pace_i0 = m->frame_index;
        }
        double due = s->pace_t0 + (double)(m->frame_index - s->pace_i0) / 25.0;
        if (due > now + 0.001) {
            pthread_mutex_unlock(&s->c.lock);
            lws_set_timer_usecs(wsi, (lws_usec_t)((due - now) * 1e6));
            return 0;
        }
    }
    s->out_head = m->next;
    if (!s->out_head) s->out_tail = NULL;
    if (m->binary) {
        s->out_frames--;
        atomic_fetch_sub(&srv->frames_queued, 1);
    }
    pthread_mutex_unlock(&s->c.lock);

    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (m->binary) {
        ls_metrics_add(srv->metrics, LS_M_FRAMES_SENT, 1);
        ls_metrics_observe_frame_latency(srv->metrics, now - m->audio_t);
    }
    pthread_mutex_lock(&s->c.lock);
    stream_msg_put(s, m);
    int more = s->out_head != NULL || s->close_when_sent;
    pthread_mutex_unlock(&s->c.lock);
    if (n < (int)m->len) return -1;
    if (more) lws_callback_on_writable(wsi);
    stream_flow(s);
    return 0;
}

static void stream_closed(ls_server *srv, stream *s)
{
    streams_remove(srv, s);
    pthread_mutex_lock(&s->c.lock);
    s->c.wsi = NULL;
    atomic_store(&s->c.closed, 1);
    /* Stop compute for a client that is gone. */
    if (s->session) ls_session_interrupt(s->session);
    pthread_mutex_unlock(&s->c.lock);
    atomic_fetch_sub(&srv->active_streams, 1);
    conn_unref(&s->c);
}

/* Every second: close streams idle longer than idle_timeout_s. */
static void idle_scan(lws_sorted_usec_list_t *sul)
{
    ls_server *srv = lws_container_of(sul, ls_server, idle_sul);
    double now = ls_now();
    for (int i = 0; i < srv->n_streams; i++) {
        stream *s = srv->streams[i];
        pthread_mutex_lock(&s->c.lock);
        int busy = s->scheduled || s->out_head;
        if (!busy && !s->close_when_sent && now - s->last_rx > srv->cfg.idle_timeout_s) {
            stream_error_locked(s, "idle for more than %d s: closing", srv->cfg.idle_timeout_s);
            s->close_when_sent = 1;
            if (s->c.wsi) lws_callback_on_writable(s->c.wsi);
        }
        pthread_mutex_unlock(&s->c.lock);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->idle_sul, idle_scan, LWS_US_PER_SEC);
}

/* ---- graceful drain ---- */

/* Past the deadline, how long the streams' error events and closes may
 * take to go out before the loop stops anyway (a client that reads
 * nothing would otherwise hold the process). */
#define DRAIN_CLOSE_GRACE_S 2.0
#define DRAIN_CHECK_US (100 * LWS_US_PER_MS)

/* [loop] The drain's deadline for one stream: what is not yet sent goes,
 * compute stops, and the client gets an error event, then close 1001. */
static void stream_go_away(stream *s)
{
    pthread_mutex_lock(&s->c.lock);
    stream_drop_pending_locked(s);
    s->want_end = 0;
    s->ended = 1; /* later control messages are errors, not work */
    stream_error_locked(s, "server shutting down: the stream outlasted drain_timeout_s (%d s)",
                        s->c.srv->cfg.drain_timeout_s);
    s->close_when_sent = 1;
    s->going_away = 1;
    pthread_mutex_unlock(&s->c.lock);
    if (s->c.wsi) lws_callback_on_writable(s->c.wsi);
}

/* [loop] Every DRAIN_CHECK_US while draining: stops the loop once no
 * stream or job is left, closes what is left at the deadline. */
static void drain_check(lws_sorted_usec_list_t *sul)
{
    ls_server *srv = lws_container_of(sul, ls_server, drain_sul);
    double now = ls_now();
    /* Jobs count until their answer is sent (http_req_free), streams until
     * their socket closes (stream_closed). */
    if (atomic_load(&srv->active_streams) + atomic_load(&srv->unsent_jobs) == 0 ||
        (srv->draining == 2 && now >= srv->drain_stop_at)) {
        ls_server_stop(srv);
        return;
    }
    if (srv->draining == 1 && now >= srv->drain_deadline) {
        srv->draining = 2;
        srv->drain_stop_at = now + DRAIN_CLOSE_GRACE_S;
        for (int i = 0; i < srv->n_streams; i++) stream_go_away(srv->streams[i]);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->drain_sul, drain_check, DRAIN_CHECK_US);
}

/* [loop] ls_server_drain's request, taken on the loop's wake-up. */
static void drain_begin(ls_server *srv)
{
    if (srv->draining || !atomic_load(&srv->drain_requested)) return;
    srv->draining = 1;
    srv->drain_deadline = ls_now() + srv->cfg.drain_timeout_s;
    drain_check(&srv->drain_sul);
}

/* ---- requests lws's HTTP parser gives up on ---- */

typedef enum raw_state { RAW_NONE, RAW_SENT, RAW_DRAIN } raw_state;

typedef struct pss {
    conn *c;
    raw_state raw; /* a raw socket lws fell back to (raw_reject) */
} pss;

#define RAW_ANSWER_MAX 640

static int is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* [loop] The answer to a request whose first line lws's parser refused (an
 * unknown method, not HTTP, the HTTP/2 preface) or the CONNECT method; lws
 * then hands the connection over as a raw socket, with the bytes of that
 * read (in): 405 for a well-formed HTTP/1.x line, 505 for another version
 * ("PRI * HTTP/2.0"), 400 for anything else. Writes the whole HTTP answer
 * to out (RAW_ANSWER_MAX bytes); returns its length, 0 if it failed. */
static size_t raw_reject(ls_server *srv, const unsigned char *in, size_t len, char *out)
{
    size_t eol = 0;
    while (eol < len && in[eol] != '\r' && in[eol] != '\n') eol++;
    size_t m = 0; /* method */
    while (m < eol && is_tchar(in[m])) m++;
    size_t t = m + 1; /* target */
    while (t < eol && in[t] > ' ' && in[t] < 0x7f) t++;
    const unsigned char *v = in + t + 1; /* version */
    int well_formed = m > 0 && m < eol && in[m] == ' ' && t > m + 1 && t + 9 == eol &&
                      in[t] == ' ' && !memcmp(v, "HTTP/", 5) && isdigit(v[5]) && v[6] == '.' &&
                      isdigit(v[7]);
    int status;
    const char *reason, *allow = "";
    char text[160];
    if (well_formed && v[5] != '1') {
        status = 505;
        reason = "HTTP Version Not Supported";
        snprintf(text, sizeof text, "HTTP/%c.%c is not supported: this server speaks HTTP/1.1",
                 v[5], v[7]);
    } else if (well_formed) {
        status = 405;
        reason = "Method Not Allowed";
        allow = "allow: GET, POST, DELETE\r\n";
        snprintf(text, sizeof text, "method %.*s is not allowed (GET, POST, DELETE)",
                 (int)(m < 32 ? m : 32), (const char *)in);
    } else {
        status = 400;
        reason = "Bad Request";
        snprintf(text, sizeof text, "%s",
                 len >= 3 && in[0] == 0x16 && in[1] == 3
                     ? "TLS on a plain HTTP port: use http://, not https://"
                     : "malformed HTTP request line");
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", text);
    cJSON_AddNumberToObject(j, "status", status);
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int n = snprintf(out, RAW_ANSWER_MAX,
                     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n%s"
                     "connection: close\r\n\r\n%s\n",
                     status, reason, body ? strlen(body) + 1 : 0, allow, body ? body : "");
    cJSON_free(body);
    ls_metrics_add(srv->metrics, LS_M_ERRORS, 1);
    if (srv->cfg.verbose) lwsl_user("%d (raw) %s\n", status, text);
    return n > 0 && n < RAW_ANSWER_MAX ? (size_t)n : 0;
}

/* [loop] The raw socket's side: the answer at once (a client that sent its
 * request and shut its side down would have the socket closed at the end
 * of its bytes, before a writable callback), then a lingering close: our
 * side is shut once lws has sent it all, the client reads the answer and
 * closes, and its bytes are read and dropped until then (closing with them
 * unread would reset the connection, which can lose the answer). */
static int raw_callback(ls_server *srv, struct lws *wsi, enum lws_callback_reasons reason,
                        pss *p, void *in, size_t len)
{
    if (!p) return -1;
    if (reason == LWS_CALLBACK_RAW_RX && p->raw == RAW_NONE) {
        unsigned char buf[LWS_PRE + RAW_ANSWER_MAX];
        size_t n = raw_reject(srv, in, in ? len : 0, (char *)buf + LWS_PRE);
        if (!n || lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_RAW) != (int)n) return -1;
        p->raw = RAW_SENT;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 10);
        lws_callback_on_writable(wsi); /* once lws has sent it all */
    } else if (reason == LWS_CALLBACK_RAW_WRITEABLE && p->raw == RAW_SENT) {
        shutdown(lws_get_socket_fd(wsi), SHUT_WR);
        p->raw = RAW_DRAIN;
    }
    return 0;
}

/* ---- the callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    ls_server *srv = lws_context_user(lws_get_context(wsi));
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain_ready(srv);
        drain_begin(srv);
        return 0;

    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
        return raw_callback(srv, wsi, reason, p, in, len);

    case LWS_CALLBACK_HTTP: {
        if (p->c) { /* the previous request on a kept-alive connection */
            conn *old = p->c;
            p->c = NULL;
            old->wsi = NULL;
            atomic_store(&old->closed, 1);
            conn_unref(old);
        }
        http_req *r = calloc(1, sizeof *r);
        if (!r) return -1;
        conn_init(&r->c, CONN_HTTP, srv);
        r->c.wsi = wsi;
        p->c = &r->c;
        char uri[512];
        snprintf(uri, sizeof uri, "%.*s", (int)len, (const char *)in);
        int rc = http_begin(srv, wsi, r, uri);
        if (rc == 1) http_dispatch(srv, wsi, r);
        return rc < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_HTTP_BODY: {
        http_req *r = p && p->c ? (http_req *)p->c : NULL;
        /* lws calls with no bytes for a Content-Length of 0, after dispatch. */
        if (!r || r->ignore_body || !len) return 0;
        /* More than Content-Length (lws bug or liar), or after dispatch. */
        if (r->dispatched || len > r->body_expected - r->body_got) return -1;
        r->body_got += len;
        if (!r->discard_body) ls_buf_append(&r->body, in, len); /* within what was reserved */
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        http_req *r = p && p->c ? (http_req *)p->c : NULL;
        if (!r || r->ignore_body) return 0;
        if (r->body_got != r->body_expected) {
            http_set_error(r, 400, "body ended after %zu of %zu bytes", r->body_got,
                           r->body_expected);
            r->close_after = 1;
            atomic_store(&r->ready, 1);
            lws_callback_on_writable(wsi);
            return 0;
        }
        http_dispatch(srv, wsi, r);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        http_req *r = p && p->c ? (http_req *)p->c : NULL;
        if (!r || !atomic_load(&r->ready) || r->serving_file) return 0;
        return http_write(wsi, r);
    }
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* lws rebinds (and zeroes) pss per transaction */
        if (p && p->c && p->c->kind == CONN_HTTP) {
            conn *c = p->c;
            p->c = NULL;
            c->wsi = NULL;
            atomic_store(&c->closed, 1);
            conn_unref(c);
        }
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* lws asks for "websocket" and "h2c" only (it answers any other
         * Upgrade with its 403 page before calling us); it cannot ignore
         * the header and serve HTTP/1.1 instead, so h2c gets an error. */
        if (!in || strcasecmp(in, "websocket"))
            return refuse_upgrade(srv, wsi, 400, "Upgrade: %.20s is not supported: WebSocket only",
                                  in ? (const char *)in : "?");
        return confirm_upgrade(srv, wsi);

    case LWS_CALLBACK_ESTABLISHED: {
        /* The HTTP request object of the upgrade, if any, is done with. */
        if (p->c) {
            conn *old = p->c;
            p->c = NULL;
            old->wsi = NULL;
            conn_unref(old);
        }
        char id[LS_MODEL_ID_MAX + 8] = "";
        get_arg(wsi, "model=", id, sizeof id);
        stream *s = stream_create(srv, id);
        if (!s) return -1;
        s->c.wsi = wsi;
        s->last_rx = ls_now();
        p->c = &s->c;
        atomic_fetch_add(&srv->active_streams, 1);
        ls_metrics_add(srv->metrics, LS_M_SESSIONS_TOTAL, 1);
        streams_add(srv, s);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        if (!p->c || p->c->kind != CONN_STREAM) return -1;
        return stream_receive((stream *)p->c, wsi, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_TIMER:
        if (!p->c || p->c->kind != CONN_STREAM) return 0;
        return stream_writable((stream *)p->c, wsi);

    case LWS_CALLBACK_CLOSED:
        if (p->c && p->c->kind == CONN_STREAM) {
            stream *s = (stream *)p->c;
            p->c = NULL;
            stream_closed(srv, s);
        }
        return 0;

    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"lipsync", callback, sizeof(pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifetime ---- */

static int preload(ls_server *srv, ls_error *err)
{
    char list[LS_CONFIG_STR_MAX];
    snprintf(list, sizeof list, "%s", srv->cfg.preload);
    for (char *save = NULL, *id = strtok_r(list, ", ", &save); id;
         id = strtok_r(NULL, ", ", &save)) {
        int rc = ls_registry_load(srv->registry, id, err);
        if (rc) return rc;
    }
    return LS_OK;
}

int ls_server_create(const ls_server_config *config, ls_server **out, ls_error *err)
{
    *out = NULL;
    ls_server *srv = calloc(1, sizeof *srv);
    if (!srv) return ls_error_set(err, LS_ERR_NOMEM, "server: out of memory");
    srv->cfg = *config;
    srv->started_at = ls_now();
    pthread_mutex_init(&srv->ready_lock, NULL);
    int rc = LS_OK;
    srv->metrics = ls_metrics_create();
    if (!srv->metrics) rc = ls_error_set(err, LS_ERR_NOMEM, "server: out of memory");
    if (!rc && !(srv->pool = ls_pool_create(config->threads, err))) rc = LS_ERR_NOMEM;
    /* Jobs run to completion on a worker each: they may hold at most
     * workers - 1, so one is always there for the streams (workq.h). */
    int jobs_cap = config->workers > 1 ? config->workers - 1 : 1;
    srv->max_jobs = config->max_jobs ? config->max_jobs : jobs_cap;
    if (!rc && srv->max_jobs > jobs_cap)
        rc = ls_error_set(err, LS_ERR_RANGE,
                          "max_jobs %d leaves no worker for streams: at most workers - 1 (%d)",
                          srv->max_jobs, jobs_cap);
    if (!rc) rc = ls_workq_create(config->workers, srv->max_jobs, &srv->workq, err);
    if (!rc) {
        srv->loader.pool = srv->pool;
        srv->loader.options.batch = config->batch;
        ls_precision prec = LS_PREC_FP32;
        rc = ls_precision_parse(config->precision, &prec, err);
        srv->loader.options.precision = prec;
    }
    if (!rc) {
        ls_registry_options ro = {config->models_root, config->max_models,
                                  ls_registry_pipeline_ops(&srv->loader)};
        rc = ls_registry_create(&ro, &srv->registry, err);
    }
    if (!rc) rc = preload(srv, err);
    if (!rc) {
        lws_set_log_level(config->verbose > 1 ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_USER
                          : config->verbose ? LLL_ERR | LLL_USER
                                            : LLL_ERR,
                          NULL);
        struct lws_context_creation_info info;
        memset(&info, 0, sizeof info);
        info.port = config->port;
        info.iface = config->host;
        info.protocols = protocols;
        info.user = srv;
        info.timeout_secs = (unsigned)config->idle_timeout_s;
        info.max_http_header_data = HTTP_HEAD_MAX;
        for (int i = 0; i < (int)WSI_TOKEN_COUNT; i++)
            srv->token_limits.token_limit[i] = HTTP_FIELD_MAX;
        info.token_limits = &srv->token_limits;
        /* A first line lws's parser cannot take (an unknown method, garbage,
         * the HTTP/2 preface) turns the connection into a raw socket of our
         * protocol instead of lws's 403 page: raw_reject answers it. */
        info.listen_accept_role = "raw-skt";
        info.listen_accept_protocol = protocols[0].name;
        info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6 |
                       LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG;
        srv->ctx = lws_create_context(&info);
        if (!srv->ctx)
            rc = ls_error_set(err, LS_ERR_IO, "cannot listen on %s:%d (in use, or bad address)",
                              config->host, config->port);
    }
    if (!rc) {
        struct lws_vhost *vh = lws_get_vhost_by_name(srv->ctx, "default");
        srv->port = vh ? lws_get_vhost_listen_port(vh) : config->port;
        lws_sul_schedule(srv->ctx, 0, &srv->idle_sul, idle_scan, LWS_US_PER_SEC);
    }
    if (rc) {
        ls_server_destroy(srv);
        return rc;
    }
    *out = srv;
    return LS_OK;
}

int ls_server_run(ls_server *srv)
{
    while (!atomic_load(&srv->stopping))
        if (lws_service(srv->ctx, 0) < 0) return LS_ERR_IO;
    return LS_OK;
}

void ls_server_stop(ls_server *srv)
{
    atomic_store(&srv->stopping, 1);
    if (srv->ctx) lws_cancel_service(srv->ctx);
}

void ls_server_drain(ls_server *srv)
{
    /* The loop owns every socket and the session counts: it begins the
     * drain itself when woken (drain_begin). */
    atomic_store(&srv->drain_requested, 1);
    if (srv->ctx) lws_cancel_service(srv->ctx);
}

int ls_server_port(const ls_server *srv)
{
    return srv->port;
}

void ls_server_destroy(ls_server *srv)
{
    if (!srv) return;
    /* Closing the context closes every socket (streams get CLOSED and drop
     * their loop references); then the workers finish what they hold. */
    if (srv->ctx) {
        lws_sul_cancel(&srv->idle_sul);
        lws_sul_cancel(&srv->drain_sul);
        lws_context_destroy(srv->ctx);
    }
    ls_workq_destroy(srv->workq);
    /* Workers may have queued conns for a loop that no longer runs. */
    pthread_mutex_lock(&srv->ready_lock);
    conn *c = srv->ready_head;
    srv->ready_head = NULL;
    pthread_mutex_unlock(&srv->ready_lock);
    while (c) {
        conn *next = c->ready_next;
        conn_unref(c);
        c = next;
    }
    ls_registry_destroy(srv->registry);
    ls_pool_destroy(srv->pool);
    ls_metrics_destroy(srv->metrics);
    free(srv->streams);
    pthread_mutex_destroy(&srv->ready_lock);
    free(srv);
}
