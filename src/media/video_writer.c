#include "media/video_writer.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fps.h"

struct ls_video_writer {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVFrame *vframe, *aframe;
    AVPacket *pkt;
    struct SwsContext *sws;
    AVAudioFifo *fifo;
    int width, height;
    int64_t next_vpts, next_apts;
    int64_t audio_samples; /* samples given, before AAC padding */
    AVPacket *held;        /* the newest video packet, written when the next comes */
    int has_held;
    int header_written;
    int is_file;           /* a local file (abort removes it), not a URL */
    /* io_timeout_ms: each public call arms the deadline; FFmpeg's interrupt
     * callback (polled while a socket waits) ends a wait past it. */
    double io_timeout, deadline;
    int timed_out;
};

static int interrupt_cb(void *ctx)
{
    ls_video_writer *w = ctx;
    if (w->deadline > 0 && ls_now() > w->deadline) w->timed_out = 1;
    return w->timed_out;
}

static void arm(ls_video_writer *w)
{
    if (w->io_timeout > 0) w->deadline = ls_now() + w->io_timeout;
}

static int av_fail(ls_error *err, int averr, const char *what)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof msg);
    return ls_error_set(err, LS_ERR_IO, "%s: %s", what, msg);
}

/* A failure of an I/O step: the deadline's own words when it was that (FFmpeg
 * only says "Immediate exit requested"). */
static int io_fail(ls_video_writer *w, ls_error *err, int averr, const char *what)
{
    if (w->timed_out)
        return ls_error_set(err, LS_ERR_IO, "%s: no progress within %.0f ms", what,
                            w->io_timeout * 1000);
    return av_fail(err, averr, what);
}

static int write_packet(ls_video_writer *w, AVPacket *pkt, AVStream *st, AVCodecContext *enc,
                        ls_error *err)
{
    av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
    pkt->stream_index = st->index;
    int rc = av_interleaved_write_frame(w->fmt, pkt);
    if (rc < 0) return io_fail(w, err, rc, "writing");
    return LS_OK;
}

