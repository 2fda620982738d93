#include "pipeline/features.h"

#include <string.h>

#include "audio/mel.h"
#include "audio/windows.h"

int64_t ls_feature_frame_count(int64_t n_windows)
{
    return n_windows > 0 ? n_windows + 2 : 0;
}

int64_t ls_feature_frames_for_samples(size_t n_samples)
{
    return ls_feature_frame_count((int64_t)ls_mel_window_count(ls_mel_rows(n_samples)));
}

int64_t ls_feature_window_of(int64_t j, int64_t n_windows)
{
    if (j < 0) return -1;
    if (n_windows >= 0 && j > n_windows + 1) return -1;
    if (j == 0) return 0;
    if (n_windows >= 0 && j == n_windows + 1) return n_windows - 1;
    return j - 1;
}

int64_t ls_feature_last_window(int64_t frame, int64_t n_windows)
{
    int64_t k = frame + LS_FEATURE_ROWS / 2 - 2; /* F[i+7] = E[i+6] */
    return n_windows >= 0 && k > n_windows - 1 ? n_windows - 1 : k;
}

int64_t ls_feature_first_window(int64_t frame)
{
    int64_t k = frame - LS_FEATURE_ROWS / 2 - 1; /* F[i-8] = E[i-9] */
    return k < 0 ? 0 : k;
}

void ls_feature_assemble(int64_t frame, int64_t n_windows,
                         const float *(*get)(void *ctx, int64_t k), void *ctx, float *out)
{
    for (int r = 0; r < LS_FEATURE_ROWS; r++) {
        int64_t k = ls_feature_window_of(frame - LS_FEATURE_ROWS / 2 + r, n_windows);
        float *dst = out + (size_t)r * LS_FEATURE_DIM;
        if (k < 0) memset(dst, 0, LS_FEATURE_DIM * sizeof *dst);
        else memcpy(dst, get(ctx, k), LS_FEATURE_DIM * sizeof *dst);
    }
}
