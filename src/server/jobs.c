/* jobs.c - HTTP routes that compute, run on workers (jobs.h). */
#include "server/jobs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "audio/audio.h"
#include "audio/decode.h"
#include "audio/pcm.h"
#include "audio/resample.h"
#include "core/clock.h"
#include "core/fps.h"
#include "media/video_writer.h"
#include "pipeline/drive.h"
#include "pipeline/features.h"
#include "server/webrtc.h"

/* Audio pushed at a time: 8 frames' worth, so a hang-up is noticed and the
 * job gives way to streams (job_proceed) about once per batch. */
#define PUSH_CHUNK (LS_AUDIO_MODEL_RATE / LS_VIDEO_FPS * 8)
/* The longest a job waits for streams' work at one turn: streams come
 * first, but a server saturated by streams still moves its jobs on. */
#define YIELD_MAX_S 2.0

cJSON *ls_model_entry_json(const ls_registry_entry *e)
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

void ls_job_body_release(ls_env *env, ls_job *job)
{
    ls_buf_free(&job->body);
    if (job->body_reserved) {
        atomic_fetch_sub(&env->body_bytes, (long long)job->body_reserved);
        job->body_reserved = 0;
    }
}

static void set_from_error(ls_env *env, ls_job *r, const ls_error *err)
{
    ls_response_error(env, r->resp, ls_http_status_for(err->code), "%s",
                      err->msg[0] ? err->msg : "failed");
}

static void set_json_obj(ls_env *env, ls_job *r, int status, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) {
        ls_response_error(env, r->resp, 500, "out of memory");
        return;
    }
    ls_response_json(r->resp, status, s);
    cJSON_free(s);
}

static void job_model(ls_env *env, ls_job *r)
{
    ls_error err = {0};
    int rc = r->kind == LS_JOB_LOAD ? ls_registry_load(env->registry, r->model, &err)
                                    : ls_registry_unload(env->registry, r->model, &err);
    ls_registry_entry e;
    if (!rc) rc = ls_registry_state(env->registry, r->model, &e, &err);
    if (rc) {
        set_from_error(env, r, &err);
        return;
    }
    set_json_obj(env, r, 200, ls_model_entry_json(&e));
}

/* The drive's sink for a job: frames to the job's own sink, and a hang-up
 * stops the job between chunks. */
typedef struct job_drive {
    ls_env *env;
    const ls_job *job;
    int (*take)(void *ctx, const ls_frame *f, ls_error *err);
    void *ctx;
} job_drive;

static int job_frame(void *arg, const ls_frame *f, ls_error *err)
{
    job_drive *d = arg;
    return d->take(d->ctx, f, err);
}

static int job_proceed(void *arg, ls_error *err)
{
    job_drive *d = arg;
    if (atomic_load(d->job->cancelled)) return ls_error_set(err, LS_ERR_STATE, "client went away");
    ls_workq_yield_to_streams(d->env->workq, YIELD_MAX_S);
    if (atomic_load(d->job->cancelled)) return ls_error_set(err, LS_ERR_STATE, "client went away");
    return LS_OK;
}

/* Runs a whole-audio session, handing frames to `take` in order: all of
 * them, or when count > 0 only frames first .. first+count-1 (the session
 * computes no others). */
static int run_session(ls_env *env, const ls_job *r, const float *x, size_t n,
                       ls_frame_format format, int64_t first, int64_t count,
                       int (*take)(void *ctx, const ls_frame *f, ls_error *err), void *ctx,
                       ls_stage_times *times, ls_error *err)
{
    ls_model *model;
    int rc = ls_registry_acquire(env->registry, r->model, &model, err);
    if (rc) return rc;
    ls_session_options so = {.start_frame = r->kind == LS_JOB_RENDER ? r->start_frame : 0,
                             .batch = env->cfg.batch,
                             .format = format,
                             .jpeg_quality = env->cfg.jpeg_quality,
                             .first_frame = first,
                             .frame_count = count};
    ls_session *s = NULL;
    rc = ls_session_create(model, env->pool, &so, &s, err);
    if (!rc) {
        job_drive d = {env, r, take, ctx};
        ls_drive_options dopt = {.chunk = PUSH_CHUNK, .finish = 1};
        ls_drive_sink sink = {.frame = job_frame, .proceed = job_proceed, .ctx = &d};
        rc = ls_session_drive(s, x, n, &dopt, &sink, err);
    }
    if (s) {
        ls_session_get_times(s, times);
        ls_session_destroy(s);
    }
    ls_registry_release(env->registry, model);
    return rc;
}

