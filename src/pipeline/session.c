/* session.c - the streaming lip-sync pipeline.
 *
 * Audio is cut into steps of at most one second; after each step the
 * session stages every mel window that no later audio can change into the
 * encoder's batch, every frame whose features are final into the UNet's
 * batch, and runs each batch as it fills (or partly filled on flush/finish).
 * Finished frames wait in an output queue in order until pulled.
 */
#include "pipeline/session.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "audio/windows.h"
#include "avatar/painter.h"
#include "core/bufpool.h"
#include "core/clock.h"
#include "core/fps.h"
#include "pipeline/features.h"
#include "pipeline/model_internal.h"
#include "pipeline/silence.h"

#define STEP_SAMPLES 16000 /* audio per internal step: bounds every buffer below */
#define MEL_RING 1024      /* mel rows kept; a step adds at most 81 */
#define HOP_RING 2048      /* per-hop audio energies kept (silence); indexed like mel rows */
#define WINDOW_FLOATS (LS_MEL_BINS * LS_MEL_WINDOW)
#define FACE_FLOATS (6 * 320 * 320)
#define OUT_FLOATS (3 * 320 * 320)

typedef struct paint_job paint_job;

typedef struct queued_frame {
    ls_buffer *buf;
    int64_t index, avatar_frame;
    int silent;
} queued_frame;

struct ls_session {
    ls_model *model;
    ls_pool *pool;
    const ls_model_engines *eng;
    ls_engine_ctx *unet_ctx, *enc_ctx;
    ls_avatar *avatar;
    ls_painter *painter;
    ls_buffer_pool *out_buffers;
    ls_paint_options paint; /* paint.format: the frames' format */
    int batch, n_avatar;
    int64_t start_frame;
    int64_t range_first, range_end; /* output indices made (first_frame, frame_count) */

    /* Audio: streaming mel, rows kept in a ring (row t at t % MEL_RING). */
    ls_mel *mel;
    float *mel_ring, *mel_step; /* ring, and the rows one step emits */
    int64_t mel_rows;           /* rows of the current stream so far */

    /* Silence: sum of squares of each 200-sample hop h (h % HOP_RING). */
    double silence_energy;      /* (silence_rms)^2, 0 when off */
    double *hop_energy;
    ls_energy energy;           /* blocks of one hop; its samples: the stream's so far */

    /* Encoder: windows staged into enc_in, outputs E[k] in a ring. */
    float *enc_in, *enc_out, *feat_ring;
    int feat_cap;
    int enc_fill;
    int64_t windows_staged, windows_encoded;
    int64_t n_windows; /* -1 until the stream ends */

    /* UNet: frames staged into the two input tensors; outputs alternate
     * between two buffers so that one batch is painted while the next runs. */
    float *unet_visual, *unet_audio, *unet_out[2];
    int unet_fill, out_cur;
    void (*unet_tap)(void *ctx, const float *visual, const float *audio, int items);
    void *unet_tap_ctx;
    struct paint_job {
        ls_session *s;
        const float *out;  /* the batch's UNet outputs */
        int64_t first;     /* output index of its first frame */
        int n;             /* frames; 0 when nothing waits */
        int rc;
        ls_error err;
        ls_pool_job job;
        int started;
    } painting;
    int64_t frames_staged;  /* frames of the current stream staged */
    int64_t stream_base;    /* output index of the current stream's frame 0 */

    /* Output queue: a growing ring of finished frames. */
    queued_frame *queue;
    int q_cap, q_head, q_len;
    ls_buffer *pulled; /* the frame last returned by pull, freed on the next */

    atomic_int interrupt_requested;
    int finished;
    ls_stage_times times;
};

static const float *feature_row(void *ctx, int64_t k)
{
    ls_session *s = ctx;
    return s->feat_ring + (size_t)(k % s->feat_cap) * LS_FEATURE_DIM;
}

static int64_t next_output_index(const ls_session *s)
{
    return s->stream_base + s->frames_staged;
}

