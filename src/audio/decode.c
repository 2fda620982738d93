#include "audio/decode.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/pcm.h"
#include "audio/resample.h"
#include "core/npy.h"

void ls_audio_free(ls_audio *a)
{
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}

static int check_rate(double rate, ls_error *err)
{
    if (!(rate >= LS_AUDIO_MIN_RATE && rate <= LS_AUDIO_MAX_RATE))
        return ls_error_set(err, LS_ERR_RANGE, "sample rate %.0f Hz outside %d..%d", rate,
                            LS_AUDIO_MIN_RATE, LS_AUDIO_MAX_RATE);
    return LS_OK;
}

int ls_raw_spec_parse(const char *text, ls_raw_spec *spec, ls_error *err)
{
    char fmt[16];
    int rate, ch, used = 0;
    if (!text || sscanf(text, "%15[^:]:%d:%d%n", fmt, &rate, &ch, &used) != 3 ||
        text[used] != '\0')
        return ls_error_set(err, LS_ERR_INVALID_ARG,
                            "raw format '%s' is not FORMAT:RATE:CHANNELS (e.g. s16le:16000:1)",
                            text ? text : "");
    if (!strcmp(fmt, "s16le")) spec->format = LS_PCM_S16LE;
    else if (!strcmp(fmt, "f32le")) spec->format = LS_PCM_F32LE;
    else return ls_error_set(err, LS_ERR_UNSUPPORTED, "raw sample format '%s' (use s16le or f32le)", fmt);
    if (check_rate(rate, err)) return err ? err->code : LS_ERR_RANGE;
    if (ch < 1 || ch > 64)
        return ls_error_set(err, LS_ERR_RANGE, "raw channel count %d outside 1..64", ch);
    spec->rate = rate;
    spec->channels = ch;
    return LS_OK;
}

/* ------------------------------------------------------------------ sink
 *
 * Where decoded mono blocks go: appended as they are, or through a resampler
 * when the caller wants another rate, with the duration checked on the way so
 * that a decode stops at the limit instead of at the end of the file. */
typedef struct audio_sink {
    float *data;
    size_t n, cap;
    ls_resampler *rs; /* NULL: keep the input's rate */
    int in_rate, out_rate;
    size_t in_seen, in_max; /* input samples taken; the most allowed */
    double max_seconds;
} audio_sink;

static int sink_init(audio_sink *k, int in_rate, const ls_audio_limits *lim, ls_error *err)
{
    memset(k, 0, sizeof *k);
    k->in_rate = k->out_rate = in_rate;
    k->in_max = SIZE_MAX;
    if (lim && lim->max_seconds > 0) {
        k->max_seconds = lim->max_seconds;
        double m = lim->max_seconds * in_rate;
        if (m < (double)SIZE_MAX) k->in_max = (size_t)m;
    }
    if (lim && lim->out_rate && lim->out_rate != in_rate) {
        int rc = ls_resampler_create(in_rate, lim->out_rate, &k->rs, err);
        if (rc) return rc;
        k->out_rate = lim->out_rate;
    }
    return LS_OK;
}

static void sink_free(audio_sink *k)
{
    ls_resampler_destroy(k->rs);
    free(k->data);
    memset(k, 0, sizeof *k);
}

static int sink_reserve(audio_sink *k, size_t more, ls_error *err)
{
    if (k->cap - k->n >= more) return LS_OK;
    size_t ncap = k->cap * 2 + more;
    float *d = realloc(k->data, ncap * sizeof *d);
    if (!d) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %zu audio samples", ncap);
    k->data = d;
    k->cap = ncap;
    return LS_OK;
}

/* The caller says how many input samples it is about to push (a raw buffer's
 * whole length, a file's claimed frame count) so that an over-long input is
 * refused before any work; a claim under the limit only sizes the buffer. */
static int sink_expect(audio_sink *k, size_t n_in, ls_error *err)
{
    if (n_in > k->in_max)
        return ls_error_set(err, LS_ERR_TOO_LARGE, "%.1f s, over the limit of %g s",
                            (double)n_in / k->in_rate, k->max_seconds);
    /* A header may claim any count: reserve at most a minute's output. */
    size_t want = k->rs ? ls_resampler_max_out(k->rs, n_in) : n_in;
    size_t minute = (size_t)k->out_rate * 60;
    return sink_reserve(k, want < minute ? want : minute, err);
}

