#include "audio/decode.h"

#include <sndfile.h>
#include <stdint.h>
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

size_t ls_raw_frame_bytes(const ls_raw_spec *spec)
{
    return (size_t)spec->channels * (spec->format == LS_PCM_S16LE ? 2 : 4);
}

int ls_audio_decode_raw(const void *bytes, size_t len, const ls_raw_spec *spec, ls_audio *out,
                        ls_error *err)
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
    ls_pcm_decoder *dec;
    if (ls_pcm_decoder_create(spec, &dec, err)) return err ? err->code : LS_ERR_INVALID_ARG;
    size_t n = len / fb;
    float *s = malloc(n * sizeof *s);
    if (!s) {
        ls_pcm_decoder_destroy(dec);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %zu samples", n);
    }
    size_t got = 0;
    int rc = ls_pcm_decoder_feed(dec, bytes, len, s, &got, err);
    ls_pcm_decoder_destroy(dec);
    if (rc) {
        free(s);
        return rc;
    }
    out->samples = s;
    out->n = n;
    out->rate = spec->rate;
    return LS_OK;
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

static int decode_sndfile(SNDFILE *f, const SF_INFO *info, ls_audio *out, ls_error *err)
{
    if (info->channels < 1)
        return ls_error_set(err, LS_ERR_FORMAT, "file declares %d channels", info->channels);
    if (check_rate(info->samplerate, err)) return err ? err->code : LS_ERR_RANGE;
    int rc = check_truncation(f, err);
    if (rc) return rc;
    if (info->frames <= 0) return ls_error_set(err, LS_ERR_FORMAT, "file holds no audio frames");
    int ch = info->channels;
    /* Some formats (MP3, Ogg) only estimate the frame count, and a header may
     * declare any count (a 147-byte FLAC claimed 1.4e9 frames): read in blocks,
     * reserving at most a minute at 48 kHz before the samples are there. */
    const size_t reserve_max = (size_t)48000 * 60;
    size_t cap = ((size_t)info->frames < reserve_max ? (size_t)info->frames : reserve_max) + 1024,
           n = 0;
    const size_t block = 4096;
    float *mono = malloc(cap * sizeof *mono);
    float *buf = malloc(block * (size_t)ch * sizeof *buf);
    if (!mono || !buf) {
        free(mono);
        free(buf);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %zu frames", cap);
    }
    for (;;) {
        sf_count_t got = sf_readf_float(f, buf, (sf_count_t)block);
        if (got <= 0) break;
        if (n + (size_t)got > cap) {
            size_t ncap = cap * 2 + (size_t)got;
            float *m = realloc(mono, ncap * sizeof *m);
            if (!m) {
                free(mono);
                free(buf);
                return ls_error_set(err, LS_ERR_NOMEM, "cannot grow audio buffer");
            }
            mono = m;
            cap = ncap;
        }
        for (sf_count_t i = 0; i < got; i++) {
            if (ch == 1) {
                mono[n + (size_t)i] = buf[i];
            } else {
                double acc = 0;
                for (int c = 0; c < ch; c++) acc += buf[(size_t)i * (size_t)ch + (size_t)c];
                mono[n + (size_t)i] = (float)(acc / ch);
            }
        }
        n += (size_t)got;
    }
    free(buf);
    int sferr = sf_error(f);
    if (sferr != SF_ERR_NO_ERROR) {
        free(mono);
        return ls_error_set(err, LS_ERR_FORMAT, "decode error: %s", sf_error_number(sferr));
    }
    if (n == 0) {
        free(mono);
        return ls_error_set(err, LS_ERR_FORMAT, "file holds no audio frames");
    }
    out->samples = mono;
    out->n = n;
    out->rate = info->samplerate;
    return LS_OK;
}

int ls_audio_decode_file(const char *path, ls_audio *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) return ls_error_set(err, LS_ERR_FORMAT, "%s: not readable audio (%s)", path, sf_strerror(NULL));
    int rc = decode_sndfile(f, &info, out, err);
    sf_close(f);
    if (rc) ls_error_prefix(err, "%s", path);
    return rc;
}

/* libsndfile virtual I/O over a caller's buffer (server uploads). */
typedef struct mem_reader {
    const uint8_t *bytes;
    sf_count_t len, pos;
} mem_reader;

static sf_count_t mem_len(void *u) { return ((mem_reader *)u)->len; }
static sf_count_t mem_tell(void *u) { return ((mem_reader *)u)->pos; }
static sf_count_t mem_seek(sf_count_t off, int whence, void *u)
{
    mem_reader *m = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    sf_count_t p = base + off;
    if (p < 0 || p > m->len) return -1;
    m->pos = p;
    return p;
}
static sf_count_t mem_read(void *dst, sf_count_t count, void *u)
{
    mem_reader *m = u;
    sf_count_t left = m->len - m->pos;
    if (count > left) count = left;
    if (count > 0) memcpy(dst, m->bytes + m->pos, (size_t)count);
    m->pos += count;
    return count;
}
static sf_count_t mem_write(const void *src, sf_count_t count, void *u)
{
    (void)src;
    (void)count;
    (void)u;
    return 0;
}

int ls_audio_decode_memory(const void *bytes, size_t len, ls_audio *out, ls_error *err)
{
    memset(out, 0, sizeof *out);
    if (!bytes || len == 0) return ls_error_set(err, LS_ERR_FORMAT, "audio is empty");
    mem_reader m = {bytes, (sf_count_t)len, 0};
    SF_VIRTUAL_IO vio = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open_virtual(&vio, SFM_READ, &info, &m);
    if (!f) return ls_error_set(err, LS_ERR_FORMAT, "not readable audio (%s)", sf_strerror(NULL));
    int rc = decode_sndfile(f, &info, out, err);
    sf_close(f);
    return rc;
}

int ls_audio_load_16k(const char *path, const ls_raw_spec *raw, ls_audio *out, ls_error *err)
{
    ls_audio native;
    int rc;
    if (raw) {
        uint8_t *bytes;
        size_t len;
        rc = ls_read_file(path, &bytes, &len, err);
        if (rc) return rc;
        rc = ls_audio_decode_raw(bytes, len, raw, &native, err);
        free(bytes);
        if (rc) ls_error_prefix(err, "%s", path);
    } else {
        rc = ls_audio_decode_file(path, &native, err);
    }
    if (rc) return rc;
    if (native.rate == LS_AUDIO_MODEL_RATE) {
        *out = native;
        return LS_OK;
    }
    rc = ls_resample(native.samples, native.n, native.rate, LS_AUDIO_MODEL_RATE, out, err);
    ls_audio_free(&native);
    return rc;
}
