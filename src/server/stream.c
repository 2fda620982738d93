/* stream.c - the WebSocket stream protocol (stream.h): the loop side (the
 * socket, control messages, the outbox's sending, pacing, idle and drain)
 * and the work side (audio bytes to the session, frames and events out).
 * One work item at a time per stream, so the session is driven by one
 * thread as session.h requires; each handles the input handed to it and,
 * back on the loop, the next is queued behind other streams when more
 * input came, so streams share the workers fairly.
 */
#include "server/stream.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "audio/decode.h"
#include "audio/resample.h"
#include "core/clock.h"
#include "core/fps.h"
#include "pipeline/drive.h"
#include "pipeline/silence.h"
#include "server/request.h"

#define TEXT_MSG_MAX 65536
/* Flow control. A stream's socket is not read while this much audio waits
 * for a worker, or stream_queue_frames frames (a setting) or this many
 * events wait for the client. And a work item takes at most TURN_SECONDS
 * of audio, and none while the client is stream_queue_frames behind: so
 * a client that stops reading holds at most that many frames plus one
 * turn's, however much audio it sent before. */
#define INBOX_PAUSE_BYTES (4u << 20)
#define OUTBOX_PAUSE_TEXTS 64
#define TURN_SECONDS 1
#define MAX_PROTOCOL_ERRORS 32
#define WINDOW_SAMPLES 640    /* one frame of 16 kHz audio (40 ms) */
#define SPEECH_END_WINDOWS 12 /* ~0.5 s of silence ends speech */
#define STATS_EVERY_FRAMES 25
#define PUSH_SLICE 3200       /* 0.2 s of 16 kHz audio per push */

typedef struct msg {
    struct msg *next;
    int binary;
    int64_t frame_index;  /* frames only; -1 for events */
    double audio_t;       /* arrival of the audio that completed the frame */
    size_t len, cap;      /* payload bytes; buffer has LWS_PRE headroom */
    unsigned char *buf;
} msg;

/* Input for one work item: what the client sent since the last was queued. */
typedef struct stream_input {
    ls_buf audio;
    double audio_t;       /* arrival of its last bytes */
    int start, flush, end;
    stream_start cfg;     /* start's settings */
    uint64_t epoch;       /* the epoch it was handed over in */
} stream_input;

typedef struct stream {
    ls_conn c;
    ls_streams *set;
    ls_env *env;
    char model_id[LS_MODEL_ID_MAX + 1];
    pthread_mutex_t lock;     /* the [lock] fields: what both sides touch */

    /* [loop] input not yet handed over, and whether a work item is out */
    stream_input inbox;
    int scheduled;
    /* the input handed to the work item: [work] while it runs, else [loop] */
    stream_input work_in;

    /* [lock] */
    uint64_t epoch;           /* bumped by interrupt (loop): older frames are dropped */
    msg *out_head, *out_tail; /* the outbox: filled by both, drained by the loop */
    int out_frames, out_texts;
    double out_progress_t;    /* when the outbox was last empty or last sent from */
    msg *free_msgs;
    int close_when_sent;      /* end of stream or fatal error: close after the outbox */
    int going_away;           /* closed by a drain's deadline: close code 1001 */
    char last_error[96];      /* the last error event's text, for the verbose log */
    ls_session *session;      /* set by the work; the loop interrupts it */

    /* [work]; the loop reads failed and finished once the work is back */
    ls_model *model;
    ls_resampler *resampler;
    stream_start cfg;         /* start's settings, handed over */
    ls_pcm_decoder *pcm;      /* client bytes -> mono samples, split frames carried */
    uint64_t pcm_epoch;       /* the epoch pcm's held bytes belong to */
    float *mono, *resampled;
    size_t mono_cap, resampled_cap;
    ls_stage_times last_times;
    int64_t frames_out, stats_frames, frames_woken;
    double started_t;
    ls_speech speech;
    ls_push *push;            /* start's output, if any */
    uint64_t drive_epoch;     /* the drive's epoch and audio arrival (drive sink) */
    double drive_audio_t;
    int failed, finished;

    /* [loop] the socket side */
    int started, ended;       /* control messages seen */
    int live;                 /* start's live: pace frames at 25 fps */
    int protocol_errors;      /* error events sent for bad messages */
    ls_buf text_in;           /* a JSON control message being reassembled */
    int text_overflow;
    int text_open;            /* text_in holds the start of a message */
    int rx_paused;
    size_t turn_bytes;        /* the most audio bytes one work item takes */
    double last_rx;
    double pace_t0;           /* live pacing: send time of frame pace_i0 */
    int64_t pace_i0;
    int pacing;
    /* [loop] the verbose log's line at the close */
    uint64_t log_id;
    double opened_t;
    int64_t frames_sent;
    char close_reason[96];
} stream;

