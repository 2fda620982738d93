/* Mel spectrogram against the librosa reference, streaming vs whole-file,
 * and the per-frame window formulas. */
#include "support/test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "audio/windows.h"
#include "core/npy.h"

static void test_filterbank_matches_librosa(void **state)
{
    (void)state;
    char buf[512];
    uint8_t *json;
    size_t len;
    ls_error err;
    assert_int_equal(ls_read_file(test_data_path(buf, sizeof buf, "mel/mel_filters.json"), &json,
                                  &len, &err), LS_OK);
    cJSON *root = cJSON_Parse((const char *)json);
    free(json);
    assert_non_null(root);
    cJSON *filters = cJSON_GetObjectItem(root, "filters");
    assert_int_equal(cJSON_GetArraySize(filters), LS_MEL_BINS);
    static double w[LS_MEL_BINS * LS_MEL_FFT_BINS];
    ls_mel_filterbank(w);
    double worst = 0;
    for (int i = 0; i < LS_MEL_BINS; i++) {
        cJSON *row = cJSON_GetArrayItem(filters, i);
        assert_int_equal(cJSON_GetArraySize(row), LS_MEL_FFT_BINS);
        for (int k = 0; k < LS_MEL_FFT_BINS; k++) {
            double d = fabs(w[i * LS_MEL_FFT_BINS + k] - cJSON_GetArrayItem(row, k)->valuedouble);
            worst = d > worst ? d : worst;
        }
    }
    cJSON_Delete(root);
    print_message("filterbank max abs diff vs librosa: %.3g\n", worst);
    assert_true(worst <= 1e-6);
}

static void test_mel_matches_reference(void **state)
{
    (void)state;
    char b1[512], b2[512];
    ls_npy audio, ref;
    ls_error err;
    assert_int_equal(ls_npy_read(test_data_path(b1, sizeof b1, "mel/test_audio.npy"), &audio, &err), LS_OK);
    assert_int_equal(ls_npy_read(test_data_path(b2, sizeof b2, "mel/reference_mel_spec_correct.npy"), &ref, &err), LS_OK);
    assert_int_equal(audio.count, 10240);
    float *mel;
    size_t T;
    assert_int_equal(ls_mel_compute(audio.data, audio.count, &mel, &T, &err), LS_OK);
    assert_int_equal(T, 52);
    assert_int_equal(ref.shape[0], 52);
    assert_int_equal(ref.shape[1], 80);
    double worst = 0;
    for (size_t i = 0; i < T * LS_MEL_BINS; i++) {
        double d = fabs((double)mel[i] - ref.data[i]);
        worst = d > worst ? d : worst;
    }
    print_message("mel max abs diff vs librosa reference: %.3g\n", worst);
    assert_true(worst <= 1e-4);
    free(mel);
    ls_npy_free(&audio);
    ls_npy_free(&ref);
}

static void make_signal(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    double f = 100 + 900 * test_rand_uniform(&s);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.3 * sin(2 * M_PI * f * (double)i / 16000.0) +
                       0.1 * (test_rand_uniform(&s) - 0.5));
}

/* Any chunking, from 1 sample to the whole signal, gives the same bits. */
static void test_streaming_is_bit_exact(void **state)
{
    (void)state;
    const size_t lengths[] = {0, 1, 199, 200, 399, 400, 401, 3000, 10240, 48123};
    ls_error err;
    ls_mel *m;
    assert_int_equal(ls_mel_create(&m, &err), LS_OK);
    assert_non_null(m);
    uint64_t rng = 42;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t n = lengths[li];
        float *x = malloc((n + 1) * sizeof *x);
        make_signal(x, n, 1000 + li);
        float *whole;
        size_t T;
        assert_int_equal(ls_mel_compute(x, n, &whole, &T, &err), LS_OK);
        assert_int_equal(T, ls_mel_rows(n));
        float *rows = malloc(T * LS_MEL_BINS * sizeof *rows);
        for (int trial = 0; trial < 6; trial++) {
            ls_mel_reset(m);
            size_t at = 0, off = 0;
            /* trial 0: one sample at a time; others: random sizes up to 5000. */
            while (off < n) {
                size_t len = trial == 0 ? 1 : 1 + test_rand(&rng) % 5000;
                if (len > n - off) len = n - off;
                size_t expect = ls_mel_push_rows(m, len), got;
                assert_int_equal(ls_mel_push(m, x + off, len, rows + at * LS_MEL_BINS, T - at, &got, &err), LS_OK);
                assert_int_equal(got, expect);
                at += got;
                off += len;
            }
            size_t got;
            assert_int_equal(ls_mel_flush_rows(m), T - at);
            assert_int_equal(ls_mel_flush(m, rows + at * LS_MEL_BINS, T - at, &got, &err), LS_OK);
            at += got;
            assert_int_equal(at, T);
            assert_memory_equal(rows, whole, T * LS_MEL_BINS * sizeof *rows);
        }
        free(rows);
        free(whole);
        free(x);
    }
    ls_mel_destroy(m);
}

