/* pcm.c - see pcm.h. */
#include "audio/pcm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t ls_raw_frame_bytes(const ls_raw_spec *spec)
{
    return (size_t)spec->channels * (spec->format == LS_PCM_S16LE ? 2 : 4);
}

struct ls_pcm_decoder {
    ls_pcm_format format;
    int channels;
    size_t frame_bytes; /* bytes of one interleaved frame */
    size_t held;        /* bytes of an unfinished frame in `carry` */
    uint8_t carry[];    /* frame_bytes long */
};

int ls_pcm_decoder_create(const ls_raw_spec *spec, ls_pcm_decoder **out, ls_error *err)
{
    *out = NULL;
    if (!spec) return ls_error_set(err, LS_ERR_INVALID_ARG, "no raw spec");
    if (spec->format != LS_PCM_S16LE && spec->format != LS_PCM_F32LE)
        return ls_error_set(err, LS_ERR_UNSUPPORTED, "raw sample format %d", (int)spec->format);
    if (spec->channels < 1 || spec->channels > 64)
        return ls_error_set(err, LS_ERR_RANGE, "raw channel count %d outside 1..64",
                            spec->channels);
    size_t fb = ls_raw_frame_bytes(spec);
    ls_pcm_decoder *d = calloc(1, sizeof *d + fb);
    if (!d) return ls_error_set(err, LS_ERR_NOMEM, "out of memory");
    d->format = spec->format;
    d->channels = spec->channels;
    d->frame_bytes = fb;
    *out = d;
    return LS_OK;
}

void ls_pcm_decoder_destroy(ls_pcm_decoder *d)
{
    free(d);
}

size_t ls_pcm_decoder_max_out(const ls_pcm_decoder *d, size_t len)
{
    return (d->held + len) / d->frame_bytes;
}

size_t ls_pcm_decoder_pending(const ls_pcm_decoder *d)
{
    return d->held;
}

void ls_pcm_decoder_reset(ls_pcm_decoder *d)
{
    d->held = 0;
}

/* One frame's bytes to one mono sample; little-endian assembled byte by
 * byte, so the result does not depend on the host or on alignment. */
static int decode_frame(const ls_pcm_decoder *d, const uint8_t *p, float *out)
{
    double acc = 0;
    float one = 0;
    for (int c = 0; c < d->channels; c++) {
        float v;
        if (d->format == LS_PCM_S16LE) {
            int16_t x = (int16_t)((uint16_t)p[0] | (uint16_t)p[1] << 8);
            v = (float)x / 32768.0f;
            p += 2;
        } else {
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&v, &u, 4);
            if (!(fabsf(v) <= LS_PCM_MAX_ABS)) return -1; /* NaN fails too */
            p += 4;
        }
        one = v;
        acc += v;
    }
    *out = d->channels == 1 ? one : (float)(acc / d->channels);
    return 0;
}

int ls_pcm_decoder_feed(ls_pcm_decoder *d, const void *bytes, size_t len, float *out, size_t *n,
                        ls_error *err)
{
    const uint8_t *b = bytes;
    size_t fb = d->frame_bytes, done = 0;
    *n = 0;
    if (!len) return LS_OK;
    if (!b) return ls_error_set(err, LS_ERR_INVALID_ARG, "no bytes");
    /* Finish the held frame first. */
    if (d->held) {
        size_t take = fb - d->held < len ? fb - d->held : len;
        memcpy(d->carry + d->held, b, take);
        d->held += take;
        b += take;
        len -= take;
        if (d->held < fb) return LS_OK;
        d->held = 0;
        if (decode_frame(d, d->carry, &out[done])) goto bad;
        done++;
    }
    size_t whole = len / fb;
    for (size_t i = 0; i < whole; i++, done++)
        if (decode_frame(d, b + i * fb, &out[done])) goto bad;
    d->held = len - whole * fb;
    memcpy(d->carry, b + whole * fb, d->held);
    *n = done;
    return LS_OK;
bad:
    d->held = 0;
    return ls_error_set(err, LS_ERR_FORMAT,
                        "f32le sample %zu is not a finite number within +-%g: wrong format?", done,
                        (double)LS_PCM_MAX_ABS);
}
