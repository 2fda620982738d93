/* fuzz_pcm - raw PCM as a WebSocket stream sends it: the streaming decoder
 * (audio/pcm.h) with every format and channel count (valid or not), the
 * bytes cut into chunks anywhere. The first input bytes choose:
 *   [0] format (bit 0: s16le/f32le; bit 7: an invalid format value)
 *   [1] channels, 0..65 (0 and 65 are refused)
 *   [2..3] sample rate (for ls_audio_decode_raw; little-endian, times 16)
 *   [4] number of cuts (low 4 bits), then 2 bytes per cut: a chunk length
 * and the rest is the audio. Checks what pcm.h promises: the samples do not
 * depend on the cuts, they match ls_audio_decode_raw of the whole, and feed
 * never writes beyond ls_pcm_decoder_max_out. */
#include <math.h>

#include "audio/decode.h"
#include "audio/pcm.h"
#include "fuzz_util.h"

/* Feeds one chunk; the out buffer is exactly max_out long (ASan sees more). */
static int feed(ls_pcm_decoder *d, const uint8_t *p, size_t len, float **all, size_t *n_all)
{
    size_t cap = ls_pcm_decoder_max_out(d, len);
    float *out = malloc((cap ? cap : 1) * sizeof *out);
    FUZZ_CHECK(out);
    size_t n = 0;
    ls_error err = {0};
    int rc = ls_pcm_decoder_feed(d, len ? p : NULL, len, out, &n, &err);
    if (rc == LS_OK) {
        FUZZ_CHECK(n == cap);
        float *grown = realloc(*all, (*n_all + n + 1) * sizeof *grown);
        FUZZ_CHECK(grown);
        if (n) memcpy(grown + *n_all, out, n * sizeof *out);
        *all = grown;
        *n_all += n;
    } else {
        FUZZ_CHECK(rc == LS_ERR_FORMAT && err.msg[0]);
        FUZZ_CHECK(ls_pcm_decoder_pending(d) == 0); /* reset on a bad sample */
    }
    free(out);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT || size < 5) return 0;
    ls_raw_spec spec = {
        .format = (data[0] & 0x80) ? (ls_pcm_format)(2 + (data[0] & 0x7f))
                                   : (data[0] & 1) ? LS_PCM_F32LE : LS_PCM_S16LE,
        .channels = data[1] % 66,
        .rate = (int)((uint32_t)data[2] | (uint32_t)data[3] << 8) * 16,
    };
    size_t n_cuts = data[4] & 15, pos = 5;
    size_t cuts[16];
    for (size_t i = 0; i < n_cuts; i++, pos += 2)
        cuts[i] = pos + 1 < size ? ((size_t)data[pos] | (size_t)data[pos + 1] << 8) : 0;
    if (pos > size) pos = size;
    const uint8_t *audio = data + pos;
    size_t len = size - pos;

    ls_pcm_decoder *chunked = NULL, *whole = NULL;
    ls_error err = {0};
    int rc = ls_pcm_decoder_create(&spec, &chunked, &err);
    int valid = spec.format <= LS_PCM_F32LE && spec.channels >= 1 && spec.channels <= 64;
    FUZZ_CHECK((rc == LS_OK) == valid);
    if (rc != LS_OK) {
        FUZZ_CHECK(!chunked && err.msg[0]);
        return 0;
    }
    FUZZ_CHECK(ls_pcm_decoder_create(&spec, &whole, &err) == LS_OK);

    /* The chunks: the cuts' lengths in turn (0 is an empty feed), the rest last. */
    float *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, at = 0;
    int failed = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t take = i < n_cuts ? cuts[i] % (len - at + 1) : len - at;
        failed |= feed(chunked, audio + at, take, &a, &na) != LS_OK;
        at += take;
    }
    int whole_failed = feed(whole, audio, len, &b, &nb) != LS_OK;
    /* A bad f32 sample fails whichever chunk holds it, however cut. */
    FUZZ_CHECK(failed == whole_failed);
    if (!failed) {
        size_t fb = ls_raw_frame_bytes(&spec);
        FUZZ_CHECK(na == len / fb && nb == na);
        FUZZ_CHECK(ls_pcm_decoder_pending(chunked) == len % fb);
        FUZZ_CHECK(ls_pcm_decoder_pending(whole) == len % fb);
        FUZZ_CHECK(na == 0 || !memcmp(a, b, na * sizeof *a));
        for (size_t i = 0; i < na; i++) FUZZ_CHECK(isfinite(a[i]));
        ls_audio raw;
        int rrc = ls_audio_decode_raw(audio, len, &spec, NULL, &raw, &err);
        int raw_ok = len > 0 && len % fb == 0 && spec.rate >= LS_AUDIO_MIN_RATE &&
                     spec.rate <= LS_AUDIO_MAX_RATE;
        FUZZ_CHECK((rrc == LS_OK) == raw_ok);
        if (rrc == LS_OK) {
            FUZZ_CHECK(raw.n == na && !memcmp(raw.samples, a, na * sizeof *a));
            ls_audio_free(&raw);
        }
    }
    ls_pcm_decoder_reset(chunked);
    FUZZ_CHECK(ls_pcm_decoder_pending(chunked) == 0);
    free(a);
    free(b);
    ls_pcm_decoder_destroy(chunked);
    ls_pcm_decoder_destroy(whole);
    return 0;
}