/* A row is emitted only once the audio it depends on has arrived. */
static void test_streaming_emits_as_soon_as_final(void **state)
{
    (void)state;
    ls_error err;
    ls_mel *m;
    assert_int_equal(ls_mel_create(&m, &err), LS_OK);
    float x[1000] = {0}, rows[10 * LS_MEL_BINS];
    size_t got;
    assert_int_equal(ls_mel_push(m, x, 399, rows, 10, &got, &err), LS_OK);
    assert_int_equal(got, 0); /* row 0 needs samples 0..399 */
    assert_int_equal(ls_mel_push(m, x, 1, rows, 10, &got, &err), LS_OK);
    assert_int_equal(got, 1);
    assert_int_equal(ls_mel_push(m, x, 199, rows, 10, &got, &err), LS_OK);
    assert_int_equal(got, 0);
    assert_int_equal(ls_mel_push(m, x, 1, rows, 10, &got, &err), LS_OK);
    assert_int_equal(got, 1);
    /* Too small an output buffer is an error, not an overflow. */
    assert_int_equal(ls_mel_push(m, x, 1000, rows, 1, &got, &err), LS_ERR_RANGE);
    assert_int_equal(ls_mel_flush(m, rows, 10, &got, &err), LS_OK);
    assert_int_equal(ls_mel_push(m, x, 1, rows, 10, &got, &err), LS_ERR_STATE);
    ls_mel_destroy(m);
}

/* The reference's formulas, written out as Python evaluates them. */
static size_t ref_count(long T) { return (size_t)(long)(((double)(T - 16) / 80.0) * 25.0) + 2; }
static size_t ref_start(long k, long T)
{
    long s = (long)((80.0 * (double)k) / 25.0);
    return (size_t)(s + 16 > T ? T - 16 : s);
}

/* Skipped rows are zeros; every later row is the whole-file row, bit for bit,
 * and a reset clears the skip. */
static void test_skip_rows(void **state)
{
    (void)state;
    const size_t n = 16000, skips[] = {0, 1, 37, 80, 81, 200};
    float *x = malloc(n * sizeof *x);
    make_signal(x, n, 77);
    ls_error err;
    float *whole;
    size_t T;
    assert_int_equal(ls_mel_compute(x, n, &whole, &T, &err), LS_OK);
    float *rows = malloc(T * LS_MEL_BINS * sizeof *rows);
    static const float zeros[LS_MEL_BINS];
    ls_mel *m;
    assert_int_equal(ls_mel_create(&m, &err), LS_OK);
    for (size_t si = 0; si < sizeof skips / sizeof skips[0]; si++) {
        size_t skip = skips[si];
        ls_mel_reset(m);
        ls_mel_skip_rows(m, skip);
        size_t at = 0, got;
        for (size_t off = 0; off < n; off += 1234) {
            size_t len = n - off < 1234 ? n - off : 1234;
            assert_int_equal(ls_mel_push(m, x + off, len, rows + at * LS_MEL_BINS, T - at, &got, &err), LS_OK);
            at += got;
        }
        assert_int_equal(ls_mel_flush(m, rows + at * LS_MEL_BINS, T - at, &got, &err), LS_OK);
        assert_int_equal(at + got, T);
        for (size_t t = 0; t < T; t++)
            assert_memory_equal(rows + t * LS_MEL_BINS, t < skip ? zeros : whole + t * LS_MEL_BINS,
                                LS_MEL_BINS * sizeof *rows);
    }
    /* A reset forgets the skip: row 0 is computed again. */
    ls_mel_reset(m);
    size_t got;
    assert_int_equal(ls_mel_push(m, x, n, rows, T, &got, &err), LS_OK);
    assert_true(got > 0);
    assert_memory_equal(rows, whole, LS_MEL_BINS * sizeof *rows);
    ls_mel_destroy(m);
    free(rows);
    free(whole);
    free(x);
}

