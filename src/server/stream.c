/* stream.c - the worker side of a WebSocket stream: audio bytes in, session
 * calls, frames and events out. One task at a time per stream (the
 * `scheduled` flag), so the session is driven by one thread as session.h
 * requires; a task handles what the inbox held when it started and
 * re-queues itself when more arrived, so streams share the workers fairly.
 */
#include "server/server_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"

#define WINDOW_SAMPLES 640    /* one frame of 16 kHz audio (40 ms) */
#define SPEECH_END_WINDOWS 12 /* ~0.5 s of silence ends speech */
#define STATS_EVERY_FRAMES 25
#define PUSH_SLICE 3200       /* 0.2 s of 16 kHz audio per push */

stream *stream_create(ls_server *srv, const char *model_id)
{
    stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    conn_init(&s->c, CONN_STREAM, srv);
    snprintf(s->model_id, sizeof s->model_id, "%s", model_id);
    return s;
}

static void free_msgs(msg *m)
{
    while (m) {
        msg *next = m->next;
        free(m->buf);
        free(m);
        m = next;
    }
}

void stream_free(stream *s)
{
    ls_server *srv = s->c.srv;
    if (s->session) ls_session_destroy(s->session);
    if (s->model) ls_registry_release(srv->registry, s->model);
    ls_resampler_destroy(s->resampler);
    ls_pcm_decoder_destroy(s->pcm);
    atomic_fetch_sub(&srv->frames_queued, s->out_frames);
    free_msgs(s->out_head);
    free_msgs(s->free_msgs);
    ls_buf_free(&s->audio_in);
    ls_buf_free(&s->audio_work);
    ls_buf_free(&s->text_in);
    free(s->mono);
    free(s->resampled);
    pthread_mutex_destroy(&s->c.lock);
    free(s);
}

/* Recycled message buffers: after warm-up a stream allocates nothing per
 * frame (buffers grow to the largest frame and stay). Lock held. */
msg *stream_msg_get(stream *s, size_t payload)
{
    msg *m = s->free_msgs;
    if (m)
        s->free_msgs = m->next;
    else if (!(m = calloc(1, sizeof *m)))
        return NULL;
    if (m->cap < payload) {
        unsigned char *b = realloc(m->buf, LWS_PRE + payload);
        if (!b) {
            m->next = s->free_msgs;
            s->free_msgs = m;
            return NULL;
        }
        m->buf = b;
        m->cap = payload;
    }
    m->next = NULL;
    m->len = payload;
    m->binary = 0;
    m->frame_index = -1;
    return m;
}

void stream_msg_put(stream *s, msg *m)
{
    m->next = s->free_msgs;
    s->free_msgs = m;
}

static void append_locked(stream *s, msg *m)
{
    if (s->out_tail)
        s->out_tail->next = m;
    else
        s->out_head = m;
    s->out_tail = m;
}

void stream_queue_event_locked(stream *s, const char *json)
{
    size_t n = strlen(json);
    msg *m = stream_msg_get(s, n);
    if (!m) return;
    memcpy(m->buf + LWS_PRE, json, n);
    append_locked(s, m);
}

void stream_schedule_locked(stream *s)
{
    if (s->scheduled) return;
    s->scheduled = 1;
    s->c.refs++; /* the task's reference; the lock is held */
    if (ls_workq_submit(s->c.srv->workq, LS_TASK_STREAM, stream_task, s) != LS_OK) {
        s->scheduled = 0;
        s->c.refs--;
    }
}

static void queue_event(stream *s, cJSON *j)
{
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!t) return;
    pthread_mutex_lock(&s->c.lock);
    stream_queue_event_locked(s, t);
    pthread_mutex_unlock(&s->c.lock);
    cJSON_free(t);
}

static void fail(stream *s, const ls_error *err, const char *what)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "error");
    char text[LS_ERROR_MSG_MAX + 64];
    snprintf(text, sizeof text, "%s: %s", what, err->msg[0] ? err->msg : ls_status_name(err->code));
    cJSON_AddStringToObject(j, "message", text);
    queue_event(s, j);
    ls_metrics_add(s->c.srv->metrics, LS_M_ERRORS, 1);
    s->failed = 1;
    pthread_mutex_lock(&s->c.lock);
    s->close_when_sent = 1;
    pthread_mutex_unlock(&s->c.lock);
}