/* Sends one frame (NULL flushes) and writes every packet that comes out. */
static int encode_and_write(ls_video_writer *w, AVCodecContext *enc, AVStream *st,
                            AVFrame *frame, ls_error *err)
{
    int rc = avcodec_send_frame(enc, frame);
    if (rc < 0) return av_fail(err, rc, "encoding");
    for (;;) {
        rc = avcodec_receive_packet(enc, w->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return LS_OK;
        if (rc < 0) return av_fail(err, rc, "encoding");
        if (enc == w->venc) {
            /* Keep the newest video packet back: at close its duration is
             * stretched to the end of the audio (see ls_video_writer_close). */
            if (w->has_held && (rc = write_packet(w, w->held, w->vst, enc, err))) return rc;
            av_packet_move_ref(w->held, w->pkt);
            w->has_held = 1;
            continue;
        }
        if ((rc = write_packet(w, w->pkt, st, enc, err))) return rc;
    }
}

static void writer_free(ls_video_writer *w)
{
    if (!w) return;
    avcodec_free_context(&w->venc);
    avcodec_free_context(&w->aenc);
    av_frame_free(&w->vframe);
    av_frame_free(&w->aframe);
    av_packet_free(&w->pkt);
    av_packet_free(&w->held);
    sws_freeContext(w->sws);
    if (w->fifo) av_audio_fifo_free(w->fifo);
    if (w->fmt) {
        if (w->fmt->pb) avio_closep(&w->fmt->pb);
        avformat_free_context(w->fmt);
    }
    free(w->path);
    free(w);
}

static int open_video(ls_video_writer *w, const ls_video_writer_options *o, ls_error *err)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) return ls_error_set(err, LS_ERR_UNSUPPORTED, "FFmpeg has no libx264 encoder");
    w->venc = avcodec_alloc_context3(codec);
    w->vst = avformat_new_stream(w->fmt, NULL);
    if (!w->venc || !w->vst) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate video stream");
    int fps = o->fps > 0 ? o->fps : LS_VIDEO_FPS;
    /* 4:2:0 wants even sizes; odd ones are padded by replicating the edge. */
    w->venc->width = (w->width + 1) & ~1;
    w->venc->height = (w->height + 1) & ~1;
    w->venc->pix_fmt = AV_PIX_FMT_YUV420P;
    w->venc->time_base = (AVRational){1, fps};
    w->venc->framerate = (AVRational){fps, 1};
    w->venc->gop_size = 2 * fps;
    /* No B-frames: packets come out in display order (the last one is the
     * last frame shown) and a live viewer waits for no future frame. */
    w->venc->max_b_frames = 0;
    w->venc->thread_count = o->threads > 0 ? o->threads : 1;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) w->venc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    char crf[16];
    snprintf(crf, sizeof crf, "%d", o->crf > 0 ? o->crf : 20);
    av_opt_set(w->venc->priv_data, "preset", o->preset ? o->preset : "veryfast", 0);
    av_opt_set(w->venc->priv_data, "crf", crf, 0);
    if (o->live) {
        /* A viewer joins at any keyframe and a media server cuts its HLS or
         * DASH segments there: no encoder lookahead or frame threads holding
         * frames back, the profile every player decodes (x264's baseline is
         * constrained baseline), and keyframes exactly every gop_size frames
         * (no scene-cut keyframes between them). */
        av_opt_set(w->venc->priv_data, "tune", "zerolatency", 0);
        av_opt_set(w->venc->priv_data, "profile", "baseline", 0);
        av_opt_set(w->venc->priv_data, "x264-params", "scenecut=0", 0);
    }
    int rc = avcodec_open2(w->venc, codec, NULL);
    if (rc < 0) return av_fail(err, rc, "opening H.264 encoder");
    rc = avcodec_parameters_from_context(w->vst->codecpar, w->venc);
    if (rc < 0) return av_fail(err, rc, "video stream parameters");
    w->vst->time_base = w->venc->time_base;
    w->vst->avg_frame_rate = w->venc->framerate;
    w->vframe = av_frame_alloc();
    if (!w->vframe) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate frame");
    w->vframe->format = AV_PIX_FMT_YUV420P;
    w->vframe->width = w->venc->width;
    w->vframe->height = w->venc->height;
    rc = av_frame_get_buffer(w->vframe, 0);
    if (rc < 0) return av_fail(err, rc, "allocating frame");
    w->sws = sws_getContext(w->width, w->height, AV_PIX_FMT_BGR24, w->width, w->height,
                            AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
    if (!w->sws) return ls_error_set(err, LS_ERR_INTERNAL, "cannot create colour converter");
    return LS_OK;
}

static int open_audio(ls_video_writer *w, const ls_video_writer_options *o, ls_error *err)
{
    if (o->audio_rate < 8000 || o->audio_rate > 96000)
        return ls_error_set(err, LS_ERR_RANGE, "audio rate %d outside 8000..96000", o->audio_rate);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec) return ls_error_set(err, LS_ERR_UNSUPPORTED, "FFmpeg has no AAC encoder");
    w->aenc = avcodec_alloc_context3(codec);
    w->ast = avformat_new_stream(w->fmt, NULL);
    if (!w->aenc || !w->ast) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate audio stream");
    w->aenc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    w->aenc->sample_rate = o->audio_rate;
    av_channel_layout_default(&w->aenc->ch_layout, 1);
    w->aenc->bit_rate = o->audio_bitrate > 0 ? o->audio_bitrate : 96000;
    w->aenc->time_base = (AVRational){1, o->audio_rate};
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) w->aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(w->aenc, codec, NULL);
    if (rc < 0) return av_fail(err, rc, "opening AAC encoder");
    rc = avcodec_parameters_from_context(w->ast->codecpar, w->aenc);
    if (rc < 0) return av_fail(err, rc, "audio stream parameters");
    w->ast->time_base = w->aenc->time_base;
    w->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, 1, w->aenc->frame_size * 4);
    w->aframe = av_frame_alloc();
    if (!w->fifo || !w->aframe) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate audio buffers");
    w->aframe->format = AV_SAMPLE_FMT_FLTP;
    w->aframe->sample_rate = o->audio_rate;
    w->aframe->nb_samples = w->aenc->frame_size;
    av_channel_layout_copy(&w->aframe->ch_layout, &w->aenc->ch_layout);
    rc = av_frame_get_buffer(w->aframe, 0);
    if (rc < 0) return av_fail(err, rc, "allocating audio frame");
    return LS_OK;
}