static void test_window_formulas(void **state)
{
    (void)state;
    /* Unclamped starts for every k any T up to 200000 can reach. */
    size_t max_n = ls_mel_window_count(200000);
    for (size_t k = 0; k < max_n; k++)
        if (ls_mel_window_start(k, 0) != (size_t)(long)((80.0 * (double)k) / 25.0))
            fail_msg("k=%zu: unclamped start %zu", k, ls_mel_window_start(k, 0));
    /* For every T: the count, and every window the end clamp can touch (the
     * clamp moves at most the last few: s grows 3.2 rows per window). */
    for (long T = 16; T <= 200000; T++) {
        size_t n = ls_mel_window_count((size_t)T);
        if (n != ref_count(T)) fail_msg("T=%ld: count %zu, reference %zu", T, n, ref_count(T));
        size_t first = n > 12 ? n - 12 : 0;
        for (size_t k = first; k < n; k++) {
            size_t s = ls_mel_window_start(k, (size_t)T);
            if (s != ref_start((long)k, T))
                fail_msg("T=%ld k=%zu: start %zu, reference %zu", T, k, s, ref_start((long)k, T));
        }
        if (first > 0 && ref_start((long)first, T) + 16 > (size_t)T)
            fail_msg("T=%ld: the clamp reaches further back than the windows checked", T);
        assert_int_equal(ls_mel_window_start(0, (size_t)T), 0);
    }
    /* Where an integer rewrite (T-16)*25/80 would say one more. */
    assert_int_equal(ls_mel_window_count(384), 116);
    assert_int_equal(ls_mel_window_count(672), 206);
    assert_int_equal(ls_mel_window_count(752), 231);
    assert_int_equal(ls_mel_window_count(15), 0);
}

static void test_windows_transpose(void **state)
{
    (void)state;
    enum { T = 52 };
    float mel[T * LS_MEL_BINS];
    for (int t = 0; t < T; t++)
        for (int b = 0; b < LS_MEL_BINS; b++) mel[t * LS_MEL_BINS + b] = (float)(t * 1000 + b);
    size_t n = ls_mel_window_count(T);
    float *win = malloc(n * LS_MEL_BINS * LS_MEL_WINDOW * sizeof *win);
    size_t got;
    ls_error err;
    assert_int_equal(ls_mel_windows(mel, T, win, n, &got, &err), LS_OK);
    assert_int_equal(got, n);
    for (size_t k = 0; k < n; k++) {
        size_t s = ls_mel_window_start(k, T);
        for (int b = 0; b < LS_MEL_BINS; b++)
            for (int r = 0; r < LS_MEL_WINDOW; r++)
                assert_true(win[(k * LS_MEL_BINS + (size_t)b) * LS_MEL_WINDOW + (size_t)r] ==
                            (float)((s + (size_t)r) * 1000 + (size_t)b));
    }
    /* The last window is clamped to end at T. */
    assert_int_equal(ls_mel_window_start(n - 1, T) + LS_MEL_WINDOW, T);
    assert_int_equal(ls_mel_windows(mel, 15, win, n, &got, &err), LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "too short"));
    assert_int_equal(ls_mel_windows(mel, T, win, n - 1, &got, &err), LS_ERR_RANGE);
    free(win);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filterbank_matches_librosa),
        cmocka_unit_test(test_mel_matches_reference),
        cmocka_unit_test(test_streaming_is_bit_exact),
        cmocka_unit_test(test_streaming_emits_as_soon_as_final),
        cmocka_unit_test(test_skip_rows),
        cmocka_unit_test(test_window_formulas),
        cmocka_unit_test(test_windows_transpose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
