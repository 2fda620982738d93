/* metrics.h - the server's counters and latency histograms, and their
 * Prometheus text rendering (GET /metrics).
 *
 * Every observe/add call is thread-safe (one mutex: updates are a few per
 * frame, never contended enough to matter) and allocates nothing. Gauges
 * that belong to other modules (queue depth, resident models, memory) are
 * passed in at render time so the metrics hold no pointers into them.
 */
#ifndef LS_SERVER_METRICS_H
#define LS_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ls_metrics ls_metrics;

/* Per-batch stage latencies, in the pipeline's order (session.h). */
typedef enum ls_stage {
    LS_STAGE_MEL,
    LS_STAGE_ENCODER,
    LS_STAGE_INPUT,
    LS_STAGE_UNET,
    LS_STAGE_COMPOSITE,
    LS_STAGE_ENCODE,
    LS_STAGE_COUNT
} ls_stage;

typedef enum ls_counter {
    LS_M_FRAMES_SENT,       /* frames delivered to clients (stream + HTTP) */
    LS_M_SESSIONS_TOTAL,    /* streams opened */
    LS_M_SESSIONS_REJECTED, /* refused at the session limit */
    LS_M_REQUESTS,          /* HTTP requests answered */
    LS_M_ERRORS,            /* HTTP responses >= 400 and stream errors */
    LS_M_AUDIO_SECONDS,     /* seconds of 16 kHz audio received */
    LS_M_SILENT_FRAMES,     /* stream frames sent without inference (silence) */
    LS_M_COUNTER_COUNT
} ls_counter;

/* Values owned elsewhere, sampled when the text is rendered. */
typedef struct ls_metrics_gauges {
    int sessions_active;
    int jobs_active;
    int queue_depth;        /* worker tasks waiting */
    int workers_busy;
    int job_tasks_queued;   /* of those, jobs (render, batch, model load) */
    int job_tasks_running;
    int frames_queued;      /* frames waiting to be sent */
    int events_queued;      /* stream events waiting to be sent */
    long long body_bytes;   /* request body bytes held (max_body_bytes_total) */
    int models_resident, models_loading;
    size_t models_bytes;
    int64_t model_loads, model_evictions, model_load_failures;
} ls_metrics_gauges;

/* *out is NULL on failure. */
int ls_metrics_create(ls_metrics **out, ls_error *err);
void ls_metrics_destroy(ls_metrics *m);

void ls_metrics_add(ls_metrics *m, ls_counter c, double v);
/* seconds: one batch's time in a stage. */
void ls_metrics_observe_stage(ls_metrics *m, ls_stage s, double seconds);
/* Seconds from the audio completing a frame to that frame being sent. */
void ls_metrics_observe_frame_latency(ls_metrics *m, double seconds);
/* Frames computed and the engine (encoder + UNet) seconds they took. */
void ls_metrics_add_engine(ls_metrics *m, int64_t frames, double engine_seconds);

double ls_metrics_counter(ls_metrics *m, ls_counter c);

/* Renders the Prometheus text exposition into a malloc'd string. */
char *ls_metrics_render(ls_metrics *m, const ls_metrics_gauges *g);

/* Resident set size of this process in bytes (0 if unknown). */
size_t ls_process_rss(void);

#endif
