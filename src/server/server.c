/* server.c - the lws context and its one callback, dispatched by protocol
 * (http.h, stream.h); the settings turned into the shared env (env.h); the
 * idle scan and the graceful drain. The routes and the stream protocol are
 * documented in http.h and stream.h, the hand-off between the loop and the
 * workers in conn.h.
 */
#include "server/server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "nn/engine.h"
#include "server/conn.h"
#include "server/env.h"
#include "server/http.h"
#include "server/request.h"
#include "server/stream.h"
#include "server/webrtc.h"

struct ls_server {
    ls_env env;
    struct lws_context *ctx;
    int port;
    atomic_int stopping;
    ls_streams *streams;
    ls_registry_pipeline_ctx loader;
    lws_sorted_usec_list_t idle_sul;
    /* Graceful drain (ls_server_drain): any thread asks, the loop acts. */
    atomic_int drain_requested;
    double drain_stop_at;     /* [loop] past the deadline: when the loop stops regardless */
    lws_sorted_usec_list_t drain_sul;
    struct lws_token_limits token_limits; /* lws keeps a pointer: lives as long as ctx */
};

/* Every second: close streams idle longer than idle_timeout_s. */
static void idle_scan(lws_sorted_usec_list_t *sul)
{
    ls_server *srv = lws_container_of(sul, ls_server, idle_sul);
    ls_streams_idle_scan(srv->streams);
    ls_webrtc_scan(srv->env.webrtc);
    lws_sul_schedule(srv->ctx, 0, &srv->idle_sul, idle_scan, LWS_US_PER_SEC);
}

/* ---- graceful drain ---- */

/* Past the deadline, how long the streams' error events and closes may
 * take to go out before the loop stops anyway (a client that reads
 * nothing would otherwise hold the process). */
#define DRAIN_CLOSE_GRACE_S 2.0
#define DRAIN_CHECK_US (100 * LWS_US_PER_MS)

/* [loop] Every DRAIN_CHECK_US while draining: stops the loop once no
 * stream or job is left, closes what is left at the deadline. */
static void drain_check(lws_sorted_usec_list_t *sul)
{
    ls_server *srv = lws_container_of(sul, ls_server, drain_sul);
    ls_env *env = &srv->env;
    double now = ls_now();
    /* Jobs count until their answer is sent (the request's end), streams
     * until their socket closes. */
    if (atomic_load(&env->active_streams) + atomic_load(&env->unsent_jobs) == 0 ||
        (env->draining == 2 && now >= srv->drain_stop_at)) {
        ls_server_stop(srv);
        return;
    }
    if (env->draining == 1 && now >= env->drain_deadline) {
        env->draining = 2;
        srv->drain_stop_at = now + DRAIN_CLOSE_GRACE_S;
        ls_streams_go_away(srv->streams);
        ls_webrtc_stop_all(srv->env.webrtc);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->drain_sul, drain_check, DRAIN_CHECK_US);
}

/* [loop] ls_server_drain's request, taken on the loop's wake-up. */
static void drain_begin(ls_server *srv)
{
    ls_env *env = &srv->env;
    if (env->draining || !atomic_load(&srv->drain_requested)) return;
    env->draining = 1;
    env->drain_deadline = ls_now() + env->cfg.drain_timeout_s;
    drain_check(&srv->drain_sul);
}

