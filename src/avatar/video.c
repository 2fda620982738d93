#include "avatar/video.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

typedef struct video_state {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    ls_image bgr;
    int sws_w, sws_h, sws_fmt;
    ls_video_frame_fn fn;
    void *ctx;
    int n;
} video_state;

static int av_fail(ls_error *err, int code, const char *path, const char *what, int averr)
{
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(averr, buf, sizeof buf);
    return ls_error_set(err, code, "%s: %s: %s", path, what, buf);
}

/* Converts the decoded frame to BGR and hands it on. */
static int deliver(video_state *v, const char *path, ls_error *err)
{
    AVFrame *f = v->frame;
    if (f->width < 1 || f->height < 1 || f->width > LS_IMAGE_MAX_SIDE ||
        f->height > LS_IMAGE_MAX_SIDE)
        return ls_error_set(err, LS_ERR_FORMAT, "%s: frame %d has size %dx%d", path, v->n,
                            f->width, f->height);
    if (!v->sws || v->sws_w != f->width || v->sws_h != f->height || v->sws_fmt != f->format) {
        sws_freeContext(v->sws);
        ls_image_free(&v->bgr);
        v->sws = sws_getContext(f->width, f->height, f->format, f->width, f->height,
                                AV_PIX_FMT_BGR24, SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL,
                                NULL);
        if (!v->sws)
            return ls_error_set(err, LS_ERR_UNSUPPORTED, "%s: cannot convert pixel format %s",
                                path, av_get_pix_fmt_name(f->format));
        int rc = ls_image_alloc(&v->bgr, f->width, f->height, 3, err);
        if (rc != LS_OK) return rc;
        v->sws_w = f->width;
        v->sws_h = f->height;
        v->sws_fmt = f->format;
    }
    uint8_t *dst[4] = {v->bgr.data, NULL, NULL, NULL};
    int stride[4] = {(int)v->bgr.stride, 0, 0, 0};
    /* FFmpeg's own log is off by default (media/log.h): a failure must say so here. */
    int r = sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                      stride);
    if (r < 0) return av_fail(err, LS_ERR_FORMAT, path, "converting a frame to BGR", r);
    return v->fn(v->ctx, v->n++, &v->bgr, err);
}

/* Drains every frame the decoder has ready. */
static int receive_all(video_state *v, const char *path, ls_error *err)
{
    for (;;) {
        int r = avcodec_receive_frame(v->dec, v->frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return LS_OK;
        if (r < 0) return av_fail(err, LS_ERR_FORMAT, path, "decoding", r);
        int rc = deliver(v, path, err);
        av_frame_unref(v->frame);
        if (rc != LS_OK) return rc;
    }
}

static int run(video_state *v, const char *path, double *fps, ls_error *err)
{
    int r = avformat_open_input(&v->fmt, path, NULL, NULL);
    if (r < 0) return av_fail(err, LS_ERR_FORMAT, path, "cannot open", r);
    if ((r = avformat_find_stream_info(v->fmt, NULL)) < 0)
        return av_fail(err, LS_ERR_FORMAT, path, "no stream information", r);
    const AVCodec *codec = NULL;
    int si = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (si < 0 || !codec) return ls_error_set(err, LS_ERR_FORMAT, "%s: no video stream", path);
    AVStream *st = v->fmt->streams[si];
    AVRational rate = st->avg_frame_rate.num ? st->avg_frame_rate : st->r_frame_rate;
    *fps = rate.num && rate.den ? av_q2d(rate) : 0;
    v->dec = avcodec_alloc_context3(codec);
    v->frame = av_frame_alloc();
    v->pkt = av_packet_alloc();
    if (!v->dec || !v->frame || !v->pkt) return ls_error_set(err, LS_ERR_NOMEM, "video decoder");
    if ((r = avcodec_parameters_to_context(v->dec, st->codecpar)) < 0 ||
        (r = avcodec_open2(v->dec, codec, NULL)) < 0)
        return av_fail(err, LS_ERR_UNSUPPORTED, path, "cannot open the decoder", r);
    int rc = LS_OK;
    while (rc == LS_OK && (r = av_read_frame(v->fmt, v->pkt)) >= 0) {
        if (v->pkt->stream_index == si) {
            int s = avcodec_send_packet(v->dec, v->pkt);
            if (s < 0) rc = av_fail(err, LS_ERR_FORMAT, path, "decoding", s);
            else rc = receive_all(v, path, err);
        }
        av_packet_unref(v->pkt);
    }
    if (rc != LS_OK) return rc;
    if (r != AVERROR_EOF) return av_fail(err, LS_ERR_FORMAT, path, "reading", r);
    avcodec_send_packet(v->dec, NULL); /* flush delayed frames */
    return receive_all(v, path, err);
}

int ls_video_decode(const char *path, ls_video_frame_fn fn, void *ctx, double *fps,
                    int *n_frames, ls_error *err)
{
    video_state v = {0};
    v.fn = fn;
    v.ctx = ctx;
    *fps = 0;
    int rc = run(&v, path, fps, err);
    *n_frames = v.n;
    if (rc == LS_OK && v.n == 0) rc = ls_error_set(err, LS_ERR_FORMAT, "%s: no frames", path);
    sws_freeContext(v.sws);
    ls_image_free(&v.bgr);
    av_packet_free(&v.pkt);
    av_frame_free(&v.frame);
    avcodec_free_context(&v.dec);
    avformat_close_input(&v.fmt);
    return rc;
}
