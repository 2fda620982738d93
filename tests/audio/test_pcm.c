/* The streaming raw PCM decoder: every format and channel count, input cut
 * at every byte offset, gives the samples of one whole decode; bad samples
 * and bad specs are refused. */
#include "support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/decode.h"
#include "audio/pcm.h"

#define FRAMES 7

/* FRAMES frames of interleaved PCM with distinct, exact values. */
static size_t make_pcm(const ls_raw_spec *spec, uint8_t *out, float *mono)
{
    size_t at = 0;
    for (int i = 0; i < FRAMES; i++) {
        double acc = 0;
        float one = 0;
        for (int c = 0; c < spec->channels; c++) {
            int16_t q = (int16_t)((i * 977 + c * 131) % 65536 - 32768);
            float v = spec->format == LS_PCM_S16LE ? (float)q / 32768.0f
                                                   : (float)(q / 32768.0) * 1.5f + 0.001f * c;
            if (spec->format == LS_PCM_S16LE) {
                out[at++] = (uint8_t)((uint16_t)q & 0xff);
                out[at++] = (uint8_t)((uint16_t)q >> 8);
            } else {
                uint32_t u;
                memcpy(&u, &v, 4);
                for (int b = 0; b < 4; b++) out[at++] = (uint8_t)(u >> (8 * b));
            }
            one = v;
            acc += v;
        }
        mono[i] = spec->channels == 1 ? one : (float)(acc / spec->channels);
    }
    return at;
}

/* All formats, channel counts 1..64: a single cut at every offset, and
 * byte-by-byte; the samples never change and nothing is held at the end. */
static void test_split_anywhere(void **state)
{
    (void)state;
    static uint8_t bytes[FRAMES * 64 * 4];
    float want[FRAMES], got[FRAMES + 1];
    for (int f = 0; f < 2; f++) {
        for (int ch = 1; ch <= 64; ch++) {
            ls_raw_spec spec = {.format = f ? LS_PCM_F32LE : LS_PCM_S16LE, .rate = 16000,
                                .channels = ch};
            size_t len = make_pcm(&spec, bytes, want);
            assert_int_equal(len, FRAMES * ls_raw_frame_bytes(&spec));
            ls_pcm_decoder *d;
            ls_error err = {0};
            assert_int_equal(ls_pcm_decoder_create(&spec, &d, &err), LS_OK);
            for (size_t cut = 0; cut <= len; cut++) {
                size_t n1 = 0, n2 = 0;
                assert_true(ls_pcm_decoder_max_out(d, cut) <= FRAMES);
                assert_int_equal(ls_pcm_decoder_feed(d, bytes, cut, got, &n1, &err), LS_OK);
                assert_int_equal(ls_pcm_decoder_pending(d), cut % ls_raw_frame_bytes(&spec));
                assert_int_equal(ls_pcm_decoder_max_out(d, len - cut), FRAMES - n1);
                assert_int_equal(
                    ls_pcm_decoder_feed(d, bytes + cut, len - cut, got + n1, &n2, &err), LS_OK);
                assert_int_equal(n1 + n2, FRAMES);
                assert_int_equal(ls_pcm_decoder_pending(d), 0);
                assert_memory_equal(got, want, sizeof want);
            }
            size_t total = 0;
            for (size_t at = 0; at < len; at++) {
                size_t k = 0;
                assert_int_equal(ls_pcm_decoder_feed(d, bytes + at, 1, got + total, &k, &err),
                                 LS_OK);
                assert_true(k <= 1);
                total += k;
            }
            assert_int_equal(total, FRAMES);
            assert_memory_equal(got, want, sizeof want);
            ls_pcm_decoder_destroy(d);

            /* The whole-buffer decoder is the same decoder. */
            ls_audio a;
            assert_int_equal(ls_audio_decode_raw(bytes, len, &spec, NULL, &a, &err), LS_OK);
            assert_int_equal(a.n, FRAMES);
            assert_memory_equal(a.samples, want, sizeof want);
            ls_audio_free(&a);
        }
    }
}

static void test_bad_samples(void **state)
{
    (void)state;
    ls_raw_spec spec = {.format = LS_PCM_F32LE, .rate = 16000, .channels = 2};
    ls_pcm_decoder *d;
    ls_error err = {0};
    assert_int_equal(ls_pcm_decoder_create(&spec, &d, &err), LS_OK);
    float bad[] = {0.5f, NAN, 0.25f, INFINITY, 65.0f, -65.0f, 64.0f, -64.0f};
    float out[4];
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        /* a frame split 5 + 3 bytes whose second channel is NaN, inf or beyond the range */
        float frame[2] = {0.1f, bad[1 + 2 * k]};
        err = (ls_error){0};
        assert_int_equal(ls_pcm_decoder_feed(d, frame, 5, out, &n, &err), LS_OK);
        assert_int_equal(ls_pcm_decoder_feed(d, (uint8_t *)frame + 5, 3, out, &n, &err),
                         LS_ERR_FORMAT);
        assert_non_null(strstr(err.msg, "finite"));
        assert_int_equal(ls_pcm_decoder_pending(d), 0);
    }
    /* The end of a stream feeds nothing. */
    n = 7;
    assert_int_equal(ls_pcm_decoder_feed(d, NULL, 0, out, &n, &err), LS_OK);
    assert_int_equal(n, 0);
    float edge[2] = {64.0f, -64.0f}; /* the documented range's ends are valid */
    assert_int_equal(ls_pcm_decoder_feed(d, edge, sizeof edge, out, &n, &err), LS_OK);
    assert_int_equal(n, 1);
    assert_true(out[0] == 0.0f);
    ls_pcm_decoder_destroy(d);

    ls_raw_spec wide = {.format = LS_PCM_S16LE, .rate = 16000, .channels = 65};
    assert_int_equal(ls_pcm_decoder_create(&wide, &d, &err), LS_ERR_RANGE);
    assert_null(d);
    wide.channels = 0;
    assert_int_equal(ls_pcm_decoder_create(&wide, &d, &err), LS_ERR_RANGE);
    wide.channels = 1;
    wide.format = (ls_pcm_format)7;
    assert_int_equal(ls_pcm_decoder_create(&wide, &d, &err), LS_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_bad_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