static int sink_push(audio_sink *k, const float *mono, size_t n, ls_error *err)
{
    k->in_seen += n;
    if (k->in_seen > k->in_max)
        return ls_error_set(err, LS_ERR_TOO_LARGE, "longer than the limit of %g s",
                            k->max_seconds);
    if (!k->rs) {
        int rc = sink_reserve(k, n, err);
        if (rc) return rc;
        memcpy(k->data + k->n, mono, n * sizeof *mono);
        k->n += n;
        return LS_OK;
    }
    size_t room = ls_resampler_max_out(k->rs, n), got = 0;
    int rc = sink_reserve(k, room, err);
    if (!rc) rc = ls_resampler_process(k->rs, mono, n, k->data + k->n, room, &got, err);
    k->n += got;
    return rc;
}

/* Flushes the resampler and hands the samples over. */
static int sink_finish(audio_sink *k, ls_audio *out, ls_error *err)
{
    if (k->rs) {
        size_t room = ls_resampler_max_out(k->rs, 0), got = 0;
        int rc = sink_reserve(k, room, err);
        if (!rc) rc = ls_resampler_process(k->rs, NULL, 0, k->data + k->n, room, &got, err);
        if (rc) return rc;
        k->n += got;
    }
    out->samples = k->data;
    out->n = k->n;
    out->rate = k->out_rate;
    k->data = NULL;
    sink_free(k);
    return LS_OK;
}

int ls_audio_decode_raw(const void *bytes, size_t len, const ls_raw_spec *spec,
                        const ls_audio_limits *lim, ls_audio *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    if (!spec || spec->channels < 1) return ls_error_set(err, LS_ERR_INVALID_ARG, "no raw spec");
    if (check_rate(spec->rate, err)) return err ? err->code : LS_ERR_RANGE;
    size_t fb = ls_raw_frame_bytes(spec);
    if (len == 0) return ls_error_set(err, LS_ERR_FORMAT, "raw audio is empty");
    if (len % fb)
        return ls_error_set(err, LS_ERR_FORMAT,
                            "raw audio of %zu bytes is not a whole number of %zu-byte frames", len,
                            fb);
    audio_sink k;
    int rc = sink_init(&k, spec->rate, lim, err);
    if (!rc) rc = sink_expect(&k, len / fb, err);
    ls_pcm_decoder *dec = NULL;
    if (!rc) rc = ls_pcm_decoder_create(spec, &dec, err);
    /* Block by block, so that a resampled decode never holds the input's
     * rate whole. */
    enum { BLOCK = 4096 };
    float mono[BLOCK];
    const uint8_t *p = bytes;
    for (size_t off = 0; !rc && off < len;) {
        size_t take = len - off < BLOCK * fb ? len - off : BLOCK * fb, got = 0;
        rc = ls_pcm_decoder_feed(dec, p + off, take, mono, &got, err);
        if (!rc) rc = sink_push(&k, mono, got, err);
        off += take;
    }
    ls_pcm_decoder_destroy(dec);
    if (!rc) rc = sink_finish(&k, out, err);
    if (rc) sink_free(&k);
    return rc;
}

/* libsndfile clamps a data chunk that overstates its size and only notes it
 * in its log ("data : 32000 (should be 19956)"); we refuse such files so that
 * a cut-off upload is reported rather than silently shortened. */
static int check_truncation(SNDFILE *f, ls_error *err)
{
    char log[4096];
    sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
    for (const char *line = log; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *sb = strstr(line, "(should be");
        if (sb && (size_t)(sb - line) < len && !strncmp(line, "data", 4)) {
            long claimed = 0, actual = 0;
            sscanf(line, "data : %ld (should be %ld)", &claimed, &actual);
            return ls_error_set(err, LS_ERR_FORMAT,
                                "truncated file: header declares %ld bytes of audio, file holds %ld",
                                claimed, actual);
        }
        line = eol ? eol + 1 : NULL;
    }
    return LS_OK;
}

