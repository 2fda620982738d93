#include "server/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Upper bounds in seconds: 1 ms .. 10 s, dense where frames live (40 ms). */
static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08,
                                 0.16,  0.32,   0.64,  1.28, 2.56, 5.12, 10.0};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct histogram {
    uint64_t counts[N_BUCKETS + 1]; /* last: above every bound */
    uint64_t n;
    double sum;
} histogram;

typedef struct metrics_data {
    double counters[LS_M_COUNTER_COUNT];
    histogram stages[LS_STAGE_COUNT];
    histogram frame_latency;
    int64_t engine_frames;
    double engine_seconds;
} metrics_data;

struct ls_metrics {
    pthread_mutex_t lock;
    metrics_data d;
};

static const char *stage_names[LS_STAGE_COUNT] = {"mel",  "encoder",   "input",
                                                  "unet", "composite", "encode"};

static const struct {
    const char *name, *help;
} counter_desc[LS_M_COUNTER_COUNT] = {
    {"lipsync_frames_sent_total", "Frames delivered to clients."},
    {"lipsync_sessions_total", "Streaming sessions opened."},
    {"lipsync_sessions_rejected_total", "Sessions and jobs refused at the limit."},
    {"lipsync_http_requests_total", "HTTP requests answered."},
    {"lipsync_errors_total", "Error responses and stream errors."},
    {"lipsync_audio_seconds_total", "Seconds of 16 kHz audio received."},
    {"lipsync_silent_frames_total", "Stream frames sent as the avatar's own frame, without inference."},
};

int ls_metrics_create(ls_metrics **out, ls_error *err)
{
    *out = NULL;
    ls_metrics *m = calloc(1, sizeof *m);
    if (!m) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate metrics");
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return LS_OK;
}

void ls_metrics_destroy(ls_metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void ls_metrics_add(ls_metrics *m, ls_counter c, double v)
{
    if (!m || c < 0 || c >= LS_M_COUNTER_COUNT) return;
    pthread_mutex_lock(&m->lock);
    m->d.counters[c] += v;
    pthread_mutex_unlock(&m->lock);
}

double ls_metrics_counter(ls_metrics *m, ls_counter c)
{
    pthread_mutex_lock(&m->lock);
    double v = m->d.counters[c];
    pthread_mutex_unlock(&m->lock);
    return v;
}

static void observe(histogram *h, double v)
{
    size_t i = 0;
    while (i < N_BUCKETS && v > buckets[i]) i++;
    h->counts[i]++;
    h->n++;
    h->sum += v;
}

void ls_metrics_observe_stage(ls_metrics *m, ls_stage s, double seconds)
{
    if (!m || s < 0 || s >= LS_STAGE_COUNT) return;
    pthread_mutex_lock(&m->lock);
    observe(&m->d.stages[s], seconds);
    pthread_mutex_unlock(&m->lock);
}

void ls_metrics_observe_frame_latency(ls_metrics *m, double seconds)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    observe(&m->d.frame_latency, seconds);
    pthread_mutex_unlock(&m->lock);
}

void ls_metrics_add_engine(ls_metrics *m, int64_t frames, double engine_seconds)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->d.engine_frames += frames;
    m->d.engine_seconds += engine_seconds;
    pthread_mutex_unlock(&m->lock);
}

typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

static void put_histogram(text *t, const char *name, const char *label, const histogram *h)
{
    uint64_t cum = 0;
    const char *sep = label[0] ? "," : "";
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += h->counts[i];
        put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, buckets[i],
            (unsigned long long)cum);
    }
    put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, (unsigned long long)h->n);
    const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
    put(t, "%s_sum%s%s%s %.6f\n", name, open, label, close, h->sum);
    put(t, "%s_count%s%s%s %llu\n", name, open, label, close, (unsigned long long)h->n);
}

