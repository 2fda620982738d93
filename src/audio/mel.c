#include "audio/mel.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PAD (LS_MEL_N_FFT / 2) /* centre padding on each side */
#define PREEMPH 0.97
/* Samples kept: one frame plus room to append input in large steps. */
#define BUF_CAP (LS_MEL_N_FFT + 8 * 1024)

/* librosa's Slaney mel scale: linear below 1 kHz, logarithmic above. */
static double hz_to_mel(double hz)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return hz >= min_log_hz ? min_log_mel + log(hz / min_log_hz) / logstep : hz / f_sp;
}

static double mel_to_hz(double mel)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return mel >= min_log_mel ? min_log_hz * exp(logstep * (mel - min_log_mel)) : f_sp * mel;
}

void ls_mel_filterbank(double *w)
{
    const int n_mels = LS_MEL_BINS, n_bins = LS_MEL_FFT_BINS;
    double mel_f[LS_MEL_BINS + 2], fft_f[LS_MEL_FFT_BINS];
    double mmin = hz_to_mel(LS_MEL_FMIN), mmax = hz_to_mel(LS_MEL_FMAX);
    /* np.linspace(mmin, mmax, n_mels + 2) */
    double step = (mmax - mmin) / (n_mels + 1);
    for (int i = 0; i < n_mels + 2; i++)
        mel_f[i] = mel_to_hz(i == n_mels + 1 ? mmax : mmin + i * step);
    for (int k = 0; k < n_bins; k++) fft_f[k] = (16000.0 / 2) * k / (n_bins - 1);
    for (int i = 0; i < n_mels; i++) {
        double fd0 = mel_f[i + 1] - mel_f[i], fd1 = mel_f[i + 2] - mel_f[i + 1];
        double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (int k = 0; k < n_bins; k++) {
            double lower = -(mel_f[i] - fft_f[k]) / fd0;
            double upper = (mel_f[i + 2] - fft_f[k]) / fd1;
            double v = lower < upper ? lower : upper;
            w[i * n_bins + k] = (v > 0 ? v : 0) * enorm;
        }
    }
}

size_t ls_mel_rows(size_t n_samples)
{
    return 1 + n_samples / LS_MEL_HOP;
}

struct ls_mel {
    double window[LS_MEL_N_FFT];
    double weights[LS_MEL_BINS][LS_MEL_FFT_BINS];
    int band_lo[LS_MEL_BINS], band_hi[LS_MEL_BINS]; /* non-zero range of each filter */
    double *frame;      /* fftw input, n_fft */
    fftw_complex *spec; /* fftw output, n_fft/2 + 1 */
    fftw_plan plan;

    /* Stream state. buf holds padded, pre-emphasised samples starting at
     * padded index buf_start (the first sample of the next row). */
    double buf[BUF_CAP];
    size_t buf_len;
    size_t buf_start;   /* padded index of buf[0] */
    size_t n_in;        /* input samples received */
    size_t next_row;    /* rows emitted so far */
    float last_x;       /* previous input sample, for pre-emphasis */
    size_t skip_rows;   /* rows below this are emitted as zeros, not computed */
    int flushed;
};

/* FFTW's planner is process-global and not thread-safe; this makes it so
 * once, since sessions create their mel objects from several threads. */
static pthread_once_t fftw_once = PTHREAD_ONCE_INIT;
static void fftw_init_threadsafe(void) { fftw_make_planner_thread_safe(); }

int ls_mel_create(ls_mel **out, ls_error *err)
{
    *out = NULL;
    pthread_once(&fftw_once, fftw_init_threadsafe);
    ls_mel *m = calloc(1, sizeof *m);
    if (!m) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate mel state");
    for (int k = 0; k < LS_MEL_N_FFT; k++)
        m->window[k] = 0.5 - 0.5 * cos(2.0 * M_PI * k / LS_MEL_N_FFT);
    ls_mel_filterbank(&m->weights[0][0]);
    for (int i = 0; i < LS_MEL_BINS; i++) {
        int lo = 0, hi = LS_MEL_FFT_BINS;
        while (lo < hi && m->weights[i][lo] == 0) lo++;
        while (hi > lo && m->weights[i][hi - 1] == 0) hi--;
        m->band_lo[i] = lo;
        m->band_hi[i] = hi;
    }
    m->frame = fftw_alloc_real(LS_MEL_N_FFT);
    m->spec = fftw_alloc_complex(LS_MEL_FFT_BINS);
    /* FFTW_ESTIMATE: the same plan every time, so every object rounds alike. */
    if (m->frame && m->spec)
        m->plan = fftw_plan_dft_r2c_1d(LS_MEL_N_FFT, m->frame, m->spec, FFTW_ESTIMATE);
    if (!m->plan) {
        ls_mel_destroy(m);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot create FFT plan");
    }
    ls_mel_reset(m);
    *out = m;
    return LS_OK;
}

void ls_mel_destroy(ls_mel *m)
{
    if (!m) return;
    if (m->plan) fftw_destroy_plan(m->plan);
    fftw_free(m->frame);
    fftw_free(m->spec);
    free(m);
}

void ls_mel_reset(ls_mel *m)
{
    /* The stream starts with the left centre padding. */
    memset(m->buf, 0, PAD * sizeof m->buf[0]);
    m->buf_len = PAD;
    m->buf_start = 0;
    m->n_in = 0;
    m->next_row = 0;
    m->last_x = 0.0f;
    m->skip_rows = 0;
    m->flushed = 0;
}

void ls_mel_skip_rows(ls_mel *m, size_t rows)
{
    m->skip_rows = rows;
}