/* Stage time deltas since the last call go to the metrics, per batch. */
static void record_times(stream *s)
{
    ls_stage_times t;
    ls_session_get_times(s->session, &t);
    ls_stage_times *o = &s->last_times;
    int64_t batches = t.batches - o->batches;
    if (batches > 0) {
        double d[LS_STAGE_COUNT] = {t.mel - o->mel,     t.encoder - o->encoder,
                                    t.input - o->input, t.unet - o->unet,
                                    t.composite - o->composite, t.encode - o->encode};
        for (int st = 0; st < LS_STAGE_COUNT; st++)
            for (int64_t b = 0; b < batches; b++)
                ls_metrics_observe_stage(s->c.srv->metrics, (ls_stage)st, d[st] / (double)batches);
        ls_metrics_add_engine(s->c.srv->metrics, t.frames - o->frames,
                              d[LS_STAGE_ENCODER] + d[LS_STAGE_UNET]);
    }
    *o = t;
}

cJSON *stage_times_json(const ls_stage_times *t)
{
    cJSON *j = cJSON_CreateObject();
    const double ms[] = {t->mel, t->encoder, t->input, t->unet, t->composite, t->encode};
    const char *names[] = {"mel_ms", "encoder_ms", "input_ms", "unet_ms", "composite_ms",
                           "encode_ms"};
    for (int i = 0; i < 6; i++) cJSON_AddNumberToObject(j, names[i], ms[i] * 1e3);
    cJSON_AddNumberToObject(j, "frames", (double)t->frames);
    cJSON_AddNumberToObject(j, "batches", (double)t->batches);
    return j;
}

/* An interrupt came after this task took its input. */
static int stale(stream *s, uint64_t epoch)
{
    pthread_mutex_lock(&s->c.lock);
    int old = s->epoch != epoch;
    pthread_mutex_unlock(&s->c.lock);
    return old;
}

/* Moves every frame the session has ready to the outbox, unless an
 * interrupt (a newer epoch) came since this task took its input. */
static void pull_frames(stream *s, uint64_t epoch, double audio_t)
{
    ls_frame f;
    int64_t before = s->frames_out;
    while (ls_session_pull_frame(s->session, &f) == 1) {
        pthread_mutex_lock(&s->c.lock);
        if (s->epoch != epoch) {
            pthread_mutex_unlock(&s->c.lock);
            continue;
        }
        msg *m = stream_msg_get(s, LS_FRAME_HEADER_BYTES + f.size);
        if (m) {
            unsigned char *p = m->buf + LWS_PRE;
            uint32_t flags = f.silent ? LS_FRAME_FLAG_SILENT : 0;
            memcpy(p, LS_FRAME_MAGIC, 4);
            memcpy(p + 4, &flags, 4); /* the host is little-endian (x86-64, arm64) */
            memcpy(p + 8, &f.index, 8);
            memcpy(p + 16, &f.timestamp, 8);
            memcpy(p + LS_FRAME_HEADER_BYTES, f.data, f.size);
            m->binary = 1;
            m->frame_index = f.index;
            if (f.silent) ls_metrics_add(s->c.srv->metrics, LS_M_SILENT_FRAMES, 1);
            m->audio_t = audio_t;
            append_locked(s, m);
            s->out_frames++;
            atomic_fetch_add(&s->c.srv->frames_queued, 1);
        }
        pthread_mutex_unlock(&s->c.lock);
        s->frames_out++;
    }
    /* Frames leave now, not when the task ends: a long task (a big chunk,
     * many batches) would otherwise hold them all back. */
    if (s->frames_out != before) conn_notify(&s->c);
    record_times(s);
    if (s->frames_out - s->stats_frames >= STATS_EVERY_FRAMES) {
        s->stats_frames = s->frames_out;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", "stats");
        cJSON_AddNumberToObject(j, "frames", (double)s->frames_out);
        double dt = ls_now() - s->started_t;
        cJSON_AddNumberToObject(j, "fps", dt > 0 ? (double)s->frames_out / dt : 0);
        cJSON_AddItemToObject(j, "timings", stage_times_json(&s->last_times));
        queue_event(s, j);
    }
}