static int decode_sndfile(SNDFILE *f, const SF_INFO *info, const ls_audio_limits *lim,
                          ls_audio *out, ls_error *err)
{
    if (info->channels < 1)
        return ls_error_set(err, LS_ERR_FORMAT, "file declares %d channels", info->channels);
    if (check_rate(info->samplerate, err)) return err ? err->code : LS_ERR_RANGE;
    int rc = check_truncation(f, err);
    if (rc) return rc;
    if (info->frames <= 0) return ls_error_set(err, LS_ERR_FORMAT, "file holds no audio frames");
    int ch = info->channels;
    audio_sink k;
    rc = sink_init(&k, info->samplerate, lim, err);
    /* Some formats (MP3, Ogg) only estimate the frame count, and a header may
     * declare any count (a 147-byte FLAC claimed 1.4e9 frames): a claim over
     * the limit is refused at once (what a header claims it must hold), one
     * under it only sizes the first buffer, and the samples are read in
     * blocks. */
    if (!rc) rc = sink_expect(&k, (size_t)info->frames, err);
    enum { BLOCK = 4096 };
    float *buf = rc ? NULL : malloc((size_t)BLOCK * (size_t)ch * sizeof *buf);
    float mono[BLOCK];
    if (!rc && !buf) rc = ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a decode block");
    while (!rc) {
        sf_count_t got = sf_readf_float(f, buf, BLOCK);
        if (got <= 0) break;
        for (sf_count_t i = 0; i < got; i++) {
            if (ch == 1) {
                mono[i] = buf[i];
            } else {
                double acc = 0;
                for (int c = 0; c < ch; c++) acc += buf[(size_t)i * (size_t)ch + (size_t)c];
                mono[i] = (float)(acc / ch);
            }
        }
        rc = sink_push(&k, mono, (size_t)got, err);
    }
    free(buf);
    int sferr = sf_error(f);
    if (!rc && sferr != SF_ERR_NO_ERROR)
        rc = ls_error_set(err, LS_ERR_FORMAT, "decode error: %s", sf_error_number(sferr));
    if (!rc && k.in_seen == 0) rc = ls_error_set(err, LS_ERR_FORMAT, "file holds no audio frames");
    if (!rc) rc = sink_finish(&k, out, err);
    if (rc) sink_free(&k);
    return rc;
}

/* ------------------------------------------------------------------ Ogg
 *
 * Ogg goes through FFmpeg's demuxer and its own Vorbis, Opus and FLAC
 * decoders, not through libsndfile: libsndfile hands Ogg/Vorbis to libvorbis,
 * which leaks the codec setup of a crafted header when the open fails (5.7 KB
 * per rejected upload, xiph/vorbis#125; tests/fuzz/regress has one). */

static int is_ogg(const void *bytes, size_t len)
{
    return len >= 4 && !memcmp(bytes, "OggS", 4);
}

/* A read cursor over a caller's buffer (server uploads): both libraries'
 * virtual I/O, libsndfile's below and FFmpeg's here, are thin adapters. */
typedef struct mem_cursor {
    const uint8_t *bytes;
    int64_t len, pos;
} mem_cursor;

static int64_t cursor_read(mem_cursor *m, void *dst, int64_t count)
{
    int64_t left = m->len - m->pos;
    if (count > left) count = left;
    if (count <= 0) return 0;
    memcpy(dst, m->bytes + m->pos, (size_t)count);
    m->pos += count;
    return count;
}

static int64_t cursor_seek(mem_cursor *m, int64_t off, int whence)
{
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos
                 : whence == SEEK_END ? m->len : -1;
    if (base < 0) return -1;
    int64_t p = base + off;
    if (p < 0 || p > m->len) return -1;
    m->pos = p;
    return p;
}

static int av_read(void *u, uint8_t *dst, int cap)
{
    int64_t n = cursor_read(u, dst, cap);
    return n > 0 ? (int)n : AVERROR_EOF;
}

static int64_t av_seek(void *u, int64_t off, int whence)
{
    if (whence & AVSEEK_SIZE) return ((mem_cursor *)u)->len;
    return cursor_seek(u, off, whence & ~AVSEEK_FORCE);
}

static int av_fail(ls_error *err, const char *what, int averr)
{
    char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(averr, msg, sizeof msg);
    return ls_error_set(err, LS_ERR_FORMAT, "Ogg: %s: %s", what, msg);
}