static void put_gauge(text *t, const char *name, const char *help, double v)
{
    put(t, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

char *ls_metrics_render(ls_metrics *m, const ls_metrics_gauges *g)
{
    text t = {malloc(8192), 0, 8192, 0};
    if (!t.buf) return NULL;
    t.buf[0] = '\0';
    pthread_mutex_lock(&m->lock);
    metrics_data snap = m->d; /* render outside the lock */
    pthread_mutex_unlock(&m->lock);

    for (int c = 0; c < LS_M_COUNTER_COUNT; c++)
        put(&t, "# HELP %s %s\n# TYPE %s counter\n%s %.17g\n", counter_desc[c].name,
            counter_desc[c].help, counter_desc[c].name, counter_desc[c].name, snap.counters[c]);
    put_gauge(&t, "lipsync_sessions_active", "Streaming sessions open.", g->sessions_active);
    put_gauge(&t, "lipsync_jobs_active", "Render and batch jobs running or queued.",
              g->jobs_active);
    put_gauge(&t, "lipsync_queue_depth", "Worker tasks waiting for a worker.", g->queue_depth);
    put_gauge(&t, "lipsync_workers_busy", "Workers running a task.", g->workers_busy);
    put_gauge(&t, "lipsync_job_tasks_running",
              "Jobs (render, batch, model load) running on a worker (at most max_jobs).",
              g->job_tasks_running);
    put_gauge(&t, "lipsync_job_tasks_queued", "Jobs waiting for a worker free of jobs.",
              g->job_tasks_queued);
    put_gauge(&t, "lipsync_frames_queued", "Frames computed and waiting to be sent.",
              g->frames_queued);
    put_gauge(&t, "lipsync_events_queued", "Stream events (JSON) waiting to be sent.",
              g->events_queued);
    put_gauge(&t, "lipsync_request_body_bytes",
              "Bytes of request bodies being received or waiting for their job.",
              (double)g->body_bytes);
    put_gauge(&t, "lipsync_models_resident", "Models loaded.", g->models_resident);
    put_gauge(&t, "lipsync_models_loading", "Models being loaded.", g->models_loading);
    put_gauge(&t, "lipsync_models_memory_bytes", "Bytes held by resident models.",
              (double)g->models_bytes);
    put(&t, "# HELP lipsync_model_loads_total Model loads completed.\n"
            "# TYPE lipsync_model_loads_total counter\nlipsync_model_loads_total %lld\n",
        (long long)g->model_loads);
    put(&t, "# HELP lipsync_model_evictions_total Models evicted by the LRU.\n"
            "# TYPE lipsync_model_evictions_total counter\nlipsync_model_evictions_total %lld\n",
        (long long)g->model_evictions);
    put(&t, "# HELP lipsync_model_load_failures_total Model loads that failed.\n"
            "# TYPE lipsync_model_load_failures_total counter\n"
            "lipsync_model_load_failures_total %lld\n",
        (long long)g->model_load_failures);
    put_gauge(&t, "lipsync_process_resident_memory_bytes", "Resident set size.",
              (double)ls_process_rss());
    put_gauge(&t, "lipsync_engine_fps",
              "Frames per second of engine time (encoder + UNet), since start.",
              snap.engine_seconds > 0 ? (double)snap.engine_frames / snap.engine_seconds : 0);

    put(&t, "# HELP lipsync_stage_seconds Time of one batch in a pipeline stage.\n"
            "# TYPE lipsync_stage_seconds histogram\n");
    for (int s = 0; s < LS_STAGE_COUNT; s++) {
        char label[32];
        snprintf(label, sizeof label, "stage=\"%s\"", stage_names[s]);
        put_histogram(&t, "lipsync_stage_seconds", label, &snap.stages[s]);
    }
    put(&t, "# HELP lipsync_frame_latency_seconds From the audio completing a frame to the "
            "frame being sent.\n# TYPE lipsync_frame_latency_seconds histogram\n");
    put_histogram(&t, "lipsync_frame_latency_seconds", "", &snap.frame_latency);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}

size_t ls_process_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    return ok ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}