struct ls_streams {
    ls_env *env;
    stream **list;            /* [loop] open streams, for the idle and drain scans */
    int n, cap;
    uint64_t opened;          /* [loop] streams so far: their ids in the verbose log */
};

static const ls_conn_ops stream_ops;

static stream *stream_of(ls_socket *sock)
{
    return sock && sock->conn && sock->conn->ops == &stream_ops ? (stream *)sock->conn : NULL;
}

/* ---- lifetime ---- */

static void free_msgs(msg *m)
{
    while (m) {
        msg *next = m->next;
        free(m->buf);
        free(m);
        m = next;
    }
}

static void stream_free(ls_conn *c)
{
    stream *s = (stream *)c;
    ls_env *env = s->env;
    ls_push_abort(s->push); /* never waits on the server: this may be the loop */
    if (s->session) ls_session_destroy(s->session);
    if (s->model) ls_registry_release(env->registry, s->model);
    ls_resampler_destroy(s->resampler);
    ls_pcm_decoder_destroy(s->pcm);
    atomic_fetch_sub(&env->frames_queued, s->out_frames);
    atomic_fetch_sub(&env->events_queued, s->out_texts);
    free_msgs(s->out_head);
    free_msgs(s->free_msgs);
    ls_buf_free(&s->inbox.audio);
    ls_buf_free(&s->work_in.audio);
    ls_buf_free(&s->text_in);
    free(s->mono);
    free(s->resampled);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Frames leave as the work makes them: the loop writes them. */
static void stream_wake(ls_conn *c)
{
    lws_callback_on_writable(c->wsi);
}

static const ls_conn_ops stream_ops = {stream_wake, stream_free};

int ls_streams_create(ls_env *env, ls_streams **out, ls_error *err)
{
    ls_streams *set = calloc(1, sizeof *set);
    if (!set) return ls_error_set(err, LS_ERR_NOMEM, "server: out of memory");
    set->env = env;
    *out = set;
    return LS_OK;
}

void ls_streams_destroy(ls_streams *set)
{
    if (!set) return;
    free(set->list);
    free(set);
}

static void streams_add(ls_streams *set, stream *s)
{
    if (set->n == set->cap) {
        int cap = set->cap ? set->cap * 2 : 16;
        stream **g = realloc(set->list, (size_t)cap * sizeof *g);
        if (!g) return; /* only the idle scan misses it */
        set->list = g;
        set->cap = cap;
    }
    set->list[set->n++] = s;
}

static void streams_remove(ls_streams *set, stream *s)
{
    for (int i = 0; i < set->n; i++)
        if (set->list[i] == s) {
            set->list[i] = set->list[--set->n];
            return;
        }
}

/* ---- the outbox [lock] ---- */

/* Recycled message buffers: after warm-up a stream allocates nothing per
 * frame (buffers grow to the largest frame and stay). */
static msg *msg_get_locked(stream *s, size_t payload)
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

static void msg_put_locked(stream *s, msg *m)
{
    m->next = s->free_msgs;
    s->free_msgs = m;
}

static void append_locked(stream *s, msg *m)
{
    if (!s->out_head) s->out_progress_t = ls_now();
    if (s->out_tail)
        s->out_tail->next = m;
    else
        s->out_head = m;
    s->out_tail = m;
}

static void queue_text_locked(stream *s, const char *json)
{
    size_t n = strlen(json);
    msg *m = msg_get_locked(s, n);
    if (!m) return;
    memcpy(m->buf + LWS_PRE, json, n);
    append_locked(s, m);
    s->out_texts++;
    atomic_fetch_add(&s->env->events_queued, 1);
}

static void queue_event(stream *s, cJSON *j)
{
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!t) return;
    pthread_mutex_lock(&s->lock);
    queue_text_locked(s, t);
    pthread_mutex_unlock(&s->lock);
    cJSON_free(t);
}

/* ---- the work side ---- */