/* One decoded frame, any sample format FFmpeg's audio decoders give, to mono. */
static int push_av_frame(audio_sink *k, const AVFrame *fr, ls_error *err)
{
    int ch = fr->ch_layout.nb_channels;
    enum AVSampleFormat fmt = fr->format;
    int planar = av_sample_fmt_is_planar(fmt);
    enum { BLOCK = 4096 };
    float mono[BLOCK];
    for (int at = 0; at < fr->nb_samples; at += BLOCK) {
        int n = fr->nb_samples - at < BLOCK ? fr->nb_samples - at : BLOCK;
        for (int i = 0; i < n; i++) {
            double acc = 0;
            for (int c = 0; c < ch; c++) {
                const uint8_t *base = planar ? fr->extended_data[c] : fr->extended_data[0];
                size_t idx = planar ? (size_t)(at + i) : (size_t)(at + i) * (size_t)ch + (size_t)c;
                switch (av_get_packed_sample_fmt(fmt)) {
                case AV_SAMPLE_FMT_FLT: acc += ((const float *)base)[idx]; break;
                case AV_SAMPLE_FMT_DBL: acc += ((const double *)base)[idx]; break;
                case AV_SAMPLE_FMT_S16: acc += ((const int16_t *)base)[idx] / 32768.0; break;
                case AV_SAMPLE_FMT_S32: acc += ((const int32_t *)base)[idx] / 2147483648.0; break;
                case AV_SAMPLE_FMT_U8: acc += (((const uint8_t *)base)[idx] - 128) / 128.0; break;
                default:
                    return ls_error_set(err, LS_ERR_UNSUPPORTED, "Ogg: sample format %s",
                                        av_get_sample_fmt_name(fmt));
                }
            }
            mono[i] = (float)(acc / ch);
        }
        int rc = sink_push(k, mono, (size_t)n, err);
        if (rc) return rc;
    }
    return LS_OK;
}

static int drain_decoder(AVCodecContext *cc, AVFrame *fr, audio_sink *k, ls_error *err)
{
    for (;;) {
        int r = avcodec_receive_frame(cc, fr);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return LS_OK;
        if (r < 0) return av_fail(err, "decode", r);
        if (fr->sample_rate != cc->sample_rate || fr->ch_layout.nb_channels < 1) {
            av_frame_unref(fr);
            return ls_error_set(err, LS_ERR_FORMAT, "Ogg: the stream changes rate or channels");
        }
        int rc = push_av_frame(k, fr, err);
        av_frame_unref(fr);
        if (rc) return rc;
    }
}

static int decode_ogg(const void *bytes, size_t len, const ls_audio_limits *lim, ls_audio *out,
                      ls_error *err)
{
    mem_cursor m = {bytes, (int64_t)len, 0};
    enum { IO_BLOCK = 4096 };
    AVFormatContext *fmt = NULL;
    AVCodecContext *cc = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    audio_sink k = {0};
    int rc = LS_OK, r;
    uint8_t *io_buf = av_malloc(IO_BLOCK);
    AVIOContext *io = io_buf ? avio_alloc_context(io_buf, IO_BLOCK, 0, &m, av_read, NULL, av_seek)
                             : NULL;
    if (!io) {
        av_free(io_buf);
        return ls_error_set(err, LS_ERR_NOMEM, "Ogg: cannot allocate the reader");
    }
    if (!(fmt = avformat_alloc_context())) {
        rc = ls_error_set(err, LS_ERR_NOMEM, "Ogg: cannot allocate the demuxer");
        goto done;
    }
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    if ((r = avformat_open_input(&fmt, NULL, av_find_input_format("ogg"), NULL)) < 0) {
        rc = av_fail(err, "not readable", r); /* fmt is freed on failure */
        goto done;
    }
    if ((r = avformat_find_stream_info(fmt, NULL)) < 0) {
        rc = av_fail(err, "no stream information", r);
        goto done;
    }
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (si < 0) {
        rc = ls_error_set(err, LS_ERR_FORMAT, "Ogg: no audio stream");
        goto done;
    }
    const AVCodecParameters *par = fmt->streams[si]->codecpar;
    /* FFmpeg's own decoders by name: never the libvorbis wrapper. */
    const char *name = par->codec_id == AV_CODEC_ID_VORBIS ? "vorbis"
                       : par->codec_id == AV_CODEC_ID_OPUS ? "opus"
                       : par->codec_id == AV_CODEC_ID_FLAC ? "flac"
                                                           : NULL;
    const AVCodec *codec = name ? avcodec_find_decoder_by_name(name) : NULL;
    if (!codec) {
        rc = ls_error_set(err, LS_ERR_UNSUPPORTED, "Ogg: codec %s (use Vorbis, Opus or FLAC)",
                          avcodec_get_name(par->codec_id));
        goto done;
    }
    if (!(cc = avcodec_alloc_context3(codec)) || !(pkt = av_packet_alloc()) ||
        !(fr = av_frame_alloc())) {
        rc = ls_error_set(err, LS_ERR_NOMEM, "Ogg: cannot allocate the decoder");
        goto done;
    }
    if ((r = avcodec_parameters_to_context(cc, par)) < 0 || (r = avcodec_open2(cc, codec, NULL)) < 0) {
        rc = av_fail(err, "cannot open the decoder", r);
        goto done;
    }
    if (cc->ch_layout.nb_channels < 1) {
        rc = ls_error_set(err, LS_ERR_FORMAT, "Ogg: stream declares %d channels",
                          cc->ch_layout.nb_channels);
        goto done;
    }
    if ((rc = check_rate(cc->sample_rate, err)) || (rc = sink_init(&k, cc->sample_rate, lim, err)))
        goto done;
    while (!rc && (r = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == si) {
            if ((r = avcodec_send_packet(cc, pkt)) < 0) rc = av_fail(err, "decode", r);
            if (!rc) rc = drain_decoder(cc, fr, &k, err);
        }
        av_packet_unref(pkt);
    }
    if (!rc && r != AVERROR_EOF) rc = av_fail(err, "read", r);
    if (!rc && (r = avcodec_send_packet(cc, NULL)) < 0) rc = av_fail(err, "flush", r);
    if (!rc) rc = drain_decoder(cc, fr, &k, err);
    if (!rc && k.in_seen == 0) rc = ls_error_set(err, LS_ERR_FORMAT, "file holds no audio frames");
    if (!rc) rc = sink_finish(&k, out, err);
done:
    sink_free(&k);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&cc);
    avformat_close_input(&fmt);
    if (io) av_free(io->buffer);
    avio_context_free(&io);
    return rc;
}

