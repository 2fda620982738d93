/* server_priv.h - what the server's event loop (server.c), its stream
 * workers (stream.c) and its HTTP jobs (jobs.c) share. Not a public API.
 *
 * Ownership: a conn is shared by the loop (while its socket is open) and by
 * at most one worker task; conn_unref frees it when both let go. Fields are
 * marked with who may touch them: [loop], [worker] (the one task running
 * it), [lock] (conn->lock held).
 */
#ifndef LS_SERVER_SERVER_PRIV_H
#define LS_SERVER_SERVER_PRIV_H

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "audio/decode.h"
#include "audio/pcm.h"
#include "audio/resample.h"
#include "pipeline/session.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/outputs.h"
#include "server/registry.h"
#include "server/server.h"
#include "server/workq.h"

/* Binary frame message header (little-endian), then the JPEG bytes. */
#define LS_FRAME_MAGIC "LSF1"
#define LS_FRAME_HEADER_BYTES 24 /* magic[4] flags u32 index i64 timestamp f64 */
#define LS_FRAME_FLAG_SILENT 1u  /* the avatar's own frame, sent without inference */

typedef enum conn_kind { CONN_HTTP, CONN_STREAM } conn_kind;

typedef struct conn {
    conn_kind kind;
    ls_server *srv;
    pthread_mutex_t lock;
    int refs;                 /* [lock] */
    struct lws *wsi;          /* [loop] NULL once the socket closed */
    atomic_int closed;        /* set by the loop when the socket closes */
    int on_ready_list;        /* [srv->ready_lock] */
    struct conn *ready_next;  /* [srv->ready_lock] */
} conn;

typedef enum route {
    ROUTE_NONE,
    ROUTE_LOAD,
    ROUTE_UNLOAD,
    ROUTE_RENDER,
    ROUTE_BATCH
} route;

typedef struct http_req {
    conn c;
    route route;                     /* [loop] then [worker] */
    char model[LS_MODEL_ID_MAX + 1];
    char output[16];                 /* render: mp4 | mjpeg | jpeg-zip */
    int64_t start_frame;
    int batch_size;
    int multipart;                   /* batch: answer multipart/mixed */
    int holds_slot;                  /* counts against max_sessions */
    int unsent;                      /* counts in srv->unsent_jobs */
    ls_buf body;                     /* request body ([loop] until dispatched, then [worker]) */
    size_t body_expected;            /* its Content-Length */
    size_t body_got;                 /* [loop] bytes of it received */
    size_t body_reserved;            /* bytes counted in srv->body_bytes, until released */
    int discard_body;                /* [loop] read the body but keep none of it */
    int ignore_body;                 /* an answer is already decided */
    int dispatched;                  /* [loop] the job was queued */
    /* The response: written by the loop or a worker before `ready`. */
    atomic_int ready;
    int status;
    char content_type[96];
    char disposition[96];
    ls_buf resp;
    int close_after;
    int retry_after_s;               /* > 0: a Retry-After header (503 at a limit) */
    /* [loop] sending progress */
    int headers_sent;
    size_t sent;
    int serving_file;
} http_req;

typedef struct msg {
    struct msg *next;
    int binary;
    int64_t frame_index;  /* frames only; -1 for events */
    double audio_t;       /* arrival of the audio that completed the frame */
    size_t len, cap;      /* payload bytes; buffer has LWS_PRE headroom */
    unsigned char *buf;
} msg;

typedef struct stream_start {
    ls_pcm_format format;
    int rate, channels;
    int64_t start_frame;
    int batch;
    int live;
    int skip_silence; /* silent frames are the avatar's own, without inference */
} stream_start;

typedef struct stream {
    conn c;
    char model_id[LS_MODEL_ID_MAX + 1];
    /* [lock] the inbox, filled by the loop */
    ls_buf audio_in;
    double audio_in_t;
    int want_start, want_flush, want_end;
    stream_start start;
    int scheduled;            /* a worker task is queued or running */
    uint64_t epoch;           /* bumped by interrupt: older frames are dropped */
    /* [lock] the outbox, drained by the loop */
    msg *out_head, *out_tail;
    int out_frames;
    msg *free_msgs;
    int close_when_sent;      /* end of stream or fatal error: close after outbox */
    int going_away;           /* closed by a drain's deadline: close code 1001 */
    /* [worker] */
    ls_model *model;
    ls_session *session;
    ls_resampler *resampler;
    stream_start cfg;
    ls_buf audio_work;
    ls_pcm_decoder *pcm;      /* client bytes -> mono samples, split frames carried */
    uint64_t pcm_epoch;       /* [worker] the epoch pcm's held bytes belong to */
    float *mono, *resampled;
    size_t mono_cap, resampled_cap;
    ls_stage_times last_times;
    int64_t frames_out, stats_frames;
    double started_t;
    int speaking, silent_windows;
    float rms_acc;
    int rms_n;
    int64_t windows_seen;
    int failed, finished;
    /* [loop] */
    int started, ended;       /* control messages seen */
    int protocol_errors;      /* [lock] error events sent for bad messages */
    ls_buf text_in;           /* a JSON control message being reassembled */
    int text_overflow;
    int text_open;            /* text_in holds the start of a message */
    int rx_paused;
    double last_rx;
    double pace_t0;           /* live pacing: send time of frame pace_i0 */
    int64_t pace_i0;
    int pacing;
} stream;