static void fail(stream *s, const ls_error *err, const char *what)
{
    /* The media server sees the stream end at once, without a trailer. */
    ls_push_abort(s->push);
    s->push = NULL;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "error");
    char text[LS_ERROR_MSG_MAX + 64];
    snprintf(text, sizeof text, "%s: %s", what, err->msg[0] ? err->msg : ls_status_name(err->code));
    cJSON_AddStringToObject(j, "message", text);
    queue_event(s, j);
    ls_metrics_add(s->env->metrics, LS_M_ERRORS, 1);
    s->failed = 1;
    pthread_mutex_lock(&s->lock);
    s->close_when_sent = 1;
    pthread_mutex_unlock(&s->lock);
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
                ls_metrics_observe_stage(s->env->metrics, (ls_stage)st, d[st] / (double)batches);
        ls_metrics_add_engine(s->env->metrics, t.frames - o->frames,
                              d[LS_STAGE_ENCODER] + d[LS_STAGE_UNET]);
    }
    *o = t;
}

/* An interrupt came after the drive's input was handed over. */
static int stale(stream *s, uint64_t epoch)
{
    pthread_mutex_lock(&s->lock);
    int old = s->epoch != epoch;
    pthread_mutex_unlock(&s->lock);
    return old;
}

/* The drive's sink (pipeline/drive.h): each frame to the outbox, unless an
 * interrupt (a newer epoch) came since the input was handed over. */
static int take_frame(void *ctx, const ls_frame *f, ls_error *err)
{
    stream *s = ctx;
    if (s->failed) return LS_OK; /* the push failed: the drive stops at the next slice */
    /* The push first, outside the lock (it may wait on the network): a
     * failure is the stream's error, and still_wanted stops the drive. */
    if (s->push && !stale(s, s->drive_epoch) && ls_push_frame(s->push, f, err)) {
        fail(s, err, "output");
        return LS_OK;
    }
    pthread_mutex_lock(&s->lock);
    if (s->epoch != s->drive_epoch) {
        pthread_mutex_unlock(&s->lock);
        return LS_OK;
    }
    msg *m = msg_get_locked(s, LS_FRAME_HEADER_BYTES + f->size);
    if (m) {
        unsigned char *p = m->buf + LWS_PRE;
        uint32_t flags = f->silent ? LS_FRAME_FLAG_SILENT : 0;
        memcpy(p, LS_FRAME_MAGIC, 4);
        memcpy(p + 4, &flags, 4); /* the host is little-endian (x86-64, arm64) */
        memcpy(p + 8, &f->index, 8);
        memcpy(p + 16, &f->timestamp, 8);
        memcpy(p + LS_FRAME_HEADER_BYTES, f->data, f->size);
        m->binary = 1;
        m->frame_index = f->index;
        if (f->silent) ls_metrics_add(s->env->metrics, LS_M_SILENT_FRAMES, 1);
        m->audio_t = s->drive_audio_t;
        append_locked(s, m);
        s->out_frames++;
        atomic_fetch_add(&s->env->frames_queued, 1);
    }
    pthread_mutex_unlock(&s->lock);
    s->frames_out++;
    return LS_OK;
}

/* After each pull: frames leave now, not when the work ends (a long work
 * item, a big chunk of many batches, would hold them all back); timings
 * and stats. */
static void after_pull(void *ctx)
{
    stream *s = ctx;
    if (s->frames_out != s->frames_woken) {
        s->frames_woken = s->frames_out;
        ls_conn_wake(&s->c);
    }
    record_times(s);
    if (s->frames_out - s->stats_frames >= STATS_EVERY_FRAMES) {
        s->stats_frames = s->frames_out;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", "stats");
        cJSON_AddNumberToObject(j, "frames", (double)s->frames_out);
        double dt = ls_now() - s->started_t;
        cJSON_AddNumberToObject(j, "fps", dt > 0 ? (double)s->frames_out / dt : 0);
        cJSON_AddItemToObject(j, "timings", ls_stage_times_json(&s->last_times));
        queue_event(s, j);
    }
}

/* A hang-up or an interrupt stops the work at the next slice. */
static int still_wanted(void *ctx, ls_error *err)
{
    (void)err;
    stream *s = ctx;
    return ls_conn_is_closed(&s->c) || s->failed || stale(s, s->drive_epoch) ? LS_DRIVE_STOP
                                                                               : LS_OK;
}

