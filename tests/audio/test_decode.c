/* Audio decode, downmix, resample and raw PCM; every kind of bad input. */
#include "support/test_util.h"

#include <malloc.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/decode.h"
#include "audio/resample.h"

/* Writes a stereo (or mono) sine file with libsndfile; returns its path. */
static const char *write_sound(const char *name, int format, int rate, int channels, size_t n,
                               float *left_out)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), name);
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) fail_msg("cannot write %s: %s", path, sf_strerror(NULL));
    float *buf = malloc(n * (size_t)channels * sizeof *buf);
    for (size_t i = 0; i < n; i++) {
        float l = (float)(0.5 * sin(2 * M_PI * 440.0 * (double)i / rate));
        for (int c = 0; c < channels; c++) buf[i * (size_t)channels + (size_t)c] = c == 0 ? l : 0.25f;
        if (left_out) left_out[i] = l;
    }
    sf_writef_float(f, buf, (sf_count_t)n);
    sf_close(f);
    free(buf);
    return path;
}

/* Lossless formats come back within their quantisation step, averaged to mono. */
static void test_lossless_formats(void **state)
{
    (void)state;
    struct { const char *name; int format; double tol; } cases[] = {
        {"u8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1.0 / 64},
        {"s16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1.0 / 16384},
        {"s24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1e-6},
        {"s32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1e-7},
        {"f32.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1e-7},
        {"s16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 16384},
    };
    enum { N = 4000 };
    static float left[N];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *path = write_sound(cases[c].name, cases[c].format, 22050, 2, N, left);
        ls_audio a;
        ls_error err;
        if (ls_audio_decode_file(path, NULL, &a, &err) != LS_OK) fail_msg("%s: %s", cases[c].name, err.msg);
        assert_int_equal(a.rate, 22050);
        assert_int_equal(a.n, N);
        for (size_t i = 0; i < N; i++) {
            double expect = (left[i] + 0.25) / 2;
            if (fabs(a.samples[i] - expect) > cases[c].tol)
                fail_msg("%s sample %zu: %f vs %f", cases[c].name, i, a.samples[i], expect);
        }
        ls_audio_free(&a);
    }
}

/* Lossy formats: right length (within codec padding) and the sine survives. */
static void test_lossy_formats(void **state)
{
    (void)state;
    struct { const char *name; int format; } cases[] = {
        {"v.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
        {"m.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III},
    };
    enum { N = 44100 };
    static float left[N];
    for (size_t c = 0; c < 2; c++) {
        const char *path = write_sound(cases[c].name, cases[c].format, 44100, 1, N, left);
        ls_audio a;
        ls_error err;
        if (ls_audio_decode_file(path, NULL, &a, &err) != LS_OK) fail_msg("%s: %s", cases[c].name, err.msg);
        assert_int_equal(a.rate, 44100);
        assert_true(a.n >= N - 2048 && a.n <= N + 4096);
        double energy = 0;
        for (size_t i = 0; i < a.n; i++) energy += (double)a.samples[i] * a.samples[i];
        double rms = sqrt(energy / (double)a.n);
        assert_true(rms > 0.3 && rms < 0.4); /* 0.5/sqrt(2) = 0.354 */
        ls_audio_free(&a);
    }
}

static void test_16k_mono_float_passthrough(void **state)
{
    (void)state;
    enum { N = 5000 };
    static float ref[N];
    const char *path = write_sound("pass.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, N, ref);
    ls_audio a;
    ls_error err;
    assert_int_equal(ls_audio_load_16k(path, NULL, 0, &a, &err), LS_OK);
    assert_int_equal(a.rate, 16000);
    assert_int_equal(a.n, N);
    assert_memory_equal(a.samples, ref, sizeof ref);
    ls_audio_free(&a);
    /* Raw f32le mono at 16 kHz too. */
    ls_raw_spec spec;
    assert_int_equal(ls_raw_spec_parse("f32le:16000:1", &spec, &err), LS_OK);
    const char *raw = test_write_tmp("pass.f32", ref, sizeof ref);
    assert_int_equal(ls_audio_load_16k(raw, &spec, 0, &a, &err), LS_OK);
    assert_memory_equal(a.samples, ref, sizeof ref);
    ls_audio_free(&a);
}

/* 48 kHz -> 16 kHz keeps a 1 kHz tone and the duration; chunking is invisible. */
static void test_resample(void **state)
{
    (void)state;
    enum { N = 48000 };
    static float x[N];
    for (int i = 0; i < N; i++) x[i] = (float)(0.5 * sin(2 * M_PI * 1000.0 * i / 48000.0));
    ls_audio out;
    ls_error err;
    assert_int_equal(ls_resample(x, N, 48000, 16000, &out, &err), LS_OK);
    assert_int_equal(out.rate, 16000);
    assert_true(out.n >= 15990 && out.n <= 16010);
    /* Away from the edges the tone matches sin(2 pi 1000 t) after the filter delay. */
    double best = 0;
    for (int lag = -40; lag <= 40; lag++) {
        double dot = 0, nx = 0, ny = 0;
        for (int i = 1000; i < 15000; i++) {
            double r = 0.5 * sin(2 * M_PI * 1000.0 * (i + lag) / 16000.0);
            dot += r * out.samples[i];
            nx += r * r;
            ny += (double)out.samples[i] * out.samples[i];
        }
        double c = dot / sqrt(nx * ny);
        best = c > best ? c : best;
    }
    assert_true(best > 0.999);

    ls_resampler *r;
    assert_int_equal(ls_resampler_create(48000, 16000, &r, &err), LS_OK);
    assert_non_null(r);
    float *chunked = malloc(ls_resampler_max_out(r, N) * sizeof *chunked);
    size_t at = 0, got;
    uint64_t rng = 7;
    for (size_t off = 0; off < N;) {
        size_t len = 1 + test_rand(&rng) % 3000;
        if (len > N - off) len = N - off;
        assert_int_equal(ls_resampler_process(r, x + off, len, chunked + at, ls_resampler_max_out(r, N) - at, &got, &err), LS_OK);
        at += got;
        off += len;
    }
    assert_int_equal(ls_resampler_process(r, NULL, 0, chunked + at, ls_resampler_max_out(r, N) - at, &got, &err), LS_OK);
    at += got;
    assert_int_equal(at, out.n);
    assert_memory_equal(chunked, out.samples, at * sizeof(float));
    /* After a reset (a stream's interrupt), half a stream held in the filter
     * is gone: the next stream comes out as from a new resampler. (The first
     * reset reopens the stream flushed above.) */
    assert_int_equal(ls_resampler_reset(r, &err), LS_OK);
    assert_int_equal(ls_resampler_process(r, x, N / 2, chunked, ls_resampler_max_out(r, N), &got, &err), LS_OK);
    assert_true(got > 0);
    assert_int_equal(ls_resampler_reset(r, &err), LS_OK);
    at = 0;
    assert_int_equal(ls_resampler_process(r, x, N, chunked, ls_resampler_max_out(r, N), &got, &err), LS_OK);
    at += got;
    assert_int_equal(ls_resampler_process(r, NULL, 0, chunked + at, ls_resampler_max_out(r, N) - at, &got, &err), LS_OK);
    at += got;
    assert_int_equal(at, out.n);
    assert_memory_equal(chunked, out.samples, at * sizeof(float));
    free(chunked);
    ls_resampler_destroy(r);
    ls_audio_free(&out);
    ls_resampler *bad = (ls_resampler *)&err; /* create must overwrite it */
    assert_int_equal(ls_resampler_create(0, 16000, &bad, &err), LS_ERR_RANGE);
    assert_null(bad);
    assert_int_equal(err.code, LS_ERR_RANGE);
}

static void test_raw_pcm(void **state)
{
    (void)state;
    ls_raw_spec spec;
    ls_error err;
    assert_int_equal(ls_raw_spec_parse("s16le:48000:2", &spec, &err), LS_OK);
    assert_int_equal(spec.format, LS_PCM_S16LE);
    assert_int_equal(spec.rate, 48000);
    assert_int_equal(spec.channels, 2);
    assert_int_equal(ls_raw_frame_bytes(&spec), 4);
    /* Little-endian: 0x4000 = 0.5, 0xC000 = -0.5 averaged with 0. */
    uint8_t bytes[8] = {0x00, 0x40, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x40};
    ls_audio a;
    assert_int_equal(ls_audio_decode_raw(bytes, 8, &spec, NULL, &a, &err), LS_OK);
    assert_int_equal(a.n, 2);
    assert_true(a.samples[0] == 0.25f);
    assert_true(a.samples[1] == 0.0f);
    ls_audio_free(&a);
    /* 7 bytes is not a whole number of 4-byte frames. */
    assert_int_equal(ls_audio_decode_raw(bytes, 7, &spec, NULL, &a, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "whole number"));
    assert_int_equal(ls_audio_decode_raw(bytes, 0, &spec, NULL, &a, &err), LS_ERR_FORMAT);
    const char *bad[] = {"s16le", "s16le:16000", "u8:16000:1", "s16le:0:1", "s16le:99999999:1",
                         "f32le:16000:0", "f32le:16000:1x", "", "s16le:16000:1:2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ls_raw_spec_parse(bad[i], &spec, &err) == LS_OK) fail_msg("accepted '%s'", bad[i]);
}

/* A minimal 16-bit PCM WAV header with chosen fields. */
static size_t wav_header(uint8_t *h, int channels, uint32_t rate, uint32_t data_bytes)
{
    memcpy(h, "RIFF", 4);
    uint32_t riff = 36 + data_bytes;
    memcpy(h + 4, &riff, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    uint32_t fmt_len = 16;
    uint16_t pcm = 1, ch = (uint16_t)channels, bits = 16, align = (uint16_t)(2 * channels);
    uint32_t bps = rate * align;
    memcpy(h + 16, &fmt_len, 4);
    memcpy(h + 20, &pcm, 2);
    memcpy(h + 22, &ch, 2);
    memcpy(h + 24, &rate, 4);
    memcpy(h + 28, &bps, 4);
    memcpy(h + 32, &align, 2);
    memcpy(h + 34, &bits, 2);
    memcpy(h + 36, "data", 4);
    memcpy(h + 40, &data_bytes, 4);
    return 44;
}

static void expect_bad_file(const char *name, const void *bytes, size_t len)
{
    const char *path = test_write_tmp(name, bytes, len);
    ls_audio a;
    ls_error err = {0};
    int rc = ls_audio_decode_file(path, NULL, &a, &err);
    if (rc == LS_OK) fail_msg("%s decoded without error", name);
    assert_true(strlen(err.msg) > 0);
    print_message("%-14s -> %s\n", name, err.msg);
    rc = ls_audio_decode_memory(bytes, len, NULL, &a, &err);
    if (rc == LS_OK) fail_msg("%s decoded from memory without error", name);
}

static void test_bad_files(void **state)
{
    (void)state;
    static uint8_t buf[44 + 8000];
    memset(buf, 0, sizeof buf);
    expect_bad_file("empty.wav", buf, 0);
    /* Header promises 8000 data bytes; only 2000 follow. */
    wav_header(buf, 1, 16000, 8000);
    expect_bad_file("truncated.wav", buf, 44 + 2000);
    /* Header alone, cut inside the fmt chunk. */
    expect_bad_file("cut.wav", buf, 30);
    wav_header(buf, 0, 16000, 8000);
    expect_bad_file("zero-ch.wav", buf, sizeof buf);
    wav_header(buf, 1, 3, 8000);
    expect_bad_file("rate-3hz.wav", buf, sizeof buf);
    wav_header(buf, 1, 4000000000u, 8000);
    expect_bad_file("rate-4ghz.wav", buf, sizeof buf);
    const char *text = "this is not audio, just some words in a file\n";
    expect_bad_file("text.wav", text, strlen(text));
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)test_rand(&rng);
    expect_bad_file("noise.bin", buf, sizeof buf);
    ls_audio a;
    ls_error err;
    assert_int_equal(ls_audio_decode_file("/nonexistent/a.wav", NULL, &a, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "/nonexistent/a.wav"));
    /* A good header with its whole data still decodes. */
    wav_header(buf, 1, 16000, 8000);
    memset(buf + 44, 0, 8000);
    const char *good = test_write_tmp("good.wav", buf, 44 + 8000);
    assert_int_equal(ls_audio_decode_file(good, NULL, &a, &err), LS_OK);
    assert_int_equal(a.n, 4000);
    ls_audio_free(&a);
    assert_int_equal(ls_audio_decode_memory(buf, 44 + 8000, NULL, &a, &err), LS_OK);
    assert_int_equal(a.n, 4000);
    ls_audio_free(&a);
}

/* Resampling while decoding gives exactly the samples of decoding at the
 * file's rate and resampling the whole buffer, for every format path. */
static void test_resample_while_decoding(void **state)
{
    (void)state;
    struct { const char *name; int format, rate, channels; } cases[] = {
        {"s16-44k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 2},
        {"f32-48k.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1},
        {"s16-22k.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 22050, 2},
        {"vorbis-32k.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 32000, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* 1.3 s: several decode blocks, not a whole number of them. */
        size_t n = (size_t)cases[c].rate * 13 / 10;
        const char *path = write_sound(cases[c].name, cases[c].format, cases[c].rate,
                                       cases[c].channels, n, NULL);
        ls_audio native, whole, streamed;
        ls_error err = {0};
        assert_int_equal(ls_audio_decode_file(path, NULL, &native, &err), LS_OK);
        assert_int_equal(native.rate, cases[c].rate);
        assert_int_equal(ls_resample(native.samples, native.n, native.rate, 16000, &whole, &err),
                         LS_OK);
        ls_audio_limits lim = {.out_rate = 16000};
        if (ls_audio_decode_file(path, &lim, &streamed, &err))
            fail_msg("%s: %s", cases[c].name, err.msg);
        assert_int_equal(streamed.rate, 16000);
        assert_int_equal(streamed.n, whole.n);
        assert_memory_equal(streamed.samples, whole.samples, whole.n * sizeof(float));
        ls_audio_free(&native);
        ls_audio_free(&whole);
        ls_audio_free(&streamed);
    }
    /* Raw PCM too. */
    enum { N = 48000 + 777 };
    static int16_t pcm[N];
    for (size_t i = 0; i < N; i++) pcm[i] = (int16_t)(8000 * sin((double)i * 0.05));
    ls_raw_spec spec = {LS_PCM_S16LE, 48000, 1};
    ls_audio native, whole, streamed;
    ls_error err = {0};
    ls_audio_limits lim = {.out_rate = 16000};
    assert_int_equal(ls_audio_decode_raw(pcm, sizeof pcm, &spec, NULL, &native, &err), LS_OK);
    assert_int_equal(ls_resample(native.samples, native.n, 48000, 16000, &whole, &err), LS_OK);
    assert_int_equal(ls_audio_decode_raw(pcm, sizeof pcm, &spec, &lim, &streamed, &err), LS_OK);
    assert_int_equal(streamed.n, whole.n);
    assert_memory_equal(streamed.samples, whole.samples, whole.n * sizeof(float));
    ls_audio_free(&native);
    ls_audio_free(&whole);
    ls_audio_free(&streamed);
}

/* max_seconds: an input over it is refused with LS_ERR_TOO_LARGE, whether a
 * header says so (refused before decoding) or only the samples show it (a
 * raw buffer, a stream of frames without a count). */
static void test_duration_limit(void **state)
{
    (void)state;
    ls_audio a;
    ls_error err = {0};
    /* 70 s of near-silence at 8 kHz, FLAC: the header states the length. */
    size_t n = 8000 * 70;
    const char *path = write_sound("long.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 8000, 1, n,
                                   NULL);
    ls_audio_limits lim = {.max_seconds = 60, .out_rate = 16000};
    assert_int_equal(ls_audio_decode_file(path, &lim, &a, &err), LS_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "60 s"));
    lim.max_seconds = 70;
    assert_int_equal(ls_audio_decode_file(path, &lim, &a, &err), LS_OK);
    assert_int_equal(a.rate, 16000);
    ls_audio_free(&a);
    /* Raw: the byte count says the duration. */
    enum { RATE = 16000 };
    size_t bytes = (size_t)RATE * 2 * 11;
    int16_t *pcm = calloc(bytes / 2, 2);
    ls_raw_spec spec = {LS_PCM_S16LE, RATE, 1};
    ls_audio_limits ten = {.max_seconds = 10};
    assert_int_equal(ls_audio_decode_raw(pcm, bytes, &spec, &ten, &a, &err), LS_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "11.0 s"));
    ls_audio_limits twelve = {.max_seconds = 12};
    assert_int_equal(ls_audio_decode_raw(pcm, bytes, &spec, &twelve, &a, &err), LS_OK);
    assert_int_equal(a.n, RATE * 11);
    ls_audio_free(&a);
    /* MP3 and Ogg: libsndfile's frame count is an estimate or a seek to the
     * last page, and the decoded samples are checked as they come. */
    const char *mp3 = write_sound("long.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, RATE, 1,
                                  (size_t)RATE * 12, NULL);
    const char *ogg = write_sound("long.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, RATE, 1,
                                  (size_t)RATE * 12, NULL);
    assert_int_equal(ls_audio_decode_file(mp3, &ten, &a, &err), LS_ERR_TOO_LARGE);
    assert_int_equal(ls_audio_decode_file(ogg, &ten, &a, &err), LS_ERR_TOO_LARGE);
    ls_audio_limits thirteen = {.max_seconds = 13};
    assert_int_equal(ls_audio_decode_file(mp3, &thirteen, &a, &err), LS_OK);
    ls_audio_free(&a);
    free(pcm);
}

/* A rejected upload must cost nothing once answered. libvorbis leaks the
 * codec setup of a crafted Ogg/Vorbis header (5.7 KB from vorbis_info_init,
 * xiph/vorbis#125) when it fails to open, which grew the server by about
 * 1 KB per such upload: the heap stays flat over 3,000 of them. (Under
 * ASan, mallinfo2 reads zero and LeakSanitizer makes the same check.) */
static void test_rejected_ogg_holds_no_memory(void **state)
{
    (void)state;
    size_t len;
    uint8_t *bytes = test_read_data("../fuzz/regress/audio_decode/vorbis_header_leak.ogg", &len);
    assert_true(len > 0);
    ls_audio a;
    ls_error err = {0};
    for (int i = 0; i < 10; i++)
        assert_int_not_equal(ls_audio_decode_memory(bytes, len, NULL, &a, &err), LS_OK);
    print_message("rejected: %s\n", err.msg);
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 3000; i++)
        assert_int_not_equal(ls_audio_decode_memory(bytes, len, NULL, &a, &err), LS_OK);
    size_t after = mallinfo2().uordblks;
    print_message("heap in use: %zu -> %zu bytes over 3000 rejected Ogg files\n", before, after);
    assert_true(after < before + 256 * 1024);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lossless_formats),
        cmocka_unit_test(test_lossy_formats),
        cmocka_unit_test(test_16k_mono_float_passthrough),
        cmocka_unit_test(test_resample),
        cmocka_unit_test(test_raw_pcm),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_resample_while_decoding),
        cmocka_unit_test(test_duration_limit),
        cmocka_unit_test(test_rejected_ogg_holds_no_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
