/* push.c - a stream session pushed to a media server (push.h). */
#include "server/push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "audio/resample.h"
#include "core/fps.h"
#include "image/codec.h"
#include "media/video_writer.h"

#define FRAME_SAMPLES (LS_AUDIO_MODEL_RATE / LS_VIDEO_FPS) /* 640: one frame's audio */
#define PUSH_AUDIO_RATE 44100
#define PUSH_AUDIO_BITRATE 128000
#define HOST_MAX 128

struct ls_push {
    ls_video_writer *w;
    ls_image_decoder *dec;
    ls_image bgr;           /* a JPEG frame decoded */
    ls_resampler *rs;       /* 16 kHz -> PUSH_AUDIO_RATE */
    float *fifo;            /* input audio not yet sent: fifo[off .. len) */
    size_t off, len, cap;
    float *out;             /* one frame's audio resampled */
    size_t out_cap;
    int width, height;
    int64_t frames;
    char host[HOST_MAX];    /* for messages: the server, never the key */
};

static int has_prefix(const char *s, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && !memcmp(s, p, n);
}

int ls_push_url_ok(const char *url, size_t len, char *why, size_t cap)
{
    const char *want = "start: output wants rtmp://HOST/APP/KEY (or rtmps://)";
    if (len > LS_PUSH_URL_MAX) {
        snprintf(why, cap, "start: output is longer than %d bytes", LS_PUSH_URL_MAX);
        return 0;
    }
    /* Printable ASCII only: no control bytes, and no space, after which
     * FFmpeg's RTMP reads options ("rtmp://h/a/k live=1 ..."). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f) {
            snprintf(why, cap, "start: output has a space, control or non-ASCII byte at %zu", i);
            return 0;
        }
    }
    size_t at = has_prefix(url, len, "rtmp://") ? 7 : has_prefix(url, len, "rtmps://") ? 8 : 0;
    if (!at) {
        snprintf(why, cap, "%s", want);
        return 0;
    }
    /* A host, then an application: FFmpeg connects to nothing else. */
    const char *slash = memchr(url + at, '/', len - at);
    if (!slash || slash == url + at || slash + 1 == url + len || slash[1] == '/') {
        snprintf(why, cap, "%s", want);
        return 0;
    }
    return 1;
}

/* The host[:port] of url, without any user:password@ before it. */
static void host_of(const char *url, char *host, size_t cap)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/");
    const char *atsign = memchr(h, '@', n);
    if (atsign) {
        n -= (size_t)(atsign + 1 - h);
        h = atsign + 1;
    }
    snprintf(host, cap, "%.*s", (int)(n < cap ? n : cap - 1), h);
}

void ls_push_abort(ls_push *p)
{
    if (!p) return;
    ls_video_writer_abort(p->w);
    ls_image_decoder_destroy(p->dec);
    ls_image_free(&p->bgr);
    ls_resampler_destroy(p->rs);
    free(p->fifo);
    free(p->out);
    free(p);
}

/* A writer's error, said of the host: the key stays out of the message
 * (and so out of logs). url: the message may start "<url>: why". */
static int push_fail(ls_push *p, ls_error *err, const char *url)
{
    char reason[LS_ERROR_MSG_MAX];
    snprintf(reason, sizeof reason, "%s", err->msg);
    const char *r = reason;
    size_t n = url ? strlen(url) : 0, m = strlen(reason);
    if (url && !strncmp(reason, url, n < m ? n : m)) /* the URL, maybe cut short */
        r = m > n + 2 && reason[n] == ':' ? reason + n + 2 : "cannot connect";
    int code = err->code ? err->code : LS_ERR_IO;
    return ls_error_set(err, code, "rtmp push to %s: %s", p->host, r);
}