static void do_start(stream *s)
{
    ls_env *env = s->env;
    ls_error err = {0};
    s->started_t = ls_now();
    ls_speech_init(&s->speech, WINDOW_SAMPLES, env->cfg.silence_rms, SPEECH_END_WINDOWS);
    if (ls_registry_acquire(env->registry, s->model_id, &s->model, &err)) {
        fail(s, &err, "model");
        return;
    }
    ls_session_options so = {
        .start_frame = s->cfg.start_frame,
        .batch = s->cfg.batch ? s->cfg.batch : env->cfg.batch,
        .format = LS_FRAME_JPEG,
        .jpeg_quality = env->cfg.jpeg_quality,
        .silence_rms = s->cfg.skip_silence ? (float)env->cfg.silence_rms : 0,
    };
    ls_session *session;
    if (ls_session_create(s->model, env->pool, &so, &session, &err)) {
        fail(s, &err, "session");
        return;
    }
    pthread_mutex_lock(&s->lock); /* the loop reads it to interrupt */
    s->session = session;
    pthread_mutex_unlock(&s->lock);
    ls_raw_spec spec = {.format = s->cfg.format, .rate = s->cfg.rate, .channels = s->cfg.channels};
    if (ls_pcm_decoder_create(&spec, &s->pcm, &err)) {
        fail(s, &err, "audio format");
        return;
    }
    if (s->cfg.rate != LS_AUDIO_MODEL_RATE &&
        ls_resampler_create(s->cfg.rate, LS_AUDIO_MODEL_RATE, &s->resampler, &err)) {
        fail(s, &err, "resampler");
        return;
    }
    ls_model_info info;
    ls_model_get_info(s->model, &info);
    /* Connected before "ready": a client learns at once that its server is
     * unreachable. This blocks this worker for at most the push's timeout. */
    if (s->cfg.output[0] && ls_push_open(s->cfg.output, info.width, info.height, &s->push, &err)) {
        fail(s, &err, "output");
        return;
    }
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
    if (s->push) cJSON_AddStringToObject(j, "output", "rtmp");
    queue_event(s, j);
    ls_conn_wake(&s->c); /* ready leaves now, not with the first frames */
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

/* speech_start / speech_end, dated by 40 ms window (= video frame). */
static void speech_event(void *ctx, int start, int64_t window)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", start ? "speech_start" : "speech_end");
    cJSON_AddNumberToObject(j, "frame", (double)window);
    cJSON_AddNumberToObject(j, "time", (double)window / LS_VIDEO_FPS);
    queue_event(ctx, j);
}

static ls_drive_sink sink_of(stream *s)
{
    ls_drive_sink sink = {take_frame, after_pull, still_wanted, s};
    return sink;
}

/* Raw bytes (any split) -> mono float at the declared rate -> 16 kHz ->
 * the session, in slices: frames leave as soon as they exist, and an
 * interrupt or a hang-up stops the work at the next slice. bytes NULL:
 * the resampler's tail at the end of audio. */
static int feed_audio(stream *s, const uint8_t *bytes, size_t len)
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
    ls_metrics_add(s->env->metrics, LS_M_AUDIO_SECONDS, (double)n / LS_AUDIO_MODEL_RATE);
    ls_speech_push(&s->speech, x, n, speech_event, s);
    if (s->push && ls_push_audio(s->push, x, n, &err)) {
        fail(s, &err, "output");
        return -1;
    }
    ls_drive_options opt = {.chunk = PUSH_SLICE, .flush = s->cfg.live};
    ls_drive_sink sink = sink_of(s);
    if (ls_session_drive(s->session, x, n, &opt, &sink, &err)) {
        fail(s, &err, "push_audio");
        return -1;
    }
    return 0;
}

static void do_end(stream *s)
{
    ls_error err = {0};
    s->drive_audio_t = ls_now();
    if (s->resampler && feed_audio(s, NULL, 0)) return;
    s->drive_audio_t = ls_now();
    ls_drive_options fin = {.finish = 1};
    ls_drive_sink sink = sink_of(s);
    if (ls_session_drive(s->session, NULL, 0, &fin, &sink, &err)) {
        fail(s, &err, "finish");
        return;
    }
    if (s->failed) return; /* the push failed during the finish */
    int64_t pushed = s->push ? ls_push_frames(s->push) : -1;
    if (s->push) {
        int rc = ls_push_close(s->push, &err);
        s->push = NULL;
        if (rc) {
            fail(s, &err, "output");
            return;
        }
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "done");
    cJSON_AddNumberToObject(j, "frames", (double)s->frames_out);
    if (pushed >= 0) cJSON_AddNumberToObject(j, "pushed_frames", (double)pushed);
    cJSON_AddItemToObject(j, "timings", ls_stage_times_json(&s->last_times));
    queue_event(s, j);
    s->finished = 1;
    pthread_mutex_lock(&s->lock);
    s->close_when_sent = 1;
    pthread_mutex_unlock(&s->lock);
}