int ls_video_writer_open(const char *path, const ls_video_writer_options *o,
                         ls_video_writer **out, ls_error *err)
{
    *out = NULL;
    if (!path || !o) return ls_error_set(err, LS_ERR_INVALID_ARG, "video writer: no path/options");
    if (o->width < 2 || o->height < 2 || o->width > 8192 || o->height > 8192)
        return ls_error_set(err, LS_ERR_RANGE, "video size %dx%d outside 2..8192", o->width, o->height);
    ls_video_writer *w = calloc(1, sizeof *w);
    if (!w) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate video writer");
    w->path = strdup(path);
    w->width = o->width;
    w->height = o->height;
    w->pkt = av_packet_alloc();
    w->held = av_packet_alloc();
    /* avio's protocol for the path: "file" for a plain path (or none known). */
    const char *proto = avio_find_protocol_name(path);
    w->is_file = !proto || !strcmp(proto, "file");
    w->io_timeout = o->io_timeout_ms > 0 ? o->io_timeout_ms / 1000.0 : 0;
    int rc;
    if (o->container) {
        if (!av_guess_format(o->container, NULL, NULL)) {
            writer_free(w);
            return ls_error_set(err, LS_ERR_UNSUPPORTED, "FFmpeg has no '%.40s' muxer",
                                o->container);
        }
        rc = avformat_alloc_output_context2(&w->fmt, NULL, o->container, path);
    } else {
        rc = avformat_alloc_output_context2(&w->fmt, NULL, NULL, path);
        if (rc < 0 || !w->fmt) {
            /* No container known by extension: default to MP4. */
            rc = avformat_alloc_output_context2(&w->fmt, NULL, "mp4", path);
        }
    }
    if (rc < 0 || !w->fmt || !w->pkt || !w->held || !w->path) {
        writer_free(w);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot create output context for %s", path);
    }
    w->fmt->interrupt_callback = (AVIOInterruptCB){interrupt_cb, w};
    rc = open_video(w, o, err);
    if (!rc && o->audio_rate) rc = open_audio(w, o, err);
    arm(w); /* one deadline for the connect and the header */
    if (!rc) {
        int av = avio_open2(&w->fmt->pb, path, AVIO_FLAG_WRITE, &w->fmt->interrupt_callback, NULL);
        if (av < 0) rc = io_fail(w, err, av, path);
    }
    if (!rc) {
        int av = avformat_write_header(w->fmt, NULL);
        if (av < 0) rc = io_fail(w, err, av, "writing header");
        else w->header_written = 1;
    }
    if (rc) {
        ls_video_writer_abort(w);
        return rc;
    }
    *out = w;
    return LS_OK;
}

int ls_video_writer_add_frame(ls_video_writer *w, const uint8_t *bgr, int stride, ls_error *err)
{
    int rc = av_frame_make_writable(w->vframe);
    if (rc < 0) return av_fail(err, rc, "frame buffer");
    const uint8_t *src[1] = {bgr};
    int src_stride[1] = {stride};
    /* FFmpeg's own log is off by default (media/log.h): a failure must say so here. */
    rc = sws_scale(w->sws, src, src_stride, 0, w->height, w->vframe->data, w->vframe->linesize);
    if (rc < 0) return av_fail(err, rc, "converting the frame to YUV");
    /* Odd sizes: replicate the last row/column into the padding. */
    if (w->venc->width != w->width || w->venc->height != w->height) {
        for (int p = 0; p < 3; p++) {
            int cw = p ? w->venc->width / 2 : w->venc->width;
            int ch = p ? w->venc->height / 2 : w->venc->height;
            int vw = p ? (w->width + 1) / 2 : w->width, vh = p ? (w->height + 1) / 2 : w->height;
            uint8_t *d = w->vframe->data[p];
            int ls = w->vframe->linesize[p];
            for (int y = 0; y < vh; y++)
                for (int x = vw; x < cw; x++) d[y * ls + x] = d[y * ls + vw - 1];
            for (int y = vh; y < ch; y++) memcpy(d + y * ls, d + (vh - 1) * ls, (size_t)cw);
        }
    }
    w->vframe->pts = w->next_vpts++;
    arm(w);
    return encode_and_write(w, w->venc, w->vst, w->vframe, err);
}