/* One mel row from the n_fft padded samples at p. */
static void mel_row(ls_mel *m, const double *p, float *out)
{
    for (int k = 0; k < LS_MEL_N_FFT; k++) m->frame[k] = p[k] * m->window[k];
    fftw_execute(m->plan);
    double mag[LS_MEL_FFT_BINS];
    for (int k = 0; k < LS_MEL_FFT_BINS; k++)
        mag[k] = sqrt(m->spec[k][0] * m->spec[k][0] + m->spec[k][1] * m->spec[k][1]);
    for (int i = 0; i < LS_MEL_BINS; i++) {
        double s = 0;
        for (int k = m->band_lo[i]; k < m->band_hi[i]; k++) s += m->weights[i][k] * mag[k];
        double db = 20.0 * log10(s > 1e-5 ? s : 1e-5) - 20.0;
        double v = 8.0 * (db + 100.0) / 100.0 - 4.0;
        out[i] = (float)(v < -4.0 ? -4.0 : v > 4.0 ? 4.0 : v);
    }
}

/* Rows final once `avail` padded samples exist, capped at `limit` rows. */
static size_t rows_ready(size_t avail, size_t limit)
{
    size_t r = avail >= LS_MEL_N_FFT ? (avail - LS_MEL_N_FFT) / LS_MEL_HOP + 1 : 0;
    return r < limit ? r : limit;
}

size_t ls_mel_push_rows(const ls_mel *m, size_t n)
{
    if (m->flushed) return 0;
    return rows_ready(PAD + m->n_in + n, (size_t)-1) - m->next_row;
}

size_t ls_mel_flush_rows(const ls_mel *m)
{
    if (m->flushed) return 0;
    return ls_mel_rows(m->n_in) - m->next_row;
}

/* Emits every row whose samples are all in buf (padded length `avail`). */
static size_t emit_rows(ls_mel *m, size_t limit, float *out)
{
    size_t avail = m->buf_start + m->buf_len, emitted = 0;
    size_t last = rows_ready(avail, limit);
    while (m->next_row < last) {
        size_t off = m->next_row * LS_MEL_HOP - m->buf_start;
        if (m->next_row < m->skip_rows)
            memset(out + emitted * LS_MEL_BINS, 0, LS_MEL_BINS * sizeof *out);
        else
            mel_row(m, m->buf + off, out + emitted * LS_MEL_BINS);
        m->next_row++;
        emitted++;
    }
    /* Drop samples no later row needs. */
    size_t keep_from = m->next_row * LS_MEL_HOP;
    if (keep_from > m->buf_start) {
        size_t drop = keep_from - m->buf_start;
        if (drop > m->buf_len) drop = m->buf_len;
        memmove(m->buf, m->buf + drop, (m->buf_len - drop) * sizeof m->buf[0]);
        m->buf_len -= drop;
        m->buf_start += drop;
    }
    return emitted;
}

int ls_mel_push(ls_mel *m, const float *x, size_t n, float *rows_out, size_t cap,
                size_t *n_rows, ls_error *err)
{
    *n_rows = 0;
    if (m->flushed) return ls_error_set(err, LS_ERR_STATE, "mel stream already flushed");
    if (n && !x) return ls_error_set(err, LS_ERR_INVALID_ARG, "mel push: NULL samples");
    if (ls_mel_push_rows(m, n) > cap)
        return ls_error_set(err, LS_ERR_RANGE, "mel push: %zu rows do not fit in %zu",
                            ls_mel_push_rows(m, n), cap);
    size_t done = 0;
    while (done < n) {
        size_t room = BUF_CAP - m->buf_len, take = n - done;
        if (take > room) take = room;
        double *dst = m->buf + m->buf_len;
        float prev = m->last_x;
        for (size_t i = 0; i < take; i++) {
            float v = x[done + i];
            dst[i] = (double)v - PREEMPH * (double)prev;
            prev = v;
        }
        m->last_x = prev;
        m->buf_len += take;
        m->n_in += take;
        done += take;
        *n_rows += emit_rows(m, (size_t)-1, rows_out + *n_rows * LS_MEL_BINS);
    }
    return LS_OK;
}

int ls_mel_flush(ls_mel *m, float *rows_out, size_t cap, size_t *n_rows, ls_error *err)
{
    *n_rows = 0;
    if (m->flushed) return ls_error_set(err, LS_ERR_STATE, "mel stream already flushed");
    size_t total = ls_mel_rows(m->n_in);
    if (total - m->next_row > cap)
        return ls_error_set(err, LS_ERR_RANGE, "mel flush: %zu rows do not fit in %zu",
                            total - m->next_row, cap);
    /* Right centre padding; buf has room since rows were emitted eagerly. */
    memset(m->buf + m->buf_len, 0, PAD * sizeof m->buf[0]);
    m->buf_len += PAD;
    *n_rows = emit_rows(m, total, rows_out);
    m->flushed = 1;
    return LS_OK;
}

int ls_mel_compute(const float *x, size_t n, float **mel, size_t *rows, ls_error *err)
{
    *mel = NULL;
    *rows = 0;
    size_t total = ls_mel_rows(n);
    float *out = malloc(total * LS_MEL_BINS * sizeof *out);
    if (!out) return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate %zu mel rows", total);
    ls_mel *m;
    int rc = ls_mel_create(&m, err);
    if (rc) {
        free(out);
        return rc;
    }
    size_t a = 0, b = 0;
    rc = ls_mel_push(m, x, n, out, total, &a, err);
    if (!rc) rc = ls_mel_flush(m, out + a * LS_MEL_BINS, total - a, &b, err);
    ls_mel_destroy(m);
    if (rc) {
        free(out);
        return rc;
    }
    *mel = out;
    *rows = a + b;
    return LS_OK;
}