/* [work] One work item: the input handed over, in order. */
static void stream_work(ls_conn *c)
{
    stream *s = (stream *)c;
    stream_input *in = &s->work_in;
    /* An interrupt since the hand-over drops its audio and flush, as it
     * drops the inbox's; start and end stand, in the new epoch. */
    pthread_mutex_lock(&s->lock);
    uint64_t epoch = s->epoch;
    pthread_mutex_unlock(&s->lock);
    if (epoch != in->epoch) {
        in->audio.len = 0;
        in->flush = 0;
    }
    if (in->start) s->cfg = in->cfg;
    /* Audio after an interrupt starts on a sample frame of its own: the
     * bytes of a frame split before it are dropped with the rest. */
    if (s->pcm && s->pcm_epoch != epoch) ls_pcm_decoder_reset(s->pcm);
    /* The push drops the audio of the frames the interrupt dropped. */
    if (s->push && s->pcm_epoch != epoch) ls_push_restart(s->push);
    /* And the resampler forgets the old audio still in its filter, which
     * would otherwise open the new audio (streams not at 16 kHz). */
    ls_error rerr = {0};
    if (s->resampler && s->pcm_epoch != epoch && ls_resampler_reset(s->resampler, &rerr))
        fail(s, &rerr, "resample");
    s->pcm_epoch = epoch;
    s->drive_epoch = epoch;
    s->drive_audio_t = in->audio_t;
    if (!ls_conn_is_closed(c) && !s->failed && !s->finished) {
        if (in->start) do_start(s);
        if (!s->failed && s->session && in->audio.len) feed_audio(s, in->audio.data, in->audio.len);
        ls_error err = {0};
        if (!s->failed && s->session && in->flush) {
            ls_drive_sink sink = sink_of(s);
            if (ls_session_flush(s->session, &err) || ls_session_drain(s->session, &sink, &err))
                fail(s, &err, "flush");
        }
        if (!s->failed && s->session && in->end) do_end(s);
    }
    in->audio.len = 0;
}

/* ---- the loop side ---- */

static void stream_work_done(ls_conn *c);

/* Hands the inbox to a work item, unless one is out (it comes back to
 * stream_work_done, which queues the next). */
static void schedule(stream *s)
{
    stream_input *in = &s->inbox;
    if (s->scheduled || !(in->audio.len || in->start || in->flush || in->end)) return;
    pthread_mutex_lock(&s->lock);
    int behind = s->out_frames >= s->env->cfg.stream_queue_frames;
    pthread_mutex_unlock(&s->lock);
    if (behind && !in->start) return; /* the writable callback schedules again */
    stream_input *w = &s->work_in;
    if (in->audio.len > s->turn_bytes && s->turn_bytes) {
        /* One turn's audio; the rest, and a flush or end after it, wait. */
        w->audio.len = 0;
        if (ls_buf_append(&w->audio, in->audio.data, s->turn_bytes)) return;
        memmove(in->audio.data, in->audio.data + s->turn_bytes, in->audio.len - s->turn_bytes);
        in->audio.len -= s->turn_bytes;
        w->audio_t = in->audio_t;
        w->start = in->start;
        w->cfg = in->cfg;
        w->flush = w->end = 0;
        in->start = 0;
    } else {
        ls_buf spare = w->audio; /* emptied by the last work item */
        *w = *in;
        in->audio = spare;
        in->audio.len = 0;
        in->start = in->flush = in->end = 0;
    }
    w->epoch = s->epoch; /* only the loop writes it */
    s->scheduled = 1;
    if (ls_conn_queue_work(&s->c, LS_TASK_STREAM, stream_work, stream_work_done) != LS_OK) {
        /* Not queued: the work's input goes back in front of the inbox's,
         * and the next message tries again. */
        if (!ls_buf_append(&w->audio, in->audio.data, in->audio.len)) {
            ls_buf rest = in->audio;
            in->audio = w->audio;
            w->audio = rest;
            w->audio.len = 0;
            in->start |= w->start;
            in->flush |= w->flush;
            in->end |= w->end;
            if (w->start) in->cfg = w->cfg;
        }
        s->scheduled = 0;
    }
}

