#include "audio/windows.h"

size_t ls_mel_window_count(size_t T)
{
    if (T < LS_MEL_WINDOW) return 0;
    return (size_t)((double)(T - LS_MEL_WINDOW) / 80.0 * LS_VIDEO_FPS) + 2;
}

size_t ls_mel_window_start(size_t k, size_t T)
{
    size_t s = (size_t)((double)(80 * k) / (double)LS_VIDEO_FPS);
    if (T && s + LS_MEL_WINDOW > T) s = T - LS_MEL_WINDOW;
    return s;
}

void ls_mel_window_at(const float *mel, size_t s, float *out)
{
    for (int b = 0; b < LS_MEL_BINS; b++)
        for (int r = 0; r < LS_MEL_WINDOW; r++)
            out[b * LS_MEL_WINDOW + r] = mel[(s + (size_t)r) * LS_MEL_BINS + (size_t)b];
}

int ls_mel_windows(const float *mel, size_t T, float *out, size_t cap_windows, size_t *n,
                   ls_error *err)
{
    *n = 0;
    if (T < LS_MEL_WINDOW)
        return ls_error_set(err, LS_ERR_RANGE,
                            "audio too short: %zu mel rows, a window needs %d (at least %d ms)",
                            T, LS_MEL_WINDOW, (LS_MEL_WINDOW - 1) * LS_MEL_HOP / 16);
    size_t count = ls_mel_window_count(T);
    if (count > cap_windows)
        return ls_error_set(err, LS_ERR_RANGE, "%zu mel windows do not fit in %zu", count,
                            cap_windows);
    for (size_t k = 0; k < count; k++)
        ls_mel_window_at(mel, ls_mel_window_start(k, T), out + k * LS_MEL_BINS * LS_MEL_WINDOW);
    *n = count;
    return LS_OK;
}
