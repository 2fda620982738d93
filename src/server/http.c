/* http.c - the HTTP routes, bodies and answers (http.h). */
#include "server/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "server/request.h"
#include "server/router.h"
#include "server/webrtc.h"

#define WRITE_CHUNK 65536

typedef struct http_req {
    ls_conn c;
    ls_env *env;
    ls_job job;              /* [loop], but [work] while the job runs */
    ls_response resp;        /* the answer: as job */
    int holds_slot;          /* counts against max_sessions and max_jobs */
    int holds_stream;        /* a WebRTC offer's session slot, until its job takes it */
    int unsent;              /* counts in env->unsent_jobs */
    size_t body_expected;    /* [loop] its Content-Length */
    size_t body_got;         /* [loop] bytes of it received */
    int discard_body;        /* [loop] read the body but keep none of it */
    int ignore_body;         /* [loop] an answer is already decided */
    int dispatched;          /* [loop] the job was queued */
    int ready;               /* [loop] resp is final: send it */
    int headers_sent;        /* [loop] */
    size_t sent;             /* [loop] body bytes sent */
    int serving_file;        /* [loop] lws sends a file of the client */
    char method[8], path[128]; /* [loop] for the verbose log */
    double t0;               /* [loop] when the request head arrived */
} http_req;

/* Gives back the job's max_jobs / max_sessions slot. Done when the job's
 * work ends, before its answer is sent: a client that has read one answer
 * finds that job's slot free for its next request. */
static void release_slot(http_req *r)
{
    if (r->holds_slot) atomic_fetch_sub(&r->env->active_jobs, 1);
    r->holds_slot = 0;
}

static void http_req_free(ls_conn *c)
{
    http_req *r = (http_req *)c;
    release_slot(r);
    if (r->holds_stream) atomic_fetch_sub(&r->env->active_streams, 1);
    if (r->unsent) atomic_fetch_sub(&r->env->unsent_jobs, 1);
    ls_job_body_release(r->env, &r->job);
    ls_buf_free(&r->resp.body);
    free(r);
}

static const ls_conn_ops http_ops = {NULL, http_req_free};

static http_req *req_of(ls_socket *sock)
{
    return sock && sock->conn && sock->conn->ops == &http_ops ? (http_req *)sock->conn : NULL;
}

/* ---- the answer ---- */