static void do_start(stream *s)
{
    ls_server *srv = s->c.srv;
    ls_error err = {0};
    s->started_t = ls_now();
    if (ls_registry_acquire(srv->registry, s->model_id, &s->model, &err)) {
        fail(s, &err, "model");
        return;
    }
    ls_session_options so = {
        .start_frame = s->cfg.start_frame,
        .batch = s->cfg.batch ? s->cfg.batch : srv->cfg.batch,
        .format = LS_FRAME_JPEG,
        .jpeg_quality = srv->cfg.jpeg_quality,
        .silence_rms = s->cfg.skip_silence ? (float)srv->cfg.silence_rms : 0,
    };
    ls_session *session;
    if (ls_session_create(s->model, srv->pool, &so, &session, &err)) {
        fail(s, &err, "session");
        return;
    }
    pthread_mutex_lock(&s->c.lock); /* the loop reads it to interrupt */
    s->session = session;
    pthread_mutex_unlock(&s->c.lock);
    ls_raw_spec spec = {.format = s->cfg.format, .rate = s->cfg.rate, .channels = s->cfg.channels};
    if (ls_pcm_decoder_create(&spec, &s->pcm, &err)) {
        fail(s, &err, "audio format");
        return;
    }
    if (s->cfg.rate != LS_AUDIO_MODEL_RATE &&
        !(s->resampler = ls_resampler_create(s->cfg.rate, LS_AUDIO_MODEL_RATE, &err))) {
        fail(s, &err, "resampler");
        return;
    }
    ls_model_info info;
    ls_model_get_info(s->model, &info);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "ready");
    cJSON_AddStringToObject(j, "model", s->model_id);
    cJSON_AddNumberToObject(j, "width", info.width);
    cJSON_AddNumberToObject(j, "height", info.height);
    cJSON_AddNumberToObject(j, "fps", info.fps);
    cJSON_AddNumberToObject(j, "avatar_frames", info.n_frames);
    cJSON_AddNumberToObject(j, "start_frame", (double)s->cfg.start_frame);
    cJSON_AddBoolToObject(j, "live", s->cfg.live);
    cJSON_AddBoolToObject(j, "skip_silence", s->cfg.skip_silence);
    queue_event(s, j);
}

static int grow(float **buf, size_t *cap, size_t n)
{
    if (*cap >= n) return 0;
    float *b = realloc(*buf, n * sizeof *b);
    if (!b) return -1;
    *buf = b;
    *cap = n;
    return 0;
}

/* RMS per 40 ms window of 16 kHz audio: speech_start / speech_end events. */
static void detect_speech(stream *s, const float *x, size_t n)
{
    double thr = s->c.srv->cfg.silence_rms;
    for (size_t i = 0; i < n; i++) {
        s->rms_acc += x[i] * x[i];
        if (++s->rms_n < WINDOW_SAMPLES) continue;
        double rms = sqrt(s->rms_acc / WINDOW_SAMPLES);
        s->rms_acc = 0;
        s->rms_n = 0;
        int64_t w = s->windows_seen++;
        const char *event = NULL;
        if (rms >= thr) {
            s->silent_windows = 0;
            if (!s->speaking) s->speaking = 1, event = "speech_start";
        } else if (s->speaking && ++s->silent_windows >= SPEECH_END_WINDOWS) {
            s->speaking = 0;
            event = "speech_end";
            w -= SPEECH_END_WINDOWS - 1;
        }
        if (event) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "type", event);
            cJSON_AddNumberToObject(j, "frame", (double)w);
            cJSON_AddNumberToObject(j, "time", (double)w / 25.0);
            queue_event(s, j);
        }
    }
}

