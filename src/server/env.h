/* env.h - what the server's protocol modules (http.h, stream.h, jobs.h)
 * share of it: the settings, the registry, metrics, the shared pool, the
 * hub (conn.h), the counts behind the limits, and the answers every module
 * words the same way (JSON errors, status codes, stage timings). server.c
 * owns it and fills it before the first connection; the modules read it.
 *
 * Threads: the pointers and settings do not change after creation and are
 * read anywhere; the counts are atomic; draining and drain_deadline belong
 * to the loop. Admission (ls_env_admit) runs on the loop only, and only the
 * loop adds streams and jobs (workers only end them), so an admission stays
 * true until the caller counts it.
 */
#ifndef LS_SERVER_ENV_H
#define LS_SERVER_ENV_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "pipeline/session.h"
#include "core/threadpool.h"
#include "server/config.h"
#include "server/conn.h"
#include "server/metrics.h"
#include "server/outputs.h"
#include "server/registry.h"
#include "server/workq.h"

/* Seconds a client refused at a limit is told to wait (Retry-After): a
 * hint, as when a slot comes free is not known. */
#define LS_RETRY_AFTER_S 2
/* While draining, a new stream, render or batch call is refused: the load
 * balancer sends it to another instance (docs/server.md). */
#define LS_DRAINING_MSG "server is draining (shutting down): new sessions go elsewhere"

typedef struct ls_env {
    ls_server_config cfg;
    int max_jobs;             /* cfg.max_jobs, or its default: workers - 1, at least 1 */
    ls_pool *pool;
    ls_workq *workq;
    ls_registry *registry;
    ls_metrics *metrics;
    ls_hub *hub;
    struct ls_webrtc *webrtc; /* WebRTC sessions (webrtc.h) */
    double started_at;
    atomic_int active_streams, active_jobs;
    /* Jobs until their answer is sent (active_jobs ends with the work):
     * a drain waits for these. */
    atomic_int unsent_jobs;
    /* Bytes of the request bodies being received or waiting for their job
     * (max_body_bytes_total): added by the loop when a request head is
     * admitted, released by the job once it decoded the body, or when the
     * request is freed (a client that hung up mid-body included). */
    atomic_llong body_bytes;
    atomic_int frames_queued; /* stream frames waiting for their client */
    atomic_int events_queued; /* stream text events waiting for their client */
    int draining;             /* [loop] 0 serving, 1 waiting for sessions, 2 past the deadline */
    double drain_deadline;    /* [loop] when the sessions left are closed */
} ls_env;

/* [loop] Whether a new stream (job 0) or render/batch job (job 1) may start:
 * 1, or 0 with the 503 answer's message in why (and the refusal counted). */
int ls_env_admit(ls_env *env, int job, char *why, size_t cap);

/* An answer over HTTP, as the loop sends it. Filled by whoever decides it:
 * the loop, or a job (jobs.h) that hands it back. */
typedef struct ls_response {
    int status;
    char content_type[96];
    char disposition[96];   /* Content-Disposition, or "" */
    char allow[64];         /* Allow (405), or "" */
    char location[96];      /* Location (201), or "" */
    int retry_after_s;      /* > 0: a Retry-After header (503 at a limit) */
    int close_after;        /* close the connection once sent */
    ls_buf body;
} ls_response;

void ls_response_json(ls_response *r, int status, const char *json);
/* {"error": message, "status": status}, counted in the error metrics. */
void ls_response_error(ls_env *env, ls_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The JSON body of an error answer, malloc'd (cJSON_free), or NULL. */
char *ls_error_json(int status, const char *fmt, va_list ap);
/* The HTTP status of an ls_status code. */
int ls_http_status_for(int code);

/* Per-stage milliseconds, frames and batches of a session, as JSON. */
cJSON *ls_stage_times_json(const ls_stage_times *t);

#endif