int ls_audio_decode_file(const char *path, const ls_audio_limits *lim, ls_audio *out,
                         ls_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t magic[4] = {0};
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(magic, 1, sizeof magic, fp) : 0;
    if (fp) fclose(fp);
    if (is_ogg(magic, got)) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        int rc = ls_read_file(path, &bytes, &len, err);
        if (!rc) rc = decode_ogg(bytes, len, lim, out, err);
        free(bytes);
        if (rc) ls_error_prefix(err, "%s", path);
        return rc;
    }
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) return ls_error_set(err, LS_ERR_FORMAT, "%s: not readable audio (%s)", path, sf_strerror(NULL));
    int rc = decode_sndfile(f, &info, lim, out, err);
    sf_close(f);
    if (rc) ls_error_prefix(err, "%s", path);
    return rc;
}

/* libsndfile's virtual I/O over the cursor. */
static sf_count_t mem_len(void *u) { return ((mem_cursor *)u)->len; }
static sf_count_t mem_tell(void *u) { return ((mem_cursor *)u)->pos; }
static sf_count_t mem_seek(sf_count_t off, int whence, void *u)
{
    return cursor_seek(u, off, whence);
}
static sf_count_t mem_read(void *dst, sf_count_t count, void *u)
{
    return cursor_read(u, dst, count);
}
static sf_count_t mem_write(const void *src, sf_count_t count, void *u)
{
    (void)src;
    (void)count;
    (void)u;
    return 0;
}

int ls_audio_decode_memory(const void *bytes, size_t len, const ls_audio_limits *lim,
                           ls_audio *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    if (!bytes || len == 0) return ls_error_set(err, LS_ERR_FORMAT, "audio is empty");
    if (is_ogg(bytes, len)) return decode_ogg(bytes, len, lim, out, err);
    mem_cursor m = {bytes, (int64_t)len, 0};
    SF_VIRTUAL_IO vio = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open_virtual(&vio, SFM_READ, &info, &m);
    if (!f) return ls_error_set(err, LS_ERR_FORMAT, "not readable audio (%s)", sf_strerror(NULL));
    int rc = decode_sndfile(f, &info, lim, out, err);
    sf_close(f);
    return rc;
}

int ls_audio_load_16k(const char *path, const ls_raw_spec *raw, double max_seconds,
                      ls_audio *out, ls_error *err)
{
    ls_audio_limits lim = {max_seconds, LS_AUDIO_MODEL_RATE};
    if (!raw) return ls_audio_decode_file(path, &lim, out, err);
    uint8_t *bytes;
    size_t len;
    int rc = ls_read_file(path, &bytes, &len, err);
    if (rc) return rc;
    rc = ls_audio_decode_raw(bytes, len, raw, &lim, out, err);
    free(bytes);
    if (rc) ls_error_prefix(err, "%s", path);
    return rc;
}