static void set_error(http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(http_req *r, int status, const char *fmt, ...)
{
    char text[LS_ERROR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ls_response_error(r->env, &r->resp, status, "%s", text);
}

/* Writes the next piece of a ready answer; <0 closes. */
static int http_write(struct lws *wsi, http_req *r)
{
    unsigned char buf[LWS_PRE + WRITE_CHUNK];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    ls_response *a = &r->resp;
    if (!r->headers_sent) {
        if (lws_add_http_common_headers(wsi, (unsigned)a->status, a->content_type, a->body.len,
                                        &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end))
            return -1;
        if (a->disposition[0] &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
                                        (const unsigned char *)a->disposition,
                                        (int)strlen(a->disposition), &p, end))
            return -1;
        if (a->allow[0] &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                        (const unsigned char *)a->allow, (int)strlen(a->allow),
                                        &p, end))
            return -1;
        if (a->location[0] &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"location:",
                                        (const unsigned char *)a->location,
                                        (int)strlen(a->location), &p, end))
            return -1;
        if (a->close_after &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                        (const unsigned char *)"close", 5, &p, end))
            return -1;
        if (a->retry_after_s > 0 && ls_request_add_retry_after(wsi, a->retry_after_s, &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
        r->headers_sent = 1;
        ls_metrics_add(r->env->metrics, LS_M_REQUESTS, 1);
        if (r->env->cfg.verbose)
            lwsl_user("%s %s %d %zu bytes %.1f ms\n", r->method, r->path, a->status, a->body.len,
                      (ls_now() - r->t0) * 1e3);
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t left = a->body.len - r->sent;
    size_t n = left < WRITE_CHUNK ? left : WRITE_CHUNK;
    int last = n == left;
    if (n) memcpy(start, a->body.data + r->sent, n);
    if (lws_write(wsi, start, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    r->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (a->close_after) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- the routes ---- */

/* What a handler decided. */
typedef enum next_step {
    ANSWER,      /* resp is the answer; a body that follows is read and dropped */
    REJECT_BODY, /* resp is the answer, the body is not read: close after it */
    WAIT_BODY,   /* a job, queued when its body is complete */
    DISPATCH,    /* a job without a body: queue it now */
    SERVING,     /* lws serves a file */
    FAIL         /* close the connection */
} next_step;

typedef struct http_call {
    ls_env *env;
    struct lws *wsi;
    http_req *r;
    const char *method, *path;
    const char *param; /* the route's {} segment, or "" */
} http_call;

typedef next_step (*handler_fn)(http_call *call);

typedef struct http_route {
    ls_route route;
    handler_fn handler;
    int public;       /* no token needed */
    ls_job_kind job;  /* the job it runs, or LS_JOB_NONE */
} http_route;

static next_step h_health(http_call *call);
static next_step h_web(http_call *call);
static next_step h_metrics(http_call *call);
static next_step h_models(http_call *call);
static next_step h_stream(http_call *call);
static next_step h_job(http_call *call);
static next_step h_webrtc(http_call *call);
static next_step content_length(http_call *call, int optional, int64_t *len);
static next_step admit_body(http_call *call, int64_t len);

static const http_route routes[] = {
    {{"GET", "/health"}, h_health, 1, LS_JOB_NONE},
    {{"GET", "/"}, h_web, 1, LS_JOB_NONE},
    {{"GET", "/index.html"}, h_web, 1, LS_JOB_NONE},
    {{"GET", "/app.js"}, h_web, 1, LS_JOB_NONE},
    {{"GET", "/style.css"}, h_web, 1, LS_JOB_NONE},
    {{"GET", "/favicon.svg"}, h_web, 1, LS_JOB_NONE},
    {{"GET", "/favicon.ico"}, h_web, 1, LS_JOB_NONE},
    {{"GET", "/metrics"}, h_metrics, 0, LS_JOB_NONE},
    {{"GET", "/v1/models"}, h_models, 0, LS_JOB_NONE},
    {{"GET", "/v1/stream"}, h_stream, 0, LS_JOB_NONE},
    {{"POST", "/v1/models/{}/load"}, h_job, 0, LS_JOB_LOAD},
    {{"DELETE", "/v1/models/{}"}, h_job, 0, LS_JOB_UNLOAD},
    {{"POST", "/v1/render"}, h_job, 0, LS_JOB_RENDER},
    {{"POST", "/v1/batch"}, h_job, 0, LS_JOB_BATCH},
    {{"POST", "/v1/webrtc"}, h_webrtc, 0, LS_JOB_WEBRTC},
    {{"DELETE", "/v1/webrtc/{}"}, h_webrtc, 0, LS_JOB_WEBRTC_END},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static void find_route(const char *method, const char *path, char *id, ls_route_match *m)
{
    ls_route_find(routes, N_ROUTES, sizeof routes[0], method, path, id, LS_MODEL_ID_MAX + 1, m);
}

ls_job_kind ls_http_job_route(const char *method, const char *path, char *id, int *too_long)
{
    ls_route_match m;
    find_route(method, path, id, &m);
    *too_long = m.result == LS_ROUTE_PARAM_TOO_LONG && routes[m.index].job != LS_JOB_NONE;
    return m.result == LS_ROUTE_MATCH ? routes[m.index].job : LS_JOB_NONE;
}

static char *health_json(ls_env *env)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", env->draining ? "draining" : "ok");
    if (env->draining) {
        double left = env->drain_deadline - ls_now();
        cJSON_AddNumberToObject(j, "drain_left_s", left > 0 ? left : 0);
    }
    cJSON_AddStringToObject(j, "version", LS_VERSION);
    cJSON_AddNumberToObject(j, "uptime_s", ls_now() - env->started_at);
    cJSON_AddNumberToObject(j, "sessions", atomic_load(&env->active_streams));
    cJSON_AddNumberToObject(j, "jobs", atomic_load(&env->active_jobs));
    cJSON_AddNumberToObject(j, "max_sessions", env->cfg.max_sessions);
    cJSON_AddNumberToObject(j, "max_jobs", env->max_jobs);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static next_step h_health(http_call *call)
{
    /* 503 while draining: health checks take the instance out. */
    int draining = call->env->draining != 0;
    char *s = health_json(call->env);
    ls_response_json(&call->r->resp, draining ? 503 : 200,
                     s ? s : draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}");
    cJSON_free(s);
    return ANSWER;
}

/* The browser client's files: a fixed list, so no path reaches elsewhere.
 * They hold no data and the browser fetches them without headers, so they
 * are public; every API call they make needs the token. */
static const struct {
    const char *url, *file, *mime;
} web_files[] = {
    {"/", "index.html", "text/html"},
    {"/index.html", "index.html", "text/html"},
    {"/app.js", "app.js", "application/javascript"},
    {"/style.css", "style.css", "text/css"},
    {"/favicon.svg", "favicon.svg", "image/svg+xml"},
    /* What browsers ask for unprompted: the same icon (they go by its type). */
    {"/favicon.ico", "favicon.svg", "image/svg+xml"},
};

static next_step h_web(http_call *call)
{
    const ls_env *env = call->env;
    for (size_t i = 0; i < sizeof web_files / sizeof web_files[0]; i++) {
        if (strcmp(call->path, web_files[i].url)) continue;
        char path[LS_CONFIG_STR_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", env->cfg.web_root, web_files[i].file);
        struct stat st;
        if (!env->cfg.web_root[0] || stat(path, &st) != 0) break;
        call->r->serving_file = 1;
        if (env->cfg.verbose) lwsl_user("GET %s 200 file %s\n", call->path, web_files[i].file);
        int n = lws_serve_http_file(call->wsi, path, web_files[i].mime, NULL, 0);
        if (n < 0) return FAIL;
        if (n > 0 && lws_http_transaction_completed(call->wsi)) return FAIL;
        return SERVING;
    }
    set_error(call->r, 404, "no such endpoint: %.200s", call->path);
    return ANSWER;
}

static next_step h_metrics(http_call *call)
{
    ls_env *env = call->env;
    ls_metrics_gauges g = {0};
    g.sessions_active = atomic_load(&env->active_streams);
    g.jobs_active = atomic_load(&env->active_jobs);
    ls_workq_stats ws;
    ls_workq_get_stats(env->workq, &ws);
    g.queue_depth = ws.queued[LS_TASK_STREAM] + ws.queued[LS_TASK_JOB];
    g.workers_busy = ws.running[LS_TASK_STREAM] + ws.running[LS_TASK_JOB];
    g.job_tasks_queued = ws.queued[LS_TASK_JOB];
    g.job_tasks_running = ws.running[LS_TASK_JOB];
    g.frames_queued = atomic_load(&env->frames_queued);
    g.events_queued = atomic_load(&env->events_queued);
    g.body_bytes = atomic_load(&env->body_bytes);
    ls_registry_stats st;
    ls_registry_get_stats(env->registry, &st);
    g.models_resident = st.resident;
    g.models_loading = st.loading;
    g.models_bytes = st.resident_bytes;
    g.model_loads = st.loads;
    g.model_evictions = st.evictions;
    g.model_load_failures = st.load_failures;
    char *text = ls_metrics_render(env->metrics, &g);
    ls_response *a = &call->r->resp;
    if (!text) {
        set_error(call->r, 500, "metrics: out of memory");
        return ANSWER;
    }
    a->status = 200;
    snprintf(a->content_type, sizeof a->content_type, "text/plain; version=0.0.4");
    ls_buf_append(&a->body, text, strlen(text));
    free(text);
    return ANSWER;
}

static next_step h_models(http_call *call)
{
    ls_env *env = call->env;
    ls_registry_entry list[256];
    int n = ls_registry_list(env->registry, list, 256);
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "models");
    for (int i = 0; i < n && i < 256; i++)
        cJSON_AddItemToArray(arr, ls_model_entry_json(&list[i]));
    cJSON_AddNumberToObject(j, "max_models", env->cfg.max_models);
    char *s = cJSON_PrintUnformatted(j);
    ls_response_json(&call->r->resp, 200, s ? s : "{}");
    cJSON_free(s);
    cJSON_Delete(j);
    return ANSWER;
}

static next_step h_stream(http_call *call)
{
    set_error(call->r, 426, "/v1/stream wants a WebSocket upgrade");
    return ANSWER;
}

int ls_http_parse_job_args(ls_job *job, ls_http_arg_fn get, void *ctx, char *why, size_t cap)
{
    char v[128];
    int a = get(ctx, "model=", job->model, sizeof job->model);
    if (a < 0) {
        snprintf(why, cap, "model id too long (at most %d bytes)", LS_MODEL_ID_MAX);
        return -1;
    }
    if (!a || !job->model[0]) {
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
    job->start_frame = 0;
    if (get(ctx, "start_frame=", v, sizeof v) > 0 &&
        !ls_parse_i64(v, 0, INT64_C(1) << 40, &job->start_frame)) {
        snprintf(why, cap, "start_frame wants an integer >= 0, got '%s'", v);
        return -1;
    }
    if (job->kind == LS_JOB_RENDER) {
        snprintf(job->output, sizeof job->output, "mp4");
        if (get(ctx, "output=", v, sizeof v) > 0) {
            if (strcmp(v, "mp4") && strcmp(v, "mjpeg") && strcmp(v, "jpeg-zip")) {
                snprintf(why, cap, "output wants mp4, mjpeg or jpeg-zip, got '%s'", v);
                return -1;
            }
            snprintf(job->output, sizeof job->output, "%.15s", v);
        }
    } else {
        int64_t b = 0;
        if (get(ctx, "batch_size=", v, sizeof v) <= 0 || !ls_parse_i64(v, 1, 32, &b)) {
            snprintf(why, cap, "batch_size wants an integer in 1..32");
            return -1;
        }
        job->batch_size = (int)b;
        job->multipart = get(ctx, "format=", v, sizeof v) > 0 && !strcmp(v, "multipart");
    }
    return 0;
}

/* ls_http_arg_fn over lws's query arguments (ctx: the wsi). */
static int lws_arg(void *wsi, const char *name, char *buf, int cap)
{
    return ls_request_arg(wsi, name, buf, cap);
}

/* A job's request: its arguments, then its body's admission from the
 * head, before a byte of the body is read. */
static next_step h_job(http_call *call)
{
    ls_env *env = call->env;
    http_req *r = call->r;
    ls_job *job = &r->job;
    struct lws *wsi = call->wsi;
    int render_or_batch = job->kind == LS_JOB_RENDER || job->kind == LS_JOB_BATCH;
    if (render_or_batch && env->draining) {
        set_error(r, 503, LS_DRAINING_MSG);
        return REJECT_BODY;
    }
    if (!render_or_batch) {
        snprintf(job->model, sizeof job->model, "%s", call->param);
    } else {
        char why[LS_ERROR_MSG_MAX];
        if (ls_http_parse_job_args(job, lws_arg, wsi, why, sizeof why)) {
            set_error(r, 400, "%s", why);
            return REJECT_BODY;
        }
        if (job->kind == LS_JOB_BATCH && !job->multipart && ls_request_accepts_multipart(wsi))
            job->multipart = 1;
    }
    if (strcmp(call->method, "POST")) return DISPATCH; /* DELETE: no body */
    int64_t len;
    next_step bad = content_length(call, job->kind == LS_JOB_LOAD, &len);
    if (bad != WAIT_BODY) return bad;
    if (render_or_batch && len == 0) {
        set_error(r, 400, "empty body: audio expected");
        return ANSWER;
    }
    r->body_expected = (size_t)len;
    if (job->kind == LS_JOB_LOAD) {
        /* A load uses no body: one sent is read and dropped. */
        r->discard_body = 1;
        return len > 0 ? WAIT_BODY : DISPATCH;
    }
    return admit_body(call, len);
}

/* The request's Content-Length into *len: WAIT_BODY, or the answer that
 * refuses it (none where one is required, not a number, over the limits).
 * optional: a POST without one has an empty body. */
static next_step content_length(http_call *call, int optional, int64_t *len)
{
    ls_env *env = call->env;
    http_req *r = call->r;
    char cl[32];
    *len = 0;
    int has_len = lws_hdr_total_length(call->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    if (!has_len && optional) return WAIT_BODY; /* a body-less POST */
    if (!has_len) {
        set_error(r, 411, "a Content-Length is required");
        return REJECT_BODY;
    }
    if (lws_hdr_copy(call->wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
        !ls_parse_i64(cl, 0, INT64_MAX, len)) {
        set_error(r, 400, "Content-Length wants a byte count");
        return REJECT_BODY;
    }
    if (*len > env->cfg.max_body_bytes) {
        set_error(r, 413, "body of %lld bytes exceeds the limit of %lld bytes", (long long)*len,
                  env->cfg.max_body_bytes);
        return REJECT_BODY;
    }
    if (*len > env->cfg.max_body_bytes_total) { /* could never fit: 413, not 503 */
        set_error(r, 413,
                  "body of %lld bytes exceeds max_body_bytes_total, the %lld bytes "
                  "all bodies may hold at once",
                  (long long)*len, env->cfg.max_body_bytes_total);
        return REJECT_BODY;
    }
    return WAIT_BODY;
}

/* A body's admission from the head, before a byte of it is read: the
 * request's slot (a render or batch job's, or a WebRTC session's) and the
 * body's bytes are taken now, so a client refused here costs nothing, and
 * bodies in flight hold at most max_body_bytes_total. */
static next_step admit_body(http_call *call, int64_t len)
{
    ls_env *env = call->env;
    http_req *r = call->r;
    ls_job *job = &r->job;
    r->body_expected = (size_t)len;
    char busy[160];
    int is_job = job->kind != LS_JOB_WEBRTC;
    if (!ls_env_admit(env, is_job, busy, sizeof busy)) {
        set_error(r, 503, "%s", busy);
        r->resp.retry_after_s = LS_RETRY_AFTER_S;
        return REJECT_BODY;
    }
    long long held = atomic_load(&env->body_bytes);
    if (len > env->cfg.max_body_bytes_total - held) {
        set_error(r, 503,
                  "request bodies in flight: %lld bytes held, a %lld byte body would pass "
                  "max_body_bytes_total (%lld); retry later",
                  held, (long long)len, env->cfg.max_body_bytes_total);
        r->resp.retry_after_s = LS_RETRY_AFTER_S;
        return REJECT_BODY;
    }
    if (ls_buf_reserve(&job->body, (size_t)len + 1)) {
        set_error(r, 503, "out of memory for a %lld byte body", (long long)len);
        r->resp.retry_after_s = LS_RETRY_AFTER_S;
        return REJECT_BODY;
    }
    atomic_fetch_add(&env->body_bytes, len);
    job->body_reserved = (size_t)len;
    if (!is_job) { /* a session from the offer on: counted as a stream */
        atomic_fetch_add(&env->active_streams, 1);
        r->holds_stream = 1;
        return WAIT_BODY;
    }
    atomic_fetch_add(&env->active_jobs, 1);
    atomic_fetch_add(&env->unsent_jobs, 1);
    r->holds_slot = r->unsent = 1;
    return WAIT_BODY;
}

/* POST /v1/webrtc?model=ID (an SDP offer) and DELETE /v1/webrtc/{id}. */
static next_step h_webrtc(http_call *call)
{
    ls_env *env = call->env;
    http_req *r = call->r;
    ls_job *job = &r->job;
    if (job->kind == LS_JOB_WEBRTC_END) {
        snprintf(job->session, sizeof job->session, "%s", call->param);
        return DISPATCH;
    }
    if (env->draining) {
        set_error(r, 503, LS_DRAINING_MSG);
        return REJECT_BODY;
    }
    int a = lws_arg(call->wsi, "model=", job->model, sizeof job->model);
    if (a <= 0 || !job->model[0]) {
        set_error(r, 400, a < 0 ? "model id too long (at most %d bytes)"
                                : "missing model=ID query parameter (at most %d bytes)",
                  LS_MODEL_ID_MAX);
        return REJECT_BODY;
    }
    char type[64] = "";
    if (lws_hdr_copy(call->wsi, type, sizeof type, WSI_TOKEN_HTTP_CONTENT_TYPE) < 0 ||
        strncasecmp(type, "application/sdp", 15) || (type[15] && type[15] != ';')) {
        set_error(r, 415, "an SDP offer wants Content-Type: application/sdp");
        return REJECT_BODY;
    }
    int64_t len;
    next_step bad = content_length(call, 0, &len);
    if (bad != WAIT_BODY) return bad;
    if (len == 0) {
        set_error(r, 400, "empty body: an SDP offer expected");
        return REJECT_BODY;
    }
    if (len > LS_WEBRTC_OFFER_MAX) {
        set_error(r, 413, "SDP offer of %lld bytes (at most %d)", (long long)len,
                  LS_WEBRTC_OFFER_MAX);
        return REJECT_BODY;
    }
    return admit_body(call, len);
}

/* ---- a request's life ---- */

/* The route for the request: its handler's decision, or 400/401/404/405. */
static next_step route_request(http_call *call)
{
    http_req *r = call->r;
    char why[160];
    int bad = ls_request_check(call->wsi, why, sizeof why);
    if (bad) {
        set_error(r, bad, "%s", why);
        return REJECT_BODY;
    }
    char id[LS_MODEL_ID_MAX + 1];
    ls_route_match m;
    find_route(call->method, call->path, id, &m);
    int found = m.result != LS_ROUTE_NOT_FOUND;
    if (!(found && routes[m.index].public)) {
        int auth = ls_request_authorized(call->env, call->wsi);
        if (auth < 0) {
            set_error(r, 400, "query parameter token is longer than %d bytes",
                      LS_TOKEN_ARG_MAX - 1);
            return REJECT_BODY;
        }
        if (!auth) {
            set_error(r, 401, "missing or wrong bearer token");
            return ANSWER;
        }
    }
    switch (m.result) {
    case LS_ROUTE_NOT_FOUND:
        set_error(r, 404, "no such endpoint: %.200s", call->path);
        return ANSWER;
    case LS_ROUTE_PARAM_TOO_LONG:
        set_error(r, 400, "model id too long (at most %d bytes)", LS_MODEL_ID_MAX);
        return REJECT_BODY;
    case LS_ROUTE_BAD_METHOD:
        set_error(r, 405, "method not allowed on %.200s", call->path);
        snprintf(r->resp.allow, sizeof r->resp.allow, "%s", m.allow);
        /* lws takes everything after a POST, PUT or PATCH without a
         * Content-Length for its body, up to the connection's end. */
        if (!lws_hdr_total_length(call->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) &&
            (!strcmp(call->method, "POST") || !strcmp(call->method, "PUT") ||
             !strcmp(call->method, "PATCH")))
            return REJECT_BODY;
        return ANSWER;
    case LS_ROUTE_MATCH: break;
    }
    call->param = id;
    r->job.kind = routes[m.index].job;
    return routes[m.index].handler(call);
}

static void job_work(ls_conn *c)
{
    http_req *r = (http_req *)c;
    if (ls_conn_is_closed(c)) return;
    r->holds_stream = 0; /* a WebRTC offer's slot: the session's now (webrtc.h) */
    ls_job_run(r->env, &r->job);
}

/* [loop] The job's answer is back. */
static void job_done(ls_conn *c)
{
    http_req *r = (http_req *)c;
    release_slot(r);
    r->ready = 1;
    if (c->wsi) lws_callback_on_writable(c->wsi);
}

/* Body complete (or none): queue the job (a render or batch job holds its
 * slot since its head arrived, h_job). */
static void dispatch(struct lws *wsi, http_req *r)
{
    if (r->dispatched) return;
    r->dispatched = 1;
    /* Jobs may run longer than lws's idle timeout: the worker decides. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (ls_conn_queue_work(&r->c, LS_TASK_JOB, job_work, job_done) != LS_OK) {
        set_error(r, 503, "server out of memory");
        r->ready = 1;
        lws_callback_on_writable(wsi);
    }
}

void ls_http_release(ls_socket *sock)
{
    http_req *r = req_of(sock);
    if (!r) return;
    sock->conn = NULL;
    ls_conn_close(&r->c);
}

int ls_http_request(ls_env *env, struct lws *wsi, ls_socket *sock, const char *path)
{
    ls_http_release(sock); /* the previous request on a kept-alive connection */
    http_req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    ls_conn_init(&r->c, &http_ops, env->hub, wsi);
    r->env = env;
    r->job.cancelled = &r->c.closed;
    r->job.resp = &r->resp;
    sock->conn = &r->c;
    http_call call = {env, wsi, r, ls_request_method(wsi), path, ""};
    snprintf(r->method, sizeof r->method, "%s", call.method);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->t0 = ls_now();
    switch (route_request(&call)) {
    case FAIL: return -1;
    case SERVING:
    case WAIT_BODY: return 0; /* LWS_CALLBACK_HTTP_BODY_COMPLETION next */
    case DISPATCH: dispatch(wsi, r); return 0;
    case REJECT_BODY:
        /* The body is not read: the connection cannot carry another request. */
        r->resp.close_after = 1;
        break;
    case ANSWER: break;
    }
    r->ignore_body = 1; /* answered: a body that follows is read and dropped */
    r->ready = 1;
    lws_callback_on_writable(wsi);
    return 0;
}

int ls_http_body(ls_socket *sock, const void *in, size_t len)
{
    http_req *r = req_of(sock);
    /* lws calls with no bytes for a Content-Length of 0, after dispatch. */
    if (!r || r->ignore_body || !len) return 0;
    /* More than Content-Length (lws bug or liar), or after dispatch. */
    if (r->dispatched || len > r->body_expected - r->body_got) return -1;
    r->body_got += len;
    if (!r->discard_body) ls_buf_append(&r->job.body, in, len); /* within what was reserved */
    return 0;
}

int ls_http_body_done(struct lws *wsi, ls_socket *sock)
{
    http_req *r = req_of(sock);
    if (!r || r->ignore_body) return 0;
    if (r->body_got != r->body_expected) {
        set_error(r, 400, "body ended after %zu of %zu bytes", r->body_got, r->body_expected);
        r->resp.close_after = 1;
        r->ready = 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    dispatch(wsi, r);
    return 0;
}

int ls_http_writable(struct lws *wsi, ls_socket *sock)
{
    http_req *r = req_of(sock);
    if (!r || !r->ready || r->serving_file) return 0;
    return http_write(wsi, r);
}

/* ---- requests lws's HTTP parser gives up on ---- */

typedef enum raw_state { RAW_NONE, RAW_SENT, RAW_DRAIN } raw_state;

#define RAW_ANSWER_MAX 640

static int is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The methods of the route table, for a raw 405's Allow. */
static void all_methods(char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_ROUTES; i++) {
        const char *m = routes[i].route.method;
        if (strstr(out, m)) continue;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", m);
        if (w > 0 && (size_t)w < cap - len) len += (size_t)w;
    }
}

/* The answer to a request whose first line lws's parser refused (an
 * unknown method, not HTTP, the HTTP/2 preface) or the CONNECT method; lws
 * then hands the connection over as a raw socket, with the bytes of that
 * read (in): 405 for a well-formed HTTP/1.x line, 505 for another version
 * ("PRI * HTTP/2.0"), 400 for anything else. Writes the whole HTTP answer
 * to out (RAW_ANSWER_MAX bytes); returns its length, 0 if it failed. */
static size_t raw_reject(ls_env *env, const unsigned char *in, size_t len, char *out)
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
    const char *reason;
    char text[160], allow[80] = "", methods[48];
    if (well_formed && v[5] != '1') {
        status = 505;
        reason = "HTTP Version Not Supported";
        snprintf(text, sizeof text, "HTTP/%c.%c is not supported: this server speaks HTTP/1.1",
                 v[5], v[7]);
    } else if (well_formed) {
        status = 405;
        reason = "Method Not Allowed";
        all_methods(methods, sizeof methods);
        snprintf(allow, sizeof allow, "allow: %s\r\n", methods);
        snprintf(text, sizeof text, "method %.*s is not allowed (%s)", (int)(m < 32 ? m : 32),
                 (const char *)in, methods);
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
    ls_metrics_add(env->metrics, LS_M_ERRORS, 1);
    if (env->cfg.verbose) lwsl_user("%d (raw) %s\n", status, text);
    return n > 0 && n < RAW_ANSWER_MAX ? (size_t)n : 0;
}

/* The answer at once (a client that sent its request and shut its side
 * down would have the socket closed at the end of its bytes, before a
 * writable callback), then a lingering close: our side is shut once lws
 * has sent it all, the client reads the answer and closes, and its bytes
 * are read and dropped until then (closing with them unread would reset
 * the connection, which can lose the answer). */
int ls_http_raw(ls_env *env, struct lws *wsi, int writable, ls_socket *sock, const void *in,
                size_t len)
{
    if (!sock) return -1;
    if (!writable && sock->raw == RAW_NONE) {
        unsigned char buf[LWS_PRE + RAW_ANSWER_MAX];
        size_t n = raw_reject(env, in, in ? len : 0, (char *)buf + LWS_PRE);
        if (!n || lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_RAW) != (int)n) return -1;
        sock->raw = RAW_SENT;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 10);
        lws_callback_on_writable(wsi); /* once lws has sent it all */
    } else if (writable && sock->raw == RAW_SENT) {
        shutdown(lws_get_socket_fd(wsi), SHUT_WR);
        sock->raw = RAW_DRAIN;
    }
    return 0;
}