static cJSON *timings_json(const ls_stage_times *t, double decode_s, double total_s)
{
    cJSON *j = ls_stage_times_json(t);
    cJSON_AddNumberToObject(j, "decode_ms", decode_s * 1e3);
    cJSON_AddNumberToObject(j, "total_ms", total_s * 1e3);
    return j;
}

/* ---- /v1/batch ---- */

typedef struct batch_sink {
    ls_jpeg_list frames;
} batch_sink;

static int batch_take(void *ctx, const ls_frame *f, ls_error *err)
{
    batch_sink *b = ctx;
    if (ls_jpeg_list_add(&b->frames, f->index, f->avatar_frame, f->timestamp, f->data, f->size))
        return ls_error_set(err, LS_ERR_NOMEM, "out of memory for frame %lld",
                            (long long)f->index);
    return LS_OK;
}

static void job_batch(ls_env *env, ls_job *r)
{
    double t0 = ls_now();
    if (r->body.len % 4) {
        ls_response_error(env, r->resp, 400, "body of %zu bytes is not whole float32 samples",
                          r->body.len);
        return;
    }
    /* The body is f32le 16 kHz mono: the shared raw decoder checks every sample. */
    ls_raw_spec spec = {.format = LS_PCM_F32LE, .rate = LS_AUDIO_MODEL_RATE, .channels = 1};
    ls_audio audio;
    ls_error derr = {0};
    size_t n_samples = r->body.len / 4;
    ls_audio_limits lim = {.max_seconds = env->cfg.max_audio_seconds};
    int drc = ls_audio_decode_raw(r->body.data, r->body.len, &spec, &lim, &audio, &derr);
    ls_job_body_release(env, r); /* decoded: its bytes go back to max_body_bytes_total */
    if (drc) {
        if (derr.code == LS_ERR_TOO_LARGE)
            ls_response_error(env, r->resp, 413, "audio: %s (the server's max_audio_seconds)",
                              derr.msg);
        else if (derr.code == LS_ERR_NOMEM)
            ls_response_error(env, r->resp, 503, "out of memory for %zu samples", n_samples);
        else
            ls_response_error(env, r->resp, 400,
                              "the body must be float32 LE 16 kHz audio in [-1, 1]: %s", derr.msg);
        return;
    }
    float *x = audio.samples;
    size_t n = audio.n;
    batch_sink b = {{0}};
    ls_stage_times times = {0};
    ls_error err = {0};
    double decode_s = ls_now() - t0;
    /* Frames the whole clip gives (features.h); the session makes
     * only the requested ones, so a client walking a clip in batches pays for
     * each frame once. */
    int64_t total = ls_feature_frames_for_samples(n);
    int rc = LS_OK;
    if (total && r->start_frame >= total)
        rc = ls_error_set(&err, LS_ERR_RANGE,
                          "start_frame %lld is past the end: %zu samples give %lld frames",
                          (long long)r->start_frame, n, (long long)total);
    if (!rc)
        rc = run_session(env, r, x, n, LS_FRAME_JPEG, r->start_frame, r->batch_size, batch_take,
                         &b, &times, &err);
    free(x);
    if (rc) {
        set_from_error(env, r, &err);
        ls_jpeg_list_free(&b.frames);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", r->model);
    cJSON_AddNumberToObject(j, "start_frame", (double)r->start_frame);
    cJSON_AddNumberToObject(j, "batch_size", r->batch_size);
    cJSON_AddNumberToObject(j, "count", (double)b.frames.n);
    cJSON_AddNumberToObject(j, "total_frames", (double)total);
    cJSON_AddItemToObject(j, "timings", timings_json(&times, decode_s, ls_now() - t0));
    ls_metrics_add(env->metrics, LS_M_FRAMES_SENT, (double)b.frames.n);
    if (r->multipart) {
        char *meta = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        const char *boundary = "lipsync-frame-boundary";
        if (!meta || ls_frames_to_multipart(&b.frames, meta, boundary, &r->resp->body, &err)) {
            ls_response_error(env, r->resp, 500, "multipart: out of memory");
        } else {
            r->resp->status = 200;
            snprintf(r->resp->content_type, sizeof r->resp->content_type,
                     "multipart/mixed; boundary=%s", boundary);
        }
        cJSON_free(meta);
    } else {
        cJSON *arr = cJSON_AddArrayToObject(j, "frames");
        int bad = 0;
        for (size_t i = 0; i < b.frames.n; i++) {
            const ls_jpeg_frame *f = &b.frames.frames[i];
            char *b64 = ls_base64(f->data, f->size);
            cJSON *fo = cJSON_CreateObject();
            cJSON_AddNumberToObject(fo, "index", (double)f->index);
            cJSON_AddNumberToObject(fo, "avatar_frame", (double)f->avatar_frame);
            cJSON_AddNumberToObject(fo, "timestamp", f->timestamp);
            if (!b64 || !cJSON_AddStringToObject(fo, "jpeg", b64)) bad = 1;
            free(b64);
            cJSON_AddItemToArray(arr, fo);
        }
        if (bad) {
            cJSON_Delete(j);
            ls_response_error(env, r->resp, 500, "out of memory encoding frames");
        } else {
            set_json_obj(env, r, 200, j);
        }
    }
    ls_jpeg_list_free(&b.frames);
}

/* ---- /v1/render ---- */

typedef struct render_sink {
    ls_jpeg_list frames;
    ls_video_writer *writer;
    ls_video_writer_options wo;
    const char *path;
    const ls_audio *audio;
} render_sink;

static int render_take_jpeg(void *ctx, const ls_frame *f, ls_error *err)
{
    render_sink *rs = ctx;
    if (ls_jpeg_list_add(&rs->frames, f->index, f->avatar_frame, f->timestamp, f->data, f->size))
        return ls_error_set(err, LS_ERR_NOMEM, "out of memory for frame %lld",
                            (long long)f->index);
    return LS_OK;
}

/* The writer opens on the first frame, when the size is known. */
static int render_take_bgr(void *ctx, const ls_frame *f, ls_error *err)
{
    render_sink *rs = ctx;
    if (!rs->writer) {
        rs->wo.width = f->width;
        rs->wo.height = f->height;
        rs->wo.fps = LS_VIDEO_FPS;
        rs->wo.audio_rate = rs->audio->rate;
        int rc = ls_video_writer_open(rs->path, &rs->wo, &rs->writer, err);
        if (rc) return rc;
        rc = ls_video_writer_add_audio(rs->writer, rs->audio->samples, rs->audio->n, err);
        if (rc) return rc;
    }
    return ls_video_writer_add_frame(rs->writer, f->data, f->width * 3, err);
}

static int read_file(const char *path, ls_buf *out, ls_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return ls_error_set(err, LS_ERR_IO, "cannot reopen %s", path);
    uint8_t chunk[65536];
    size_t got;
    int rc = LS_OK;
    while (!rc && (got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (ls_buf_append(out, chunk, got)) rc = ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    fclose(fp);
    return rc;
}

static void job_render(ls_env *env, ls_job *r)
{
    double t0 = ls_now();
    ls_error err = {0};
    ls_audio audio = {0}, a16 = {0};
    /* The MP4 carries the upload's own audio, so that one keeps its rate and
     * is resampled after; the other outputs resample while decoding. The
     * limit bounds both before the file's length can. */
    int mp4 = !strcmp(r->output, "mp4");
    ls_audio_limits lim = {.max_seconds = env->cfg.max_audio_seconds,
                           .out_rate = mp4 ? 0 : LS_AUDIO_MODEL_RATE};
    int rc = ls_audio_decode_memory(r->body.data, r->body.len, &lim, &audio, &err);
    ls_job_body_release(env, r); /* decoded: its bytes go back to max_body_bytes_total */
    if (rc) {
        ls_error_prefix(&err, "audio");
        if (rc == LS_ERR_TOO_LARGE)
            ls_response_error(env, r->resp, 413, "%s (the server's max_audio_seconds)", err.msg);
        else
            set_from_error(env, r, &err);
        return;
    }
    const ls_audio *x = &audio;
    if (audio.rate != LS_AUDIO_MODEL_RATE) {
        rc = ls_resample(audio.samples, audio.n, audio.rate, LS_AUDIO_MODEL_RATE, &a16, &err);
        x = &a16;
    }
    double decode_s = ls_now() - t0;
    ls_stage_times times = {0};
    render_sink rs;
    memset(&rs, 0, sizeof rs);
    const char *disposition = "lipsync.mjpeg";
    if (!rc && !strcmp(r->output, "mp4")) {
        char path[] = "/tmp/lipsync-render-XXXXXX.mp4";
        int fd = mkstemps(path, 4);
        if (fd < 0) {
            rc = ls_error_set(&err, LS_ERR_IO, "cannot create a temporary file");
        } else {
            close(fd);
            rs.path = path;
            rs.audio = &audio;
            rc = run_session(env, r, x->samples, x->n, LS_FRAME_BGR, 0, 0, render_take_bgr, &rs, &times,
                             &err);
            if (rs.writer) {
                if (rc)
                    ls_video_writer_abort(rs.writer);
                else
                    rc = ls_video_writer_close(rs.writer, &err);
            }
            if (!rc) rc = read_file(path, &r->resp->body, &err);
            unlink(path);
        }
        snprintf(r->resp->content_type, sizeof r->resp->content_type, "video/mp4");
        disposition = "lipsync.mp4";
    } else if (!rc) {
        rc = run_session(env, r, x->samples, x->n, LS_FRAME_JPEG, 0, 0, render_take_jpeg, &rs, &times,
                         &err);
        if (!rc && !strcmp(r->output, "mjpeg")) {
            rc = ls_frames_to_mjpeg(&rs.frames, &r->resp->body, &err);
            snprintf(r->resp->content_type, sizeof r->resp->content_type, "video/x-motion-jpeg");
        } else if (!rc) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "model", r->model);
            cJSON_AddNumberToObject(m, "start_frame", (double)r->start_frame);
            cJSON_AddNumberToObject(m, "fps", LS_VIDEO_FPS);
            cJSON_AddNumberToObject(m, "frames", (double)rs.frames.n);
            cJSON_AddItemToObject(m, "timings", timings_json(&times, decode_s, ls_now() - t0));
            char *manifest = cJSON_PrintUnformatted(m);
            cJSON_Delete(m);
            rc = manifest ? ls_frames_to_zip(&rs.frames, manifest, &r->resp->body, &err)
                          : ls_error_set(&err, LS_ERR_NOMEM, "out of memory");
            cJSON_free(manifest);
            snprintf(r->resp->content_type, sizeof r->resp->content_type, "application/zip");
            disposition = "lipsync-frames.zip";
        }
    }
    ls_metrics_add(env->metrics, LS_M_FRAMES_SENT, (double)times.frames);
    ls_jpeg_list_free(&rs.frames);
    ls_audio_free(&audio);
    ls_audio_free(&a16);
    if (rc) {
        r->resp->body.len = 0;
        set_from_error(env, r, &err);
        return;
    }
    r->resp->status = 200;
    snprintf(r->resp->disposition, sizeof r->resp->disposition, "attachment; filename=\"%s\"",
             disposition);
}

/* POST /v1/webrtc: the offer in the body, the answer back with 201 and
 * the session's Location (WHIP). The request's session slot goes with the
 * call (ls_webrtc_offer gives it back if it fails). */
static void job_webrtc(ls_env *env, ls_job *r)
{
    ls_error err = {0};
    char id[LS_WEBRTC_ID_LEN + 1];
    ls_buf answer = {0};
    int rc = ls_webrtc_offer(env->webrtc, r->model, (const char *)r->body.data, r->body.len, id,
                             &answer, &err);
    ls_job_body_release(env, r);
    if (rc) {
        ls_buf_free(&answer);
        set_from_error(env, r, &err);
        return;
    }
    ls_response *a = r->resp;
    a->status = 201;
    snprintf(a->content_type, sizeof a->content_type, "application/sdp");
    snprintf(a->location, sizeof a->location, "/v1/webrtc/%s", id);
    ls_buf_free(&a->body);
    a->body = answer;
}

static void job_webrtc_end(ls_env *env, ls_job *r)
{
    ls_error err = {0};
    long long frames = 0;
    if (ls_webrtc_end(env->webrtc, r->session, &frames, &err)) {
        set_from_error(env, r, &err);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", r->session);
    cJSON_AddStringToObject(j, "status", "ended");
    cJSON_AddNumberToObject(j, "frames", (double)frames);
    set_json_obj(env, r, 200, j);
}

void ls_job_run(ls_env *env, ls_job *job)
{
    switch (job->kind) {
    case LS_JOB_LOAD:
    case LS_JOB_UNLOAD: job_model(env, job); break;
    case LS_JOB_BATCH: job_batch(env, job); break;
    case LS_JOB_RENDER: job_render(env, job); break;
    case LS_JOB_WEBRTC: job_webrtc(env, job); break;
    case LS_JOB_WEBRTC_END: job_webrtc_end(env, job); break;
    default: ls_response_error(env, job->resp, 500, "no job for this route"); break;
    }
}