/* ---- the callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    ls_server *srv = lws_context_user(lws_get_context(wsi));
    ls_env *env = &srv->env;
    ls_socket *sock = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        ls_hub_run(env->hub);
        drain_begin(srv);
        return 0;

    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
        return ls_http_raw(env, wsi, reason == LWS_CALLBACK_RAW_WRITEABLE, sock, in, len);

    case LWS_CALLBACK_HTTP: {
        char path[512];
        snprintf(path, sizeof path, "%.*s", (int)len, (const char *)in);
        return ls_http_request(env, wsi, sock, path);
    }
    case LWS_CALLBACK_HTTP_BODY: return ls_http_body(sock, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return ls_http_body_done(wsi, sock);
    case LWS_CALLBACK_HTTP_WRITEABLE: return ls_http_writable(wsi, sock);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* lws rebinds (and zeroes) sock per transaction */
        ls_http_release(sock);
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* lws asks for "websocket" and "h2c" only (it answers any other
         * Upgrade with its 403 page before calling us); it cannot ignore
         * the header and serve HTTP/1.1 instead, so h2c gets an error. */
        if (!in || strcasecmp(in, "websocket"))
            return ls_request_refuse(env, wsi, 400,
                                     "Upgrade: %.20s is not supported: WebSocket only",
                                     in ? (const char *)in : "?");
        return ls_stream_confirm_upgrade(srv->streams, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        ls_http_release(sock); /* the request object of the upgrade, if any */
        return ls_stream_open(srv->streams, wsi, sock);
    case LWS_CALLBACK_RECEIVE: return ls_stream_receive(wsi, sock, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_TIMER: return ls_stream_writable(wsi, sock);
    case LWS_CALLBACK_CLOSED: ls_stream_closed(sock); return 0;

    default: return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"lipsync", callback, sizeof(ls_socket), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifetime ---- */

static int preload(ls_server *srv, ls_error *err)
{
    char list[LS_CONFIG_STR_MAX];
    snprintf(list, sizeof list, "%s", srv->env.cfg.preload);
    for (char *save = NULL, *id = strtok_r(list, ", ", &save); id;
         id = strtok_r(NULL, ", ", &save)) {
        int rc = ls_registry_load(srv->env.registry, id, err);
        if (rc) return rc;
    }
    return LS_OK;
}

int ls_server_create(const ls_server_config *config, ls_server **out, ls_error *err)
{
    *out = NULL;
    ls_server *srv = calloc(1, sizeof *srv);
    if (!srv) return ls_error_set(err, LS_ERR_NOMEM, "server: out of memory");
    ls_env *env = &srv->env;
    env->cfg = *config;
    env->started_at = ls_now();
    int rc = ls_metrics_create(&env->metrics, err);
    if (!rc) rc = ls_pool_create(config->threads, &env->pool, err);
    /* Jobs run to completion on a worker each: they may hold at most
     * workers - 1, so one is always there for the streams (workq.h). */
    int jobs_cap = config->workers > 1 ? config->workers - 1 : 1;
    env->max_jobs = config->max_jobs ? config->max_jobs : jobs_cap;
    if (!rc && env->max_jobs > jobs_cap)
        rc = ls_error_set(err, LS_ERR_RANGE,
                          "max_jobs %d leaves no worker for streams: at most workers - 1 (%d)",
                          env->max_jobs, jobs_cap);
    if (!rc) rc = ls_workq_create(config->workers, env->max_jobs, &env->workq, err);
    if (!rc) rc = ls_hub_create(env->workq, &env->hub, err);
    if (!rc) rc = ls_streams_create(env, &srv->streams, err);
    if (!rc) rc = ls_webrtc_create(env, &env->webrtc, err);
    if (!rc) {
        srv->loader.pool = env->pool;
        srv->loader.options.batch = config->batch;
        ls_precision prec = LS_PREC_FP32;
        rc = ls_precision_parse(config->precision, &prec, err);
        srv->loader.options.precision = prec;
    }
    if (!rc) {
        ls_registry_options ro = {config->models_root, config->max_models,
                                  ls_registry_pipeline_ops(&srv->loader)};
        rc = ls_registry_create(&ro, &env->registry, err);
    }
    if (!rc) {
        /* A root without a model is most likely the wrong folder: say what is there. */
        char others[512];
        if (ls_registry_survey(env->registry, others, sizeof others) == 0)
            fprintf(stderr, "lipsync: warning: models root %s holds no model directory (a folder "
                            "with model.json)%s%s\n", config->models_root,
                    others[0] ? "; it has: " : "; it is empty", others);
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
        info.max_http_header_data = LS_HTTP_HEAD_MAX;
        for (int i = 0; i < (int)WSI_TOKEN_COUNT; i++)
            srv->token_limits.token_limit[i] = LS_HTTP_FIELD_MAX;
        info.token_limits = &srv->token_limits;
        /* A first line lws's parser cannot take (an unknown method, garbage,
         * the HTTP/2 preface) turns the connection into a raw socket of our
         * protocol instead of lws's 403 page: ls_http_raw answers it. */
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
        ls_hub_attach(env->hub, srv->ctx);
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
    ls_env *env = &srv->env;
    /* Workers stop waking the loop; closing the context closes every socket
     * (streams get CLOSED and drop their loop references); then the workers
     * finish what they hold, and the hub drops the completions no loop will
     * run. */
    ls_hub_detach(env->hub);
    if (srv->ctx) {
        lws_sul_cancel(&srv->idle_sul);
        lws_sul_cancel(&srv->drain_sul);
        lws_context_destroy(srv->ctx);
    }
    ls_workq_destroy(env->workq);
    ls_webrtc_destroy(env->webrtc); /* after the workers: an offer may be running */
    ls_hub_destroy(env->hub);
    ls_streams_destroy(srv->streams);
    ls_registry_destroy(env->registry);
    ls_pool_destroy(env->pool);
    ls_metrics_destroy(env->metrics);
    free(srv);
}