/* Encodes whole AAC frames from the fifo; with `final`, pads the last one. */
static int drain_audio(ls_video_writer *w, int final, ls_error *err)
{
    int fs = w->aenc->frame_size;
    while (av_audio_fifo_size(w->fifo) >= fs || (final && av_audio_fifo_size(w->fifo) > 0)) {
        int rc = av_frame_make_writable(w->aframe);
        if (rc < 0) return av_fail(err, rc, "audio frame");
        int n = av_audio_fifo_size(w->fifo) < fs ? av_audio_fifo_size(w->fifo) : fs;
        av_audio_fifo_read(w->fifo, (void **)w->aframe->data, n);
        if (n < fs) memset(w->aframe->data[0] + n * sizeof(float), 0, (size_t)(fs - n) * sizeof(float));
        w->aframe->pts = w->next_apts;
        w->next_apts += fs;
        rc = encode_and_write(w, w->aenc, w->ast, w->aframe, err);
        if (rc) return rc;
    }
    return LS_OK;
}

int ls_video_writer_add_audio(ls_video_writer *w, const float *samples, size_t n, ls_error *err)
{
    if (!w->aenc) return ls_error_set(err, LS_ERR_STATE, "video writer opened without audio");
    arm(w);
    while (n > 0) {
        int take = n > 65536 ? 65536 : (int)n;
        void *planes[1] = {(void *)samples};
        if (av_audio_fifo_write(w->fifo, planes, take) < take)
            return ls_error_set(err, LS_ERR_NOMEM, "audio buffer");
        samples += take;
        n -= (size_t)take;
        w->audio_samples += take;
        int rc = drain_audio(w, 0, err);
        if (rc) return rc;
    }
    return LS_OK;
}

int ls_video_writer_close(ls_video_writer *w, ls_error *err)
{
    if (!w) return LS_OK;
    arm(w); /* one deadline for the flush, the trailer and the close */
    int rc = encode_and_write(w, w->venc, w->vst, NULL, err);
    if (!rc && w->has_held) {
        /* The last frame stays on screen until the audio ends, so the video
         * track lasts as long as the sound even when it has fewer frames. */
        int64_t end = w->aenc ? av_rescale_q(w->audio_samples, (AVRational){1, w->aenc->sample_rate},
                                             w->venc->time_base)
                              : 0;
        int64_t dur = end - w->held->pts;
        w->held->duration = dur > 1 ? dur : 1;
        rc = write_packet(w, w->held, w->vst, w->venc, err);
        w->has_held = 0;
    }
    if (!rc && w->aenc) rc = drain_audio(w, 1, err);
    if (!rc && w->aenc) rc = encode_and_write(w, w->aenc, w->ast, NULL, err);
    if (!rc) {
        int av = av_write_trailer(w->fmt);
        if (av < 0) rc = io_fail(w, err, av, "writing trailer");
    }
    if (rc) {
        ls_video_writer_abort(w);
        return rc;
    }
    writer_free(w);
    return LS_OK;
}

void ls_video_writer_abort(ls_video_writer *w)
{
    if (!w) return;
    /* A URL's close would say goodbye to the server (RTMP's unpublish):
     * interrupted at once, an abort never waits on a server that is gone. */
    w->timed_out = 1;
    char *path = w->path && w->is_file ? strdup(w->path) : NULL;
    writer_free(w);
    if (path) remove(path);
    free(path);
}
