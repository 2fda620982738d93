/* windows.h - mel windows per video frame (25 fps), the audio encoder's input.
 *
 * A video frame covers 80/25 = 3.2 mel rows; frame k sees the 16 mel rows
 * starting at s = int(80 * k / 25.0), moved back to T - 16 at the end, as a
 * [80][16] block (mel bin major). N = int((T - 16) / 80.0 * 25) + 2 windows.
 * Both formulas are evaluated in double exactly as the reference writes them:
 * integer rewrites give other counts for some T (384, 672, 752, ...).
 */
#ifndef LS_AUDIO_WINDOWS_H
#define LS_AUDIO_WINDOWS_H

#include <stddef.h>

#include "audio/mel.h"
#include "core/error.h"
#include "core/fps.h"

#define LS_MEL_WINDOW 16 /* mel rows per window */

/* Window count for T mel rows (T >= 16), or 0 when T < 16. */
size_t ls_mel_window_count(size_t T);

/* First mel row of window k out of T rows (before the end clamp when
 * T == 0: the streaming pipeline clamps itself once T is known). */
size_t ls_mel_window_start(size_t k, size_t T);

/* All windows of mel [T][80] into out [N][80][16]; T < 16 is an error. */
int ls_mel_windows(const float *mel, size_t T, float *out, size_t cap_windows, size_t *n,
                   ls_error *err);

/* One window starting at mel row s (rows s..s+15 must exist) into out [80][16]. */
void ls_mel_window_at(const float *mel, size_t s, float *out);

#endif