/* Puts every queued frame's buffer back. */
static void drop_queue(ls_session *s)
{
    for (int i = 0; i < s->q_len; i++) ls_buffer_put(s->queue[(s->q_head + i) % s->q_cap].buf);
    s->q_head = s->q_len = 0;
}

/* Starts a fresh audio stream whose frame 0 is the next output index. */
static void reset_stream(ls_session *s)
{
    s->stream_base = next_output_index(s) - s->unet_fill; /* unrun frames are dropped */
    ls_mel_reset(s->mel);
    s->mel_rows = 0;
    ls_energy_init(&s->energy, LS_MEL_HOP);
    s->enc_fill = 0;
    s->windows_staged = s->windows_encoded = 0;
    s->n_windows = -1;
    s->unet_fill = 0;
    s->frames_staged = 0;
    s->finished = 0;
}

static int finish_paint(ls_session *s, ls_error *err);

static int check_interrupt(ls_session *s)
{
    if (!atomic_exchange(&s->interrupt_requested, 0)) return 0;
    finish_paint(s, NULL); /* its frames go with the rest of the queue */
    drop_queue(s);
    reset_stream(s);
    return 1;
}

static int queue_push(ls_session *s, ls_buffer *buf, int64_t index, int64_t avatar_frame,
                      int silent, ls_error *err)
{
    if (s->q_len == s->q_cap) {
        int cap = s->q_cap ? 2 * s->q_cap : 64;
        queued_frame *q = malloc((size_t)cap * sizeof *q);
        if (!q) return ls_error_set(err, LS_ERR_NOMEM, "cannot grow the frame queue");
        for (int i = 0; i < s->q_len; i++) q[i] = s->queue[(s->q_head + i) % s->q_cap];
        free(s->queue);
        s->queue = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    s->queue[(s->q_head + s->q_len++) % s->q_cap] = (queued_frame){buf, index, avatar_frame, silent};
    return LS_OK;
}

static int run_encoder(ls_session *s, ls_error *err)
{
    if (s->enc_fill == 0) return LS_OK;
    double t0 = ls_now();
    const float *in[1] = {s->enc_in};
    float *out[1] = {s->enc_out};
    int rc = ls_engine_run(s->enc_ctx, in, out, err);
    if (rc) return ls_error_prefix(err, "audio encoder");
    for (int i = 0; i < s->enc_fill; i++) {
        int64_t k = s->windows_encoded + i;
        memcpy(s->feat_ring + (size_t)(k % s->feat_cap) * LS_FEATURE_DIM,
               s->enc_out + (size_t)i * LS_FEATURE_DIM, LS_FEATURE_DIM * sizeof(float));
    }
    s->windows_encoded += s->enc_fill;
    s->enc_fill = 0;
    s->times.encoder += ls_now() - t0;
    s->times.encoder_batches++;
    return LS_OK;
}

/* The range as frames of the current stream: [*first, *end). */
static void stream_range(const ls_session *s, int64_t *first, int64_t *end)
{
    *first = s->range_first - s->stream_base;
    *end = s->range_end == INT64_MAX ? INT64_MAX : s->range_end - s->stream_base;
}

/* Every frame of the range is out (painted and queued). */
static int range_done(const ls_session *s)
{
    return s->range_end != INT64_MAX && s->stream_base + s->frames_staged >= s->range_end &&
           s->unet_fill == 0;
}

/* Stages the windows no later audio can change (all of them once the stream
 * has ended), running the encoder on every full batch. Windows no frame of
 * the range needs are skipped (before it) or not staged (after it). */
static int stage_windows(ls_session *s, ls_error *err)
{
    int64_t first, end;
    stream_range(s, &first, &end);
    for (;;) {
        int64_t k = s->windows_staged;
        if (first > 0 && s->enc_fill == 0 && k < ls_feature_first_window(first)) {
            /* Nothing was encoded yet: the ring simply starts later. */
            s->windows_staged = s->windows_encoded = ls_feature_first_window(first);
            continue;
        }
        if (end != INT64_MAX && k > ls_feature_last_window(end - 1, s->n_windows))
            return run_encoder(s, err); /* the range's last windows: no fuller batch comes */
        size_t start;
        if (s->n_windows >= 0) {
            if (k >= s->n_windows) return LS_OK;
            start = ls_mel_window_start((size_t)k, (size_t)s->mel_rows);
        } else {
            start = ls_mel_window_start((size_t)k, 0);
            if ((int64_t)start + LS_MEL_WINDOW > s->mel_rows) return LS_OK;
        }
        /* The frames that still need E[k - feat_cap] must be staged first. */
        if (k - ls_feature_first_window(s->frames_staged) >= s->feat_cap) return LS_OK;
        float *dst = s->enc_in + (size_t)s->enc_fill * WINDOW_FLOATS;
        for (int b = 0; b < LS_MEL_BINS; b++)
            for (int r = 0; r < LS_MEL_WINDOW; r++)
                dst[b * LS_MEL_WINDOW + r] =
                    s->mel_ring[(size_t)((int64_t)(start + (size_t)r) % MEL_RING) * LS_MEL_BINS + (size_t)b];
        s->windows_staged++;
        if (++s->enc_fill == s->batch) {
            int rc = run_encoder(s, err);
            if (rc) return rc;
        }
    }
}

/* Output frame `index`: the avatar frame painted with model_out, or as it is
 * when model_out is NULL (silence), encoded into the output queue. */
static int paint_frame(ls_session *s, int64_t index, const float *model_out, ls_error *err)
{
    int64_t av = ls_avatar_pingpong(s->n_avatar, (int)s->start_frame, index);
    double t0 = ls_now();
    ls_buffer *buf = NULL;
    int rc = ls_painter_output(s->painter, s->pool, (int)av, model_out, &s->paint, s->out_buffers,
                               &buf, err);
    s->times.composite += ls_now() - t0;
    if (!rc) rc = queue_push(s, buf, index, av, model_out == NULL, err);
    if (rc) {
        ls_buffer_put(buf);
        return rc;
    }
    s->times.frames++;
    if (!model_out) s->times.silent_frames++;
    return LS_OK;
}

/* Composites and encodes a UNet batch into the output queue. Runs as a
 * one-band pool loop (the painter belongs to one thread at a time; its own
 * row bands nest on the same pool) while the next batch's UNet runs. */
static void paint_band(void *ctx, int begin, int end, int band)
{
    (void)begin;
    (void)end;
    (void)band;
    paint_job *p = ctx;
    ls_session *s = p->s;
    for (int i = 0; i < p->n && !p->rc; i++)
        p->rc = paint_frame(s, p->first + i, p->out + (size_t)i * OUT_FLOATS, &p->err);
}

/* Waits for the batch being painted and hands on its error, if any. */
static int finish_paint(ls_session *s, ls_error *err)
{
    paint_job *p = &s->painting;
    if (!p->n) return LS_OK;
    if (!p->started) ls_pool_start(s->pool, &p->job, 1, 1, paint_band, p);
    ls_pool_wait(s->pool, &p->job);
    int rc = p->rc;
    if (rc && err) *err = p->err;
    p->n = 0;
    p->started = 0;
    return rc;
}

static int run_unet(ls_session *s, ls_error *err)
{
    if (s->unet_fill == 0) return LS_OK;
    /* Paint the previous batch on the pool while this one runs. */
    if (s->painting.n && !s->painting.started) {
        ls_pool_start(s->pool, &s->painting.job, 1, 1, paint_band, &s->painting);
        s->painting.started = 1;
    }
    double t0 = ls_now();
    const float *in[2];
    in[s->eng->unet_visual] = s->unet_visual;
    in[s->eng->unet_audio] = s->unet_audio;
    if (s->unet_tap) s->unet_tap(s->unet_tap_ctx, s->unet_visual, s->unet_audio, s->unet_fill);
    float *out[1] = {s->unet_out[s->out_cur]};
    int rc = ls_engine_run(s->unet_ctx, in, out, err);
    s->times.unet += ls_now() - t0;
    int prc = finish_paint(s, rc ? NULL : err);
    if (rc) return ls_error_prefix(err, "UNet");
    if (prc) return prc;
    s->times.batches++;
    s->painting = (paint_job){.s = s, .out = s->unet_out[s->out_cur],
                           .first = next_output_index(s) - s->unet_fill, .n = s->unet_fill};
    s->out_cur ^= 1;
    s->unet_fill = 0;
    return LS_OK;
}

/* Whether frame i's whole audio window is quieter than silence_rms: every
 * sample its features saw, from the first row of its first mel window to the
 * last row of its last (a row spans HALF_FFT_HOPS hops either side of its
 * hop). Those rows exist, so the hops are complete, or the stream has ended
 * and the last hop holds what there is. */
#define HALF_FFT_HOPS (LS_MEL_N_FFT / 2 / LS_MEL_HOP)
static int frame_is_silent(const ls_session *s, int64_t i)
{
    size_t rows = s->n_windows >= 0 ? (size_t)s->mel_rows : 0;
    int64_t h0 = (int64_t)ls_mel_window_start((size_t)ls_feature_first_window(i), rows);
    int64_t last = ls_feature_last_window(i, s->n_windows);
    int64_t h1 = (int64_t)ls_mel_window_start((size_t)last, rows) + LS_MEL_WINDOW - 1 + HALF_FFT_HOPS;
    h0 = h0 > HALF_FFT_HOPS ? h0 - HALF_FFT_HOPS : 0;
    int64_t samples = s->energy.samples;
    int64_t have = (samples + LS_MEL_HOP - 1) / LS_MEL_HOP;
    if (h1 > have) h1 = have;
    int64_t n = (h1 < have ? h1 * LS_MEL_HOP : samples) - h0 * LS_MEL_HOP;
    if (n <= 0) return 1;
    double e = 0;
    for (int64_t h = h0; h < h1; h++)
        e += h == have - 1 && samples % LS_MEL_HOP ? s->energy.partial
                                                   : s->hop_energy[h % HOP_RING];
    return e < s->silence_energy * (double)n;
}

/* Queues frame i as the avatar's own frame, after every frame before it. */
static int emit_silent(ls_session *s, int64_t i, ls_error *err)
{
    int rc = run_unet(s, err);
    if (!rc) rc = finish_paint(s, err);
    if (!rc) rc = paint_frame(s, s->stream_base + i, NULL, err);
    if (!rc) s->frames_staged++;
    return rc;
}

/* Stages every frame whose features are final, running full UNet batches. */
static int stage_frames(ls_session *s, ls_error *err)
{
    int64_t first, end;
    stream_range(s, &first, &end);
    for (;;) {
        int64_t i = s->frames_staged;
        if (i < first && s->unet_fill == 0) {
            s->frames_staged = first; /* frames before the range are never made */
            continue;
        }
        if (i >= end) return run_unet(s, err); /* the range is staged: run what waits */
        if (s->n_windows >= 0) {
            if (i >= ls_feature_frame_count(s->n_windows)) return LS_OK;
            if (ls_feature_last_window(i, s->n_windows) >= s->windows_encoded) return LS_OK;
        } else if (ls_feature_last_window(i, -1) >= s->windows_encoded) {
            return LS_OK;
        }
        if (s->silence_energy > 0 && frame_is_silent(s, i)) {
            int rc = emit_silent(s, i, err);
            if (rc) return rc;
            continue;
        }
        int slot = s->unet_fill;
        ls_feature_assemble(i, s->n_windows, feature_row, s,
                            s->unet_audio + (size_t)slot * LS_FEATURE_FLOATS);
        int64_t av = ls_avatar_pingpong(s->n_avatar, (int)s->start_frame, s->stream_base + i);
        double t0 = ls_now();
        int rc = ls_painter_input(s->painter, s->pool, (int)av,
                                  s->unet_visual + (size_t)slot * FACE_FLOATS, err);
        s->times.input += ls_now() - t0;
        if (rc) return rc;
        s->frames_staged++;
        if (++s->unet_fill == s->batch) {
            rc = run_unet(s, err);
            if (rc) return rc;
        }
    }
}

/* Runs what the audio so far allows; `partial` also runs part-filled batches.
 * Returns with every batch that ran painted and queued. */
static int pump_batches(ls_session *s, int partial, ls_error *err);
static int pump(ls_session *s, int partial, ls_error *err)
{
    int rc = pump_batches(s, partial, err);
    int prc = finish_paint(s, rc ? NULL : err);
    return rc ? rc : prc;
}

static int pump_batches(ls_session *s, int partial, ls_error *err)
{
    for (;;) {
        int64_t before = s->frames_staged + s->windows_staged;
        int rc = stage_windows(s, err);
        if (!rc) rc = stage_frames(s, err);
        if (rc) return rc;
        if (partial) {
            /* Encode the staged windows even if the batch is not full, as
             * frames may be waiting on them; then the same for frames. */
            if (s->enc_fill) {
                rc = run_encoder(s, err);
                if (!rc) rc = stage_frames(s, err);
                if (rc) return rc;
            }
            if (s->unet_fill && (rc = run_unet(s, err))) return rc;
        }
        /* Partial batches ran above, so no progress means nothing is left
         * that the audio so far allows. */
        if (s->frames_staged + s->windows_staged == before) return LS_OK;
        if (check_interrupt(s)) return LS_OK;
    }
}

static void store_hop_energy(void *ctx, int64_t hop, double sum_sq)
{
    ls_session *s = ctx;
    s->hop_energy[hop % HOP_RING] = sum_sq;
}

/* Sums of squares per hop (silence.h), only when the option is on. */
static void add_energy(ls_session *s, const float *x, size_t n)
{
    if (s->silence_energy <= 0) return;
    ls_energy_push(&s->energy, x, n, store_hop_energy, s);
}

static void add_mel_rows(ls_session *s, size_t n)
{
    for (size_t r = 0; r < n; r++)
        memcpy(s->mel_ring + (size_t)((s->mel_rows + (int64_t)r) % MEL_RING) * LS_MEL_BINS,
               s->mel_step + r * LS_MEL_BINS, LS_MEL_BINS * sizeof(float));
    s->mel_rows += (int64_t)n;
}

int ls_session_push_audio(ls_session *s, const float *samples, size_t n, ls_error *err)
{
    check_interrupt(s);
    if (s->finished) return ls_error_set(err, LS_ERR_STATE, "session already finished");
    if (n && !samples) return ls_error_set(err, LS_ERR_INVALID_ARG, "NULL audio");
    for (size_t off = 0; off < n;) {
        if (range_done(s)) return LS_OK; /* no frame left to make: the audio is not needed */
        size_t len = n - off < STEP_SAMPLES ? n - off : STEP_SAMPLES;
        double t0 = ls_now();
        size_t rows;
        int rc = ls_mel_push(s->mel, samples + off, len, s->mel_step, STEP_SAMPLES / LS_MEL_HOP + 2,
                             &rows, err);
        if (rc) return rc;
        add_mel_rows(s, rows);
        add_energy(s, samples + off, len);
        s->times.mel += ls_now() - t0;
        off += len;
        rc = pump(s, 0, err);
        if (rc) return rc;
        if (check_interrupt(s)) return LS_OK; /* the rest of this chunk is dropped too */
    }
    return LS_OK;
}

int ls_session_flush(ls_session *s, ls_error *err)
{
    check_interrupt(s);
    if (s->finished) return LS_OK;
    return pump(s, 1, err);
}

int ls_session_finish(ls_session *s, ls_error *err)
{
    check_interrupt(s);
    if (s->finished) return ls_error_set(err, LS_ERR_STATE, "session already finished");
    if (range_done(s)) {
        s->finished = 1;
        return LS_OK;
    }
    double t0 = ls_now();
    size_t rows;
    int rc = ls_mel_flush(s->mel, s->mel_step, STEP_SAMPLES / LS_MEL_HOP + 2, &rows, err);
    if (rc) return rc;
    add_mel_rows(s, rows);
    s->times.mel += ls_now() - t0;
    s->finished = 1;
    if (s->mel_rows < LS_MEL_WINDOW)
        return ls_error_set(err, LS_ERR_RANGE,
                            "audio too short: %lld mel rows, a frame needs %d (about 0.2 s)",
                            (long long)s->mel_rows, LS_MEL_WINDOW);
    s->n_windows = (int64_t)ls_mel_window_count((size_t)s->mel_rows);
    return pump(s, 1, err);
}

int ls_session_pull_frame(ls_session *s, ls_frame *frame)
{
    check_interrupt(s);
    ls_buffer_put(s->pulled);
    s->pulled = NULL;
    if (s->q_len == 0) return 0;
    queued_frame q = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
    s->pulled = q.buf;
    memset(frame, 0, sizeof *frame);
    frame->index = q.index;
    frame->timestamp = (double)q.index / LS_VIDEO_FPS;
    frame->avatar_frame = q.avatar_frame;
    frame->silent = q.silent;
    frame->format = s->paint.format;
    frame->width = q.buf->width;
    frame->height = q.buf->height;
    frame->data = q.buf->data;
    frame->size = q.buf->len;
    return 1;
}

int ls_session_pending_frames(const ls_session *s)
{
    return s->q_len;
}

void ls_session_interrupt(ls_session *s)
{
    atomic_store(&s->interrupt_requested, 1);
}

void ls_session_get_times(const ls_session *s, ls_stage_times *times)
{
    *times = s->times;
}

void ls_session_destroy(ls_session *s)
{
    if (!s) return;
    finish_paint(s, NULL);
    drop_queue(s);
    ls_buffer_put(s->pulled);
    free(s->queue);
    ls_buffer_pool_destroy(s->out_buffers);
    ls_painter_destroy(s->painter);
    ls_engine_ctx_destroy(s->unet_ctx);
    ls_engine_ctx_destroy(s->enc_ctx);
    ls_mel_destroy(s->mel);
    free(s->mel_ring);
    free(s->mel_step);
    free(s->hop_energy);
    free(s->enc_in);
    free(s->enc_out);
    free(s->feat_ring);
    free(s->unet_visual);
    free(s->unet_audio);
    free(s->unet_out[0]);
    free(s->unet_out[1]);
    ls_model_release(s->model);
    free(s);
}

int ls_session_create(ls_model *model, ls_pool *pool, const ls_session_options *opt,
                      ls_session **out, ls_error *err)
{
    *out = NULL;
    static const ls_session_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!model) return ls_error_set(err, LS_ERR_INVALID_ARG, "no model");
    ls_model_info info;
    ls_model_get_info(model, &info);
    if (opt->start_frame < 0 || opt->start_frame >= info.n_frames)
        return ls_error_set(err, LS_ERR_RANGE, "start frame %lld outside 0..%d",
                            (long long)opt->start_frame, info.n_frames - 1);
    if (opt->jpeg_quality < 0 || opt->jpeg_quality > 100)
        return ls_error_set(err, LS_ERR_RANGE, "jpeg quality %d outside 1..100", opt->jpeg_quality);
    if (!(opt->silence_rms >= 0 && opt->silence_rms <= 1))
        return ls_error_set(err, LS_ERR_RANGE, "silence rms %g outside 0..1", (double)opt->silence_rms);
    if (opt->first_frame < 0 || opt->frame_count < 0 || opt->first_frame > INT64_MAX - opt->frame_count)
        return ls_error_set(err, LS_ERR_RANGE, "frame range %lld + %lld is not valid",
                            (long long)opt->first_frame, (long long)opt->frame_count);
    if (opt->format != LS_FRAME_JPEG && opt->format != LS_FRAME_BGR && opt->format != LS_FRAME_RGBA)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "unknown frame format %d", (int)opt->format);
    int batch = opt->batch > 0 ? opt->batch : info.batch;
    const ls_model_engines *eng;
    int rc = ls_model_engines_get(model, batch, info.engine_threads, &eng, err);
    if (rc) return rc;

    ls_session *s = calloc(1, sizeof *s);
    if (!s) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate session");
    s->model = ls_model_retain(model);
    s->pool = pool;
    s->eng = eng;
    s->batch = batch;
    s->start_frame = opt->start_frame;
    s->range_first = opt->frame_count ? opt->first_frame : 0;
    s->range_end = opt->frame_count ? opt->first_frame + opt->frame_count : INT64_MAX;
    s->n_avatar = info.n_frames;
    s->avatar = ls_model_avatar(model);
    s->paint.format = opt->format;
    s->paint.jpeg_quality = opt->jpeg_quality;
    s->n_windows = -1;
    s->unet_tap = opt->unet_tap;
    s->unet_tap_ctx = opt->unet_tap_ctx;
    s->silence_energy = (double)opt->silence_rms * opt->silence_rms;
    ls_energy_init(&s->energy, LS_MEL_HOP);
    /* E rows live from the first window a staged frame needs to the newest. */
    s->feat_cap = 2 * batch + 64;
    rc = ls_engine_ctx_create(eng->unet, &s->unet_ctx, err);
    if (!rc) rc = ls_engine_ctx_create(eng->enc, &s->enc_ctx, err);
    if (!rc) rc = ls_painter_create(s->avatar, &s->painter, err);
    if (!rc) rc = ls_mel_create(&s->mel, err);
    if (!rc) {
        size_t cap = ls_painter_output_size(s->avatar, s->paint.format);
        rc = ls_buffer_pool_create(cap, 0, &s->out_buffers, err);
    }
    if (!rc) {
        s->mel_ring = calloc((size_t)MEL_RING * LS_MEL_BINS, sizeof(float));
        s->mel_step = calloc((size_t)(STEP_SAMPLES / LS_MEL_HOP + 2) * LS_MEL_BINS, sizeof(float));
        s->hop_energy = calloc(HOP_RING, sizeof(double));
        s->enc_in = calloc((size_t)batch * WINDOW_FLOATS, sizeof(float));
        s->enc_out = calloc((size_t)batch * LS_FEATURE_DIM, sizeof(float));
        s->feat_ring = calloc((size_t)s->feat_cap * LS_FEATURE_DIM, sizeof(float));
        s->unet_visual = calloc((size_t)batch * FACE_FLOATS, sizeof(float));
        s->unet_audio = calloc((size_t)batch * LS_FEATURE_FLOATS, sizeof(float));
        s->unet_out[0] = calloc((size_t)batch * OUT_FLOATS, sizeof(float));
        s->unet_out[1] = calloc((size_t)batch * OUT_FLOATS, sizeof(float));
        if (!s->mel_ring || !s->mel_step || !s->hop_energy || !s->enc_in || !s->enc_out || !s->feat_ring ||
            !s->unet_visual || !s->unet_audio || !s->unet_out[0] || !s->unet_out[1])
            rc = ls_error_set(err, LS_ERR_NOMEM, "cannot allocate session buffers (batch %d)", batch);
    }
    if (!rc && s->range_first > 0) {
        /* Mel rows before the range's first window are never read. A window
         * at the very end starts a few rows early (windows.h), hence the margin. */
        size_t row = ls_mel_window_start((size_t)ls_feature_first_window(s->range_first), 0);
        ls_mel_skip_rows(s->mel, row > LS_MEL_WINDOW ? row - LS_MEL_WINDOW : 0);
    }
    if (rc) {
        ls_session_destroy(s);
        return rc;
    }
    *out = s;
    return LS_OK;
}