/* [loop] The work item is back: the next one, and what it sent. */
static void stream_work_done(ls_conn *c)
{
    stream *s = (stream *)c;
    s->scheduled = 0;
    if (ls_conn_is_closed(c)) return;
    if (!s->failed && !s->finished) schedule(s);
    if (c->wsi) lws_callback_on_writable(c->wsi);
}
/* [loop] An error event for a bad message (lock held). */
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
    size_t keep = strlen(text) < sizeof s->last_error ? strlen(text) : sizeof s->last_error - 1;
    memcpy(s->last_error, text, keep);
    s->last_error[keep] = 0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "error");
    cJSON_AddStringToObject(j, "message", text);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (t) queue_text_locked(s, t);
    cJSON_free(t);
    ls_metrics_add(s->env->metrics, LS_M_ERRORS, 1);
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
    cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "output");
    if (out) {
        if (!cJSON_IsString(out)) {
            snprintf(why, cap, "start: output wants a string rtmp://HOST/APP/KEY");
            return 0;
        }
        /* cJSON's string ends at a \u0000 in it: the URL checked is the one used. */
        size_t n = strlen(out->valuestring);
        if (!ls_push_url_ok(out->valuestring, n, why, cap)) return 0;
        memcpy(st->output, out->valuestring, n + 1);
    }
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
 * and the batch a worker may be computing (its frames carry an old epoch;
 * input handed over before is dropped by stream_work). Events stay. Lock
 * held. */