int ls_push_open(const char *url, int width, int height, ls_push **out, ls_error *err)
{
    *out = NULL;
    ls_push *p = calloc(1, sizeof *p);
    if (!p) return ls_error_set(err, LS_ERR_NOMEM, "push: out of memory");
    host_of(url, p->host, sizeof p->host);
    p->width = width;
    p->height = height;
    int rc = ls_image_decoder_create(&p->dec, err);
    if (!rc) rc = ls_image_alloc(&p->bgr, width, height, 3, err);
    if (!rc) rc = ls_resampler_create(LS_AUDIO_MODEL_RATE, PUSH_AUDIO_RATE, &p->rs, err);
    if (!rc) {
        p->out_cap = ls_resampler_max_out(p->rs, FRAME_SAMPLES) + 1;
        if (!(p->out = malloc(p->out_cap * sizeof *p->out)))
            rc = ls_error_set(err, LS_ERR_NOMEM, "push: out of memory");
    }
    if (rc) {
        ls_push_abort(p);
        return rc;
    }
    ls_video_writer_options o = {
        .width = width,
        .height = height,
        .fps = LS_VIDEO_FPS,
        .threads = 1, /* the session's compute owns the cores */
        .audio_rate = PUSH_AUDIO_RATE,
        .audio_bitrate = PUSH_AUDIO_BITRATE,
        .container = "flv",
        .live = 1,
        .io_timeout_ms = LS_PUSH_IO_TIMEOUT_MS,
    };
    if ((rc = ls_video_writer_open(url, &o, &p->w, err))) {
        push_fail(p, err, url);
        ls_push_abort(p);
        return err->code;
    }
    *out = p;
    return LS_OK;
}

int ls_push_audio(ls_push *p, const float *x, size_t n, ls_error *err)
{
    if (p->off && p->len + n > p->cap) { /* room from what was sent first */
        memmove(p->fifo, p->fifo + p->off, (p->len - p->off) * sizeof *p->fifo);
        p->len -= p->off;
        p->off = 0;
    }
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 16384;
        while (cap < p->len + n) cap *= 2;
        float *f = realloc(p->fifo, cap * sizeof *f);
        if (!f) return ls_error_set(err, LS_ERR_NOMEM, "push: out of memory for audio");
        p->fifo = f;
        p->cap = cap;
    }
    memcpy(p->fifo + p->len, x, n * sizeof *x);
    p->len += n;
    return LS_OK;
}

/* Resampled audio to the writer (x NULL: the resampler's tail). */
static int send_audio(ls_push *p, const float *x, size_t n, ls_error *err)
{
    size_t got = 0;
    int rc = ls_resampler_process(p->rs, x, n, p->out, p->out_cap, &got, err);
    if (!rc && got && (rc = ls_video_writer_add_audio(p->w, p->out, got, err)))
        push_fail(p, err, NULL);
    return rc;
}

int ls_push_frame(ls_push *p, const ls_frame *f, ls_error *err)
{
    if (f->width != p->width || f->height != p->height)
        return ls_error_set(err, LS_ERR_STATE, "push: frame %dx%d, stream %dx%d", f->width,
                            f->height, p->width, p->height);
    const uint8_t *bgr = f->data;
    if (f->format == LS_FRAME_JPEG) {
        /* The session makes one format, the client's JPEG: the push decodes
         * it, so the client's bytes stay those of a stream without push. */
        int rc = ls_image_decode_into(p->dec, f->data, f->size, &p->bgr, err);
        if (rc) return rc;
        bgr = p->bgr.data;
    } else if (f->format != LS_FRAME_BGR) {
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "push: frames must be JPEG or BGR");
    }
    /* The frame's 40 ms of input; silence past the end of the audio. */
    float a[FRAME_SAMPLES];
    size_t have = p->len - p->off, take = have < FRAME_SAMPLES ? have : FRAME_SAMPLES;
    memcpy(a, p->fifo + p->off, take * sizeof *a);
    memset(a + take, 0, (FRAME_SAMPLES - take) * sizeof *a);
    p->off += take;
    int rc = send_audio(p, a, FRAME_SAMPLES, err);
    if (rc) return rc;
    int stride = f->format == LS_FRAME_JPEG ? (int)p->bgr.stride : f->width * 3;
    if ((rc = ls_video_writer_add_frame(p->w, bgr, stride, err))) return push_fail(p, err, NULL);
    p->frames++;
    return LS_OK;
}

void ls_push_restart(ls_push *p)
{
    /* The resampler keeps its filter: its output stays one continuous
     * stream, as long as the frames sent. */
    p->off = p->len = 0;
}

int64_t ls_push_frames(const ls_push *p)
{
    return p->frames;
}

int ls_push_close(ls_push *p, ls_error *err)
{
    if (!p) return LS_OK;
    int rc = send_audio(p, NULL, 0, err);
    if (!rc) {
        rc = ls_video_writer_close(p->w, err);
        p->w = NULL; /* closed or, on failure, aborted */
        if (rc) push_fail(p, err, NULL);
    }
    ls_push_abort(p);
    return rc;
}
