/* features.h - audio-encoder outputs to the UNet's audio input, per frame.
 *
 * The encoder gives E[k] (512 floats) for mel window k = 0..N-1. The rows are
 * padded as F = [E0, E0, E1, ..., E(N-1), E(N-1)] (N+2 rows) and output frame
 * i (0 <= i < N+2) takes F[i-8 .. i+7], zero rows where the index falls
 * outside F: 16 x 512 floats, which the UNet reads as [32,16,16] (a plain
 * reshape). Frame i needs windows up to i+6 only, so a stream can produce it
 * as soon as window i+6 is final; the last frames wait for the end, when N
 * is known.
 */
#ifndef LS_PIPELINE_FEATURES_H
#define LS_PIPELINE_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#define LS_FEATURE_DIM 512
#define LS_FEATURE_ROWS 16                 /* F rows per frame: i-8 .. i+7 */
#define LS_FEATURE_FLOATS (LS_FEATURE_DIM * LS_FEATURE_ROWS) /* 32*16*16 */

/* Output frames for N mel windows: N + 2 (0 when N is 0). */
int64_t ls_feature_frame_count(int64_t n_windows);

/* Output frames a whole clip of n 16 kHz samples gives: its mel rows
 * (mel.h), their windows (windows.h), N + 2; 0 when too short for one. */
int64_t ls_feature_frames_for_samples(size_t n_samples);

/* The window E[k] that row j of F repeats, or -1 for a zero row.
 * n_windows < 0 means N is not known yet: rows j <= N can still be named
 * (j >= 1 gives window j-1), and the end padding cannot. */
int64_t ls_feature_window_of(int64_t j, int64_t n_windows);

/* Highest window frame i needs once the stream has ended: min(i+6, N-1);
 * while N is unknown, i+6. */
int64_t ls_feature_last_window(int64_t frame, int64_t n_windows);

/* Lowest window frame i needs: max(i-9, 0). */
int64_t ls_feature_first_window(int64_t frame);

/* Writes frame i's [16][512] block. get(ctx, k) returns E[k]. */
void ls_feature_assemble(int64_t frame, int64_t n_windows,
                         const float *(*get)(void *ctx, int64_t k), void *ctx, float *out);

#endif