static void stream_drop_pending_locked(stream *s)
{
    s->epoch++;
    s->inbox.audio.len = 0;
    s->inbox.flush = 0;
    msg **pp = &s->out_head, *keep = NULL, **kt = &keep;
    while (*pp) {
        msg *m = *pp;
        *pp = m->next;
        if (m->binary) {
            s->out_frames--;
            atomic_fetch_sub(&s->env->frames_queued, 1);
            msg_put_locked(s, m);
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

static void stream_flow(stream *s);

/* [loop] One complete JSON control message. */
static void stream_control(stream *s, const char *text, size_t len)
{
    char why[160];
    stream_start st;
    ctl_type t = stream_parse_control(text, len, &st, why, sizeof why);
    pthread_mutex_lock(&s->lock);
    if (t == CTL_BAD) {
        stream_error_locked(s, "%s", why);
    } else if (t == CTL_START || t == CTL_BAD_START) {
        if (s->started)
            stream_error_locked(s, "start: the stream has already started");
        else if (t == CTL_BAD_START)
            stream_error_locked(s, "%s", why);
        else {
            s->inbox.cfg = st;
            s->live = st.live;
            s->started = 1;
            s->inbox.start = 1;
            ls_raw_spec spec = {.format = st.format, .rate = st.rate, .channels = st.channels};
            s->turn_bytes = ls_raw_frame_bytes(&spec) * (size_t)st.rate * TURN_SECONDS;
        }
    } else if (!s->started || s->ended) {
        stream_error_locked(s, "%s: %s", stream_control_name(t),
                            s->ended ? "the stream has ended" : "send start first");
    } else if (t == CTL_FLUSH) {
        s->inbox.flush = 1;
    } else if (t == CTL_END) {
        s->ended = 1;
        s->inbox.end = 1;
    } else { /* CTL_INTERRUPT */
        stream_drop_pending_locked(s);
        s->pacing = 0;
        queue_text_locked(s, "{\"type\":\"interrupted\"}");
    }
    pthread_mutex_unlock(&s->lock);
    schedule(s);
    stream_flow(s);
    if (s->c.wsi) lws_callback_on_writable(s->c.wsi);
}

/* [loop] Pauses reading while the worker or the client lags behind. */
static void stream_flow(stream *s)
{
    pthread_mutex_lock(&s->lock);
    int full = s->out_frames >= s->env->cfg.stream_queue_frames ||
               s->out_texts > OUTBOX_PAUSE_TEXTS;
    pthread_mutex_unlock(&s->lock);
    full = full || s->inbox.audio.len > INBOX_PAUSE_BYTES;
    if (full != s->rx_paused && s->c.wsi) {
        lws_rx_flow_control(s->c.wsi, full ? 0 : 1);
        s->rx_paused = full;
    }
}

int ls_stream_receive(struct lws *wsi, ls_socket *sock, const void *in, size_t len)
{
    stream *s = stream_of(sock);
    if (!s) return -1;
    s->last_rx = ls_now();
    if (lws_frame_is_binary(wsi)) {
        int bad = !s->started || s->ended;
        int nomem = !bad && ls_buf_append(&s->inbox.audio, in, len);
        if (bad || nomem) {
            pthread_mutex_lock(&s->lock);
            if (bad)
                stream_error_locked(s, "audio %s", s->ended ? "after end" : "before start");
            else
                stream_error_locked(s, "out of memory for audio");
            pthread_mutex_unlock(&s->lock);
        } else {
            s->inbox.audio_t = s->last_rx;
            schedule(s);
        }
        stream_flow(s);
        lws_callback_on_writable(wsi);
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
        pthread_mutex_lock(&s->lock);
        stream_error_locked(s, "control message longer than %d bytes", TEXT_MSG_MAX);
        pthread_mutex_unlock(&s->lock);
        lws_callback_on_writable(wsi);
        return 0;
    }
    stream_control(s, (const char *)s->text_in.data, s->text_in.len);
    return 0;
}

/* [loop] Sends the next outbox message; live streams wait for its time. */
int ls_stream_writable(struct lws *wsi, ls_socket *sock)
{
    stream *s = stream_of(sock);
    if (!s) return 0;
    ls_env *env = s->env;
    pthread_mutex_lock(&s->lock);
    msg *m = s->out_head;
    if (!m) {
        int close = s->close_when_sent, going_away = s->going_away;
        pthread_mutex_unlock(&s->lock);
        if (close && going_away) {
            snprintf(s->close_reason, sizeof s->close_reason, "1001 draining");
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"draining", 8);
            return -1;
        }
        if (close) {
            snprintf(s->close_reason, sizeof s->close_reason, "1000 done");
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
            return -1;
        }
        stream_flow(s);
        return 0;
    }
    double now = ls_now();
    if (m->binary && s->live) {
        if (!s->pacing) {
            s->pacing = 1;
            s->pace_t0 = now;
            s->pace_i0 = m->frame_index;
        }
        double due = s->pace_t0 + (double)(m->frame_index - s->pace_i0) / LS_VIDEO_FPS;
        if (due > now + 0.001) {
            pthread_mutex_unlock(&s->lock);
            lws_set_timer_usecs(wsi, (lws_usec_t)((due - now) * 1e6));
            return 0;
        }
    }
    s->out_head = m->next;
    if (!s->out_head) s->out_tail = NULL;
    if (m->binary) {
        s->out_frames--;
        atomic_fetch_sub(&env->frames_queued, 1);
    } else {
        s->out_texts--;
        atomic_fetch_sub(&env->events_queued, 1);
    }
    s->out_progress_t = now;
    pthread_mutex_unlock(&s->lock);

    int sent_frame = m->binary;
    int whole = (int)m->len;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (m->binary) {
        s->frames_sent++;
        ls_metrics_add(env->metrics, LS_M_FRAMES_SENT, 1);
        ls_metrics_observe_frame_latency(env->metrics, now - m->audio_t);
    }
    pthread_mutex_lock(&s->lock);
    msg_put_locked(s, m);
    int more = s->out_head != NULL || s->close_when_sent;
    pthread_mutex_unlock(&s->lock);
    /* m is back in the free list (a worker may take it): its copies only. */
    if (n < whole) return -1;
    if (more) lws_callback_on_writable(wsi);
    if (sent_frame) schedule(s); /* input held back while the client was behind */
    stream_flow(s);
    return 0;
}


void ls_stream_closed(ls_socket *sock)
{
    stream *s = stream_of(sock);
    if (!s) return;
    sock->conn = NULL;
    streams_remove(s->set, s);
    if (s->env->cfg.verbose) {
        pthread_mutex_lock(&s->lock);
        char last[sizeof s->last_error];
        snprintf(last, sizeof last, "%s", s->last_error);
        pthread_mutex_unlock(&s->lock);
        lwsl_user("stream %llu closed after %.1f s: %lld frames sent, %s%s%s\n",
                  (unsigned long long)s->log_id, ls_now() - s->opened_t, (long long)s->frames_sent,
                  s->close_reason[0] ? s->close_reason : "by the client",
                  last[0] ? "; last error: " : "", last);
    }
    atomic_store(&s->c.closed, 1); /* before the interrupt: the work stops, not restarts */
    pthread_mutex_lock(&s->lock);
    /* Stop compute for a client that is gone. */
    if (s->session) ls_session_interrupt(s->session);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_sub(&s->env->active_streams, 1);
    ls_conn_close(&s->c);
}

void ls_streams_idle_scan(ls_streams *set)
{
    double now = ls_now();
    int timeout = set->env->cfg.idle_timeout_s;
    for (int i = 0; i < set->n; i++) {
        stream *s = set->list[i];
        pthread_mutex_lock(&s->lock);
        int busy = s->scheduled || s->out_head;
        int stalled = s->out_head && now - s->out_progress_t > timeout;
        if (!busy && !s->close_when_sent && now - s->last_rx > timeout) {
            stream_error_locked(s, "idle for more than %d s: closing", timeout);
            s->close_when_sent = 1;
            if (s->c.wsi) lws_callback_on_writable(s->c.wsi);
        }
        pthread_mutex_unlock(&s->lock);
        /* Stalled: frames or events wait, the socket to the client is full,
         * and nothing has left for that long. Such a client cannot be told;
         * it is cut. */
        if (stalled && s->c.wsi && lws_send_pipe_choked(s->c.wsi)) {
            snprintf(s->close_reason, sizeof s->close_reason,
                     "cut: nothing read for %d s", timeout);
            lws_set_timeout(s->c.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
}

/* The drain's deadline for one stream: what is not yet sent goes, compute
 * stops, and the client gets an error event, then close 1001. */
static void go_away(stream *s)
{
    pthread_mutex_lock(&s->lock);
    stream_drop_pending_locked(s);
    s->inbox.end = 0;
    s->ended = 1; /* later control messages are errors, not work */
    stream_error_locked(s, "server shutting down: the stream outlasted drain_timeout_s (%d s)",
                        s->env->cfg.drain_timeout_s);
    s->close_when_sent = 1;
    s->going_away = 1;
    pthread_mutex_unlock(&s->lock);
    if (s->c.wsi) lws_callback_on_writable(s->c.wsi);
}

void ls_streams_go_away(ls_streams *set)
{
    for (int i = 0; i < set->n; i++) go_away(set->list[i]);
}

int ls_stream_confirm_upgrade(ls_streams *set, struct lws *wsi)
{
    ls_env *env = set->env;
    char why[160];
    int bad = ls_request_check(wsi, why, sizeof why);
    if (bad) return ls_request_refuse(env, wsi, bad, "%s", why);
    char uri[256];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/v1/stream"))
        return ls_request_refuse(env, wsi, 404, "WebSocket is served on /v1/stream only");
    int auth = ls_request_authorized(env, wsi);
    if (auth < 0)
        return ls_request_refuse(env, wsi, 400, "query parameter token is longer than %d bytes",
                                 LS_TOKEN_ARG_MAX - 1);
    if (!auth) return ls_request_refuse(env, wsi, 401, "missing or wrong bearer token");
    if (env->draining) return ls_request_refuse(env, wsi, 503, LS_DRAINING_MSG);
    char id[LS_MODEL_ID_MAX + 1];
    int a = ls_request_arg(wsi, "model=", id, sizeof id);
    if (a < 0)
        return ls_request_refuse(env, wsi, 400, "model id too long (at most %d bytes)",
                                 LS_MODEL_ID_MAX);
    if (!a || !id[0]) return ls_request_refuse(env, wsi, 400, "missing model=ID query parameter");
    ls_registry_entry e;
    ls_error err = {0};
    int rc = ls_registry_state(env->registry, id, &e, &err);
    if (rc) return ls_request_refuse(env, wsi, ls_http_status_for(rc), "%s", err.msg);
    char busy[160];
    if (!ls_env_admit(env, 0, busy, sizeof busy))
        return ls_request_refuse(env, wsi, 503, "%s", busy);
    return 0;
}

int ls_stream_open(ls_streams *set, struct lws *wsi, ls_socket *sock)
{
    ls_env *env = set->env;
    stream *s = calloc(1, sizeof *s);
    if (!s) return -1;
    ls_conn_init(&s->c, &stream_ops, env->hub, wsi);
    pthread_mutex_init(&s->lock, NULL);
    s->set = set;
    s->env = env;
    char id[LS_MODEL_ID_MAX + 8] = "";
    ls_request_arg(wsi, "model=", id, sizeof id);
    snprintf(s->model_id, sizeof s->model_id, "%s", id);
    s->last_rx = s->opened_t = ls_now();
    s->log_id = ++set->opened;
    if (env->cfg.verbose)
        lwsl_user("stream %llu open: model %s\n", (unsigned long long)s->log_id, s->model_id);
    sock->conn = &s->c;
    atomic_fetch_add(&env->active_streams, 1);
    ls_metrics_add(env->metrics, LS_M_SESSIONS_TOTAL, 1);
    streams_add(set, s);
    return 0;
}
