/* MP4 writer: read the file back with FFmpeg and check what is in it. */
#include "support/test_util.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"

#include "media/video_writer.h"

typedef struct probe {
    int video_frames, has_h264, has_aac, width, height, audio_rate, video_profile;
    double audio_seconds, video_seconds;
    /* From the packets (FLV keeps no stream durations): the end of the last,
     * pts + duration (a video packet without one: 1/25 s). */
    double audio_end, video_end;
    double audio_first, video_first; /* the first packet's pts */
    double mean_luma_first; /* decoded frame 0 mean Y, to check content */
} probe;

static void probe_file(const char *path, probe *p)
{
    memset(p, 0, sizeof *p);
    AVFormatContext *fmt = NULL;
    assert_int_equal(avformat_open_input(&fmt, path, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(fmt, NULL) >= 0);
    int vi = -1, ai = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVCodecParameters *par = fmt->streams[i]->codecpar;
        if (par->codec_id == AV_CODEC_ID_H264) {
            p->has_h264 = 1;
            vi = (int)i;
            p->width = par->width;
            p->height = par->height;
            p->video_profile = par->profile;
            p->video_seconds = fmt->streams[i]->duration * av_q2d(fmt->streams[i]->time_base);
        }
        if (par->codec_id == AV_CODEC_ID_AAC) {
            p->has_aac = 1;
            p->audio_rate = par->sample_rate;
            ai = (int)i;
            AVStream *st = fmt->streams[i];
            p->audio_seconds = st->duration * av_q2d(st->time_base);
        }
    }
    assert_true(vi >= 0);
    const AVCodec *dec = avcodec_find_decoder(AV_CODEC_ID_H264);
    AVCodecContext *ctx = avcodec_alloc_context3(dec);
    avcodec_parameters_to_context(ctx, fmt->streams[vi]->codecpar);
    assert_int_equal(avcodec_open2(ctx, dec, NULL), 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    int draining = 0, seen_v = 0, seen_a = 0;
    for (;;) {
        if (!draining) {
            if (av_read_frame(fmt, pkt) < 0) {
                draining = 1;
                avcodec_send_packet(ctx, NULL);
            } else {
                if (pkt->stream_index == vi || pkt->stream_index == ai) {
                    AVStream *st = fmt->streams[pkt->stream_index];
                    double end = (double)(pkt->pts + pkt->duration) * av_q2d(st->time_base);
                    if (pkt->stream_index == vi && !pkt->duration) end += 1.0 / 25;
                    double *e = pkt->stream_index == vi ? &p->video_end : &p->audio_end;
                    double *b = pkt->stream_index == vi ? &p->video_first : &p->audio_first;
                    int *seen = pkt->stream_index == vi ? &seen_v : &seen_a;
                    double pts = (double)pkt->pts * av_q2d(st->time_base);
                    if (!*seen || pts < *b) *b = pts;
                    *seen = 1;
                    if (end > *e) *e = end;
                }
                if (pkt->stream_index == vi) avcodec_send_packet(ctx, pkt);
                av_packet_unref(pkt);
            }
        }
        int rc;
        while ((rc = avcodec_receive_frame(ctx, fr)) == 0) {
            if (p->video_frames == 0) {
                double s = 0;
                for (int y = 0; y < fr->height; y++)
                    for (int x = 0; x < fr->width; x++) s += fr->data[0][y * fr->linesize[0] + x];
                p->mean_luma_first = s / (fr->width * fr->height);
            }
            p->video_frames++;
        }
        if (draining && rc == AVERROR_EOF) break;
    }
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    avformat_close_input(&fmt);
}

static void write_clip_with(const char *path, const ls_video_writer_options *opt, int frames,
                            double secs)
{
    ls_video_writer_options o = *opt;
    int w = o.width, h = o.height, audio_rate = o.audio_rate;
    ls_video_writer *vw;
    ls_error err;
    if (ls_video_writer_open(path, &o, &vw, &err)) fail_msg("open: %s", err.msg);
    uint8_t *bgr = malloc((size_t)w * h * 3);
    for (int f = 0; f < frames; f++) {
        /* Mid grey (BGR 128) with a moving bright square. */
        memset(bgr, 128, (size_t)w * h * 3);
        for (int y = 0; y < h / 4; y++)
            for (int x = 0; x < w / 4; x++) {
                int xx = (x + f) % w;
                memset(bgr + ((size_t)y * w + xx) * 3, 250, 3);
            }
        assert_int_equal(ls_video_writer_add_frame(vw, bgr, w * 3, &err), LS_OK);
    }
    free(bgr);
    if (audio_rate) {
        size_t n = (size_t)(secs * audio_rate);
        float *a = malloc(n * sizeof *a);
        for (size_t i = 0; i < n; i++) a[i] = (float)(0.3 * sin(2 * M_PI * 300.0 * (double)i / audio_rate));
        /* In uneven pieces, as a pipeline hands them over. */
        for (size_t off = 0; off < n; off += 777)
            assert_int_equal(ls_video_writer_add_audio(vw, a + off, n - off < 777 ? n - off : 777, &err), LS_OK);
        free(a);
    }
    if (ls_video_writer_close(vw, &err)) fail_msg("close: %s", err.msg);
}

static void write_clip(const char *path, int w, int h, int frames, int audio_rate, double secs)
{
    ls_video_writer_options o = {.width = w, .height = h, .audio_rate = audio_rate};
    write_clip_with(path, &o, frames, secs);
}

static void test_mp4_with_audio(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/clip.mp4", test_tmp_dir());
    write_clip(path, 96, 64, 30, 16000, 1.2);
    probe p;
    probe_file(path, &p);
    assert_true(p.has_h264);
    assert_true(p.has_aac);
    assert_int_equal(p.video_frames, 30);
    assert_int_equal(p.width, 96);
    assert_int_equal(p.height, 64);
    assert_int_equal(p.audio_rate, 16000);
    /* 30 frames at 25 fps = 1.2 s; AAC adds at most one 1024-sample frame. */
    assert_true(p.audio_seconds > 1.15 && p.audio_seconds < 1.3);
    assert_true(p.mean_luma_first > 110 && p.mean_luma_first < 160);
}

static void test_odd_size_without_audio(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/odd.mp4", test_tmp_dir());
    write_clip(path, 65, 49, 7, 0, 0);
    probe p;
    probe_file(path, &p);
    assert_true(p.has_h264);
    assert_false(p.has_aac);
    assert_int_equal(p.video_frames, 7);
    assert_int_equal(p.width, 66);
    assert_int_equal(p.height, 50);
}

/* Fewer frames than the audio covers: the last frame is held to the end. */
static void test_video_track_lasts_as_long_as_audio(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/short.mp4", test_tmp_dir());
    write_clip(path, 64, 64, 10, 16000, 1.0);
    probe p;
    probe_file(path, &p);
    assert_int_equal(p.video_frames, 10);
    print_message("10 frames + 1.0 s audio: video track %.3f s, audio %.3f s\n", p.video_seconds,
                  p.audio_seconds);
    assert_true(p.video_seconds > 0.99 && p.video_seconds < 1.01);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ls_video_writer *vw;
    ls_error err;
    ls_video_writer_options o = {.width = 64, .height = 64, .audio_rate = 16000};
    assert_int_equal(ls_video_writer_open("/nonexistent/dir/x.mp4", &o, &vw, &err), LS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.mp4"));
    o.width = 0;
    assert_int_equal(ls_video_writer_open("x.mp4", &o, &vw, &err), LS_ERR_RANGE);
    o.width = 64;
    o.audio_rate = 3;
    char path[512];
    snprintf(path, sizeof path, "%s/bad.mp4", test_tmp_dir());
    assert_int_equal(ls_video_writer_open(path, &o, &vw, &err), LS_ERR_RANGE);
    /* A writer opened without audio refuses audio; abort removes the file. */
    o.audio_rate = 0;
    assert_int_equal(ls_video_writer_open(path, &o, &vw, &err), LS_OK);
    float s[4] = {0};
    assert_int_equal(ls_video_writer_add_audio(vw, s, 4, &err), LS_ERR_STATE);
    ls_video_writer_abort(vw);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
}

/* The container an RTMP push sends, with the live settings, to a file:
 * FLV with H.264 (constrained baseline) and AAC, every frame there. */
static void test_flv_live(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/live.flv.part", test_tmp_dir()); /* no extension hint */
    ls_video_writer_options o = {.width = 96, .height = 64, .audio_rate = 16000,
                                 .container = "flv", .live = 1, .io_timeout_ms = 5000};
    write_clip_with(path, &o, 60, 2.4);
    AVFormatContext *fmt = NULL;
    assert_int_equal(avformat_open_input(&fmt, path, NULL, NULL), 0);
    assert_string_equal(fmt->iformat->name, "flv");
    avformat_close_input(&fmt);
    probe p;
    probe_file(path, &p);
    assert_true(p.has_h264);
    assert_true(p.has_aac);
    assert_int_equal(p.video_frames, 60);
    assert_int_equal(p.audio_rate, 16000);
    assert_int_equal(p.video_profile, FF_PROFILE_H264_CONSTRAINED_BASELINE);
    assert_true(p.mean_luma_first > 110 && p.mean_luma_first < 160);
    /* Both tracks 2.4 s within an AAC frame (64 ms at 16 kHz). */
    /* FLV has no edit list: the AAC encoder's priming (1024 samples) comes
     * first and the muxer shifts both tracks by it, so the first real audio
     * sample plays with the first frame; the audio ends within its last AAC
     * frame's padding after the video. */
    double priming = 1024.0 / 16000;
    print_message("flv: video %.3f..%.3f s, audio %.3f..%.3f s\n", p.video_first, p.video_end,
                  p.audio_first, p.audio_end);
    assert_true(fabs(p.video_end - p.video_first - 2.4) < 0.001);
    assert_true(fabs(p.video_first - p.audio_first - priming) < 0.002);
    assert_true(p.audio_end >= p.video_end - 0.001 && p.audio_end <= p.video_end + priming);

    o.container = "no-such-muxer";
    ls_video_writer *vw;
    ls_error err;
    assert_int_equal(ls_video_writer_open(path, &o, &vw, &err), LS_ERR_UNSUPPORTED);
}

/* A loopback port that accepts connections and never answers: the RTMP
 * handshake waits on it. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A push whose server is gone fails with LS_ERR_IO, and one whose server
 * never answers fails at io_timeout_ms instead of blocking. */
static void test_push_failures_are_bounded(void **state)
{
    (void)state;
    int port, fd = silent_server(&port);
    char url[128];
    snprintf(url, sizeof url, "rtmp://127.0.0.1:%d/live/test", port);
    ls_video_writer_options o = {.width = 64, .height = 64, .audio_rate = 16000,
                                 .container = "flv", .live = 1, .io_timeout_ms = 400};
    ls_video_writer *vw = NULL;
    ls_error err;
    double t0 = ls_now();
    assert_int_equal(ls_video_writer_open(url, &o, &vw, &err), LS_ERR_IO);
    double dt = ls_now() - t0;
    print_message("silent server: %.3f s: %s\n", dt, err.msg);
    assert_null(vw);
    assert_non_null(strstr(err.msg, "no progress within 400 ms"));
    assert_true(dt >= 0.35 && dt < 3.0);
    close(fd); /* nothing listens there now */
    t0 = ls_now();
    assert_int_equal(ls_video_writer_open(url, &o, &vw, &err), LS_ERR_IO);
    print_message("closed port: %.3f s: %s\n", ls_now() - t0, err.msg);
    assert_true(ls_now() - t0 < 3.0);
    assert_non_null(strstr(err.msg, url));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mp4_with_audio),
        cmocka_unit_test(test_odd_size_without_audio),
        cmocka_unit_test(test_video_track_lasts_as_long_as_audio),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_flv_live),
        cmocka_unit_test(test_push_failures_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
