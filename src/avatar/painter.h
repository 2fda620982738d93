/* painter.h - the two per-frame calls the pipeline makes on an avatar.
 *
 *   ls_painter_input:  model input of avatar frame f, written into a [6,320,320] tensor slot
 *   ls_painter_output: model output [3,320,320] composited onto frame f, encoded (JPEG,
 *                      raw BGR or RGBA) into a buffer taken from an ls_buffer_pool
 *
 * A painter is one caller's scratch (compositor, JPEG encoder, a frame-sized work image): a
 * session owns one per thread that paints, and many painters share one avatar and one
 * thread pool. Work runs in row bands on the pool; the bytes do not depend on the thread
 * count. After the first frame, painting allocates nothing (with the avatar's frames all
 * decoded and the output pool warm).
 */
#ifndef LS_AVATAR_PAINTER_H
#define LS_AVATAR_PAINTER_H

#include "avatar/avatar.h"
#include "core/bufpool.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "image/codec.h"

typedef struct ls_paint_options {
    ls_frame_format format; /* image/codec.h */
    int jpeg_quality; /* 1..100; 0: 85 */
    int feather;      /* pixels blended at the rectangle's edge; 0: exact reference paste */
} ls_paint_options;

typedef struct ls_painter ls_painter;

/* The painter borrows av (which must outlive it); *out is NULL on failure. */
int ls_painter_create(ls_avatar *av, ls_painter **out, ls_error *err);
void ls_painter_destroy(ls_painter *p);

/* Bytes an output buffer needs for this avatar and format (size the ls_buffer_pool so). */
size_t ls_painter_output_size(const ls_avatar *av, ls_frame_format format);

int ls_painter_input(ls_painter *p, ls_pool *pool, int frame, float *slot, ls_error *err);

/* On success *out holds frame f painted with model_out, or f as it is when model_out is NULL
 * (a silent frame that skips inference), encoded: len bytes, width/height/channels set for
 * raw formats. The caller returns it with ls_buffer_put. */
int ls_painter_output(ls_painter *p, ls_pool *pool, int frame, const float *model_out,
                      const ls_paint_options *opt, ls_buffer_pool *buffers, ls_buffer **out,
                      ls_error *err);

#endif