/* Raw bytes (any split) -> mono float at the declared rate -> 16 kHz. */
static int feed_audio(stream *s, const uint8_t *bytes, size_t len, uint64_t epoch, double audio_t)
{
    ls_error err = {0};
    size_t frames = ls_pcm_decoder_max_out(s->pcm, len);
    if (grow(&s->mono, &s->mono_cap, frames + 1)) {
        ls_error_set(&err, LS_ERR_NOMEM, "out of memory");
        fail(s, &err, "audio");
        return -1;
    }
    if (ls_pcm_decoder_feed(s->pcm, bytes, len, s->mono, &frames, &err)) {
        fail(s, &err, "audio");
        return -1;
    }

    const float *x = s->mono;
    size_t n = frames;
    if (s->resampler) {
        size_t cap = ls_resampler_max_out(s->resampler, frames);
        if (grow(&s->resampled, &s->resampled_cap, cap + 1) ||
            ls_resampler_process(s->resampler, bytes ? s->mono : NULL, bytes ? frames : 0,
                                 s->resampled, cap, &n, &err)) {
            if (!err.msg[0]) ls_error_set(&err, LS_ERR_NOMEM, "out of memory");
            fail(s, &err, "resample");
            return -1;
        }
        x = s->resampled;
    }
    if (!n) return 0;
    ls_metrics_add(s->c.srv->metrics, LS_M_AUDIO_SECONDS, (double)n / LS_AUDIO_MODEL_RATE);
    detect_speech(s, x, n);
    /* A big chunk goes in slices: frames leave as soon as they exist, and an
     * interrupt or a hang-up stops the work at the next slice. */
    for (size_t at = 0; at < n; at += PUSH_SLICE) {
        if (atomic_load(&s->c.closed) || stale(s, epoch)) return 0;
        size_t k = n - at < PUSH_SLICE ? n - at : PUSH_SLICE;
        if (ls_session_push_audio(s->session, x + at, k, &err)) {
            fail(s, &err, "push_audio");
            return -1;
        }
        if (s->cfg.live && ls_session_flush(s->session, &err)) {
            fail(s, &err, "flush");
            return -1;
        }
        pull_frames(s, epoch, audio_t);
    }
    return 0;
}

static void do_end(stream *s, uint64_t epoch)
{
    ls_error err = {0};
    if (s->resampler && feed_audio(s, NULL, 0, epoch, ls_now())) return;
    if (ls_session_finish(s->session, &err)) {
        fail(s, &err, "finish");
        return;
    }
    pull_frames(s, epoch, ls_now());
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "done");
    cJSON_AddNumberToObject(j, "frames", (double)s->frames_out);
    cJSON_AddItemToObject(j, "timings", stage_times_json(&s->last_times));
    queue_event(s, j);
    s->finished = 1;
    pthread_mutex_lock(&s->c.lock);
    s->close_when_sent = 1;
    pthread_mutex_unlock(&s->c.lock);
}

void stream_task(void *arg)
{
    stream *s = arg;
    pthread_mutex_lock(&s->c.lock);
    int start = s->want_start, flush = s->want_flush, end = s->want_end;
    s->want_start = s->want_flush = s->want_end = 0;
    if (start) s->cfg = s->start;
    ls_buf in = s->audio_in; /* swap: the loop keeps filling a fresh buffer */
    s->audio_in = s->audio_work;
    s->audio_in.len = 0;
    s->audio_work = in;
    double audio_t = s->audio_in_t;
    uint64_t epoch = s->epoch;
    pthread_mutex_unlock(&s->c.lock);

    /* Audio after an interrupt starts on a sample frame of its own: the
     * bytes of a frame split before it are dropped with the rest. */
    if (s->pcm && s->pcm_epoch != epoch) ls_pcm_decoder_reset(s->pcm);
    s->pcm_epoch = epoch;
    if (!atomic_load(&s->c.closed) && !s->failed && !s->finished) {
        if (start) do_start(s);
        if (!s->failed && s->session && s->audio_work.len)
            feed_audio(s, s->audio_work.data, s->audio_work.len, epoch, audio_t);
        ls_error err = {0};
        if (!s->failed && s->session && flush) {
            if (ls_session_flush(s->session, &err))
                fail(s, &err, "flush");
            else
                pull_frames(s, epoch, audio_t);
        }
        if (!s->failed && s->session && end) do_end(s, epoch);
    }
    s->audio_work.len = 0;

    pthread_mutex_lock(&s->c.lock);
    int more = !atomic_load(&s->c.closed) && !s->failed && !s->finished &&
               (s->audio_in.len || s->want_start || s->want_flush || s->want_end);
    if (!more) s->scheduled = 0;
    pthread_mutex_unlock(&s->c.lock);
    conn_notify(&s->c);
    if (more && ls_workq_submit(s->c.srv->workq, LS_TASK_STREAM, stream_task, s) == LS_OK)
        return;
    if (more) {
        pthread_mutex_lock(&s->c.lock);
        s->scheduled = 0;
        pthread_mutex_unlock(&s->c.lock);
    }
    conn_unref(&s->c);
}
