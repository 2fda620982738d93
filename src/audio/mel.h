/* mel.h - the 80-bin log-mel spectrogram of the models' training code.
 *
 * For 16 kHz mono input: pre-emphasis (0.97), 400 zeros of centre padding on
 * each side, STFT with n_fft 800, hop 200 and a periodic Hann window,
 * magnitude, Slaney mel filterbank (librosa.filters.mel, fmin 55, fmax 7600),
 * 20*log10(max(1e-5, m)) - 20, then clip(8*(dB+100)/100 - 4, -4, 4).
 * T = 1 + floor(n/200) rows of 80 floats. Computed in double.
 *
 * ls_mel is the streaming form: it takes chunks of any size and emits each
 * row as soon as no later audio can change it (row t needs input samples up
 * to 200t+399); ls_mel_flush emits the rest. Rows are bit-identical to the
 * whole-file ls_mel_compute for any chunking, because the whole-file call is
 * one push and a flush of the same object. No allocation after create.
 */
#ifndef LS_AUDIO_MEL_H
#define LS_AUDIO_MEL_H

#include <stddef.h>

#include "core/error.h"

#define LS_MEL_BINS 80
#define LS_MEL_N_FFT 800
#define LS_MEL_HOP 200
#define LS_MEL_FFT_BINS (LS_MEL_N_FFT / 2 + 1) /* 401 */
#define LS_MEL_FMIN 55.0
#define LS_MEL_FMAX 7600.0

/* The Slaney filterbank, [80][401] row-major, as librosa computes it. */
void ls_mel_filterbank(double *weights);

/* Mel rows of a whole signal of n samples: 1 + n/200. */
size_t ls_mel_rows(size_t n_samples);

/* Whole signal: *mel receives malloc'd [*rows][80] float32. n may be 0. */
int ls_mel_compute(const float *x, size_t n, float **mel, size_t *rows, ls_error *err);

typedef struct ls_mel ls_mel;

/* *out is NULL on failure. */
int ls_mel_create(ls_mel **out, ls_error *err);
void ls_mel_destroy(ls_mel *m);
/* Forgets all audio: the next push starts a new stream (and clears the skip). */
void ls_mel_reset(ls_mel *m);
/* Rows below `rows` of this stream are emitted as zeros without being
 * computed, for a caller that needs only later rows: a row depends on its own
 * samples only, so the later rows are the bytes they would be without it. */
void ls_mel_skip_rows(ls_mel *m, size_t rows);

/* Rows a push of n more samples will emit (so callers can size buffers). */
size_t ls_mel_push_rows(const ls_mel *m, size_t n);
/* Rows ls_mel_flush will emit now. */
size_t ls_mel_flush_rows(const ls_mel *m);

/* Appends n samples; writes the newly final rows to rows_out ([cap][80]). */
int ls_mel_push(ls_mel *m, const float *x, size_t n, float *rows_out, size_t cap,
                size_t *n_rows, ls_error *err);
/* Ends the stream: emits the remaining rows (zero padding at the end). */
int ls_mel_flush(ls_mel *m, float *rows_out, size_t cap, size_t *n_rows, ls_error *err);

#endif