struct ls_server {
    ls_server_config cfg;
    int max_jobs;             /* cfg.max_jobs, or its default: workers - 1, at least 1 */
    struct lws_context *ctx;
    int port;
    atomic_int stopping;
    ls_pool *pool;
    ls_workq *workq;
    ls_registry *registry;
    ls_registry_pipeline_ctx loader;
    ls_metrics *metrics;
    pthread_mutex_t ready_lock;
    conn *ready_head;         /* [ready_lock] connections with news for the loop */
    atomic_int active_streams, active_jobs;
    /* Jobs until their answer is sent (active_jobs ends with the work):
     * a drain waits for these. */
    atomic_int unsent_jobs;
    /* Bytes of the request bodies being received or waiting for their job
     * (max_body_bytes_total): added by the loop when a request head is
     * admitted, released by the job once it decoded the body, or when the
     * request is freed (a client that hung up mid-body included). */
    atomic_llong body_bytes;
    atomic_int frames_queued;
    lws_sorted_usec_list_t idle_sul;
    stream **streams;         /* [loop] open streams, for the idle scan */
    int n_streams, cap_streams;
    double started_at;
    /* Graceful drain (ls_server_drain): any thread asks, the loop acts. */
    atomic_int drain_requested;
    int draining;             /* [loop] 0 serving, 1 waiting for sessions, 2 past the deadline */
    double drain_deadline;    /* [loop] when the sessions left are closed */
    double drain_stop_at;     /* [loop] past the deadline: when the loop stops regardless */
    lws_sorted_usec_list_t drain_sul;
    struct lws_token_limits token_limits; /* lws keeps a pointer: lives as long as ctx */
};

/* conn lifetime */
void conn_init(conn *c, conn_kind kind, ls_server *srv);
void conn_ref(conn *c);
void conn_unref(conn *c);
/* Queues c for the loop (which asks for a writable callback) and wakes it. */
void conn_notify(conn *c);

/* HTTP responses: set by whoever decides them, sent by the loop. */
void http_set_json(http_req *r, int status, const char *json);
void http_set_error(http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* HTTP status for an ls_status code. */
int http_status_for(int code);
/* Publishes r's response (worker side). */
void http_finish(http_req *r);
/* Frees r's body and releases its bytes from srv->body_bytes (the job
 * calls it once the body is decoded; freeing r calls it too). */
void http_body_release(http_req *r);
/* Gives back the job's max_jobs/max_sessions slot: done by the worker when
 * the job's work ends, before its answer is handed to the loop, so a
 * client that has read the answer finds the slot free. */
void http_slot_release(http_req *r);

/* Per-stage milliseconds, frames and batches of a session, as JSON. */
cJSON *stage_times_json(const ls_stage_times *t);

/* Parsers of client input (server.c), apart from the loop so that the fuzz
 * targets (tests/fuzz) can feed them from memory. */

/* The job route of uri for a method (post, del: nonzero for POST, DELETE):
 * /v1/models/{id}/load and /v1/models/{id} (id, LS_MODEL_ID_MAX + 1 bytes,
 * filled), /v1/render, /v1/batch; ROUTE_NONE for anything else, with
 * *too_long set when only the id's length kept uri from a route. */
route http_route(const char *uri, int post, int del, char *id, int *too_long);
/* A decimal integer in min..max: 1 with *out set, or 0. */
int http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* A query argument as lws gives it: copies the URL-decoded value of the
 * argument called name ("model=") into buf (cap bytes) and returns 1; 0
 * when absent, -1 when longer than buf. */
typedef int (*http_arg_fn)(void *ctx, const char *name, char *buf, int cap);
/* The query of a render or batch request (r->route): model, start_frame,
 * output (render), batch_size and format=multipart (batch). 0, or -1 with
 * the 400 answer's message in why. */
int http_parse_job_args(http_req *r, http_arg_fn get, void *ctx, char *why, size_t cap);

/* A stream's text (control) messages. */
typedef enum ctl_type {
    CTL_BAD,       /* not a control message: why says what is wrong */
    CTL_BAD_START, /* a start whose settings are wrong: why says which */
    CTL_START,     /* settings in *st */
    CTL_FLUSH,
    CTL_END,
    CTL_INTERRUPT
} ctl_type;
ctl_type stream_parse_control(const char *text, size_t len, stream_start *st, char *why,
                              size_t cap);
const char *stream_control_name(ctl_type t);

/* jobs.c: the worker tasks behind HTTP routes. */
void job_run(void *arg);

/* stream.c */
stream *stream_create(ls_server *srv, const char *model_id);
void stream_free(stream *s);
void stream_task(void *arg);
/* Loop side: queue an event/frame message (lock held by caller). */
msg *stream_msg_get(stream *s, size_t payload);
void stream_msg_put(stream *s, msg *m);
void stream_queue_event_locked(stream *s, const char *json);
/* Schedules the worker if needed (lock held). */
void stream_schedule_locked(stream *s);

#endif
