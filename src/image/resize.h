/* resize.h - bicubic resize that reproduces OpenCV's cv::resize(..., INTER_CUBIC) on uint8.
 *
 * Same taps (a = -0.75, half-pixel centres, coefficients rounded to 11-bit fixed point),
 * same replicated border, same two passes: an exact integer horizontal pass, then OpenCV's
 * vertical pass, which on x86 runs in float for blocks of 8 values and in 22-bit fixed point
 * for the tail of each row. Following both keeps the output byte-exact with Debian's
 * python3-opencv (the tests count any difference). Equal sizes copy, as OpenCV does.
 *
 * An ls_resizer is one caller's scratch (taps and per-band row rings): a caller owns it and
 * never shares it between threads at once. It grows to the largest sizes it has seen, so
 * after warm-up a resize allocates nothing. Output rows are split in bands on the pool; each
 * row is computed the same way whatever the band, so the bytes do not depend on threads.
 */
#ifndef LS_IMAGE_RESIZE_H
#define LS_IMAGE_RESIZE_H

#include "core/error.h"
#include "core/threadpool.h"
#include "image/image.h"

typedef struct ls_resizer ls_resizer;

/* *out is NULL on failure. */
int ls_resizer_create(ls_resizer **out, ls_error *err);
void ls_resizer_destroy(ls_resizer *rz);

/* Resizes src into dst (their views give the sizes; channels 1..4 and equal). dst must not
 * overlap src. pool may be NULL (runs on the caller). */
int ls_resize_cubic(ls_resizer *rz, ls_pool *pool, const ls_image *src, ls_image *dst,
                    ls_error *err);

#endif
