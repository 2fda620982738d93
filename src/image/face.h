/* face.h - the model's view of a frame: the 328x328 face crop, the 6x320x320 input tensor
 * slot, and compositing a 3x320x320 output back onto the frame, as SyncTalk_2D's reference
 * inference does it (BGR throughout, never RGB).
 *
 * Input:  crop328 = cubic resize of frame[y1:y2, x1:x2] to 328x328 (ls_face_crop);
 *         roi = crop328[4:324, 4:324]; masked = roi with rows 5..309, columns 5..314 zeroed;
 *         slot = float CHW / 255 of [roi (channels 0-2), masked (channels 3-5)].
 * Output: uint8 = (int)(clamp(v, 0, 1) * 255) pasted into a copy of crop328 at [4:324],
 *         cubic resized to the rectangle and pasted into a copy of the frame; with feather N,
 *         the rectangle's outer N pixels blend linearly into the original frame.
 *
 * ls_compositor is one caller's scratch (a work crop, a resizer, a feather patch); the
 * functions run row bands on the pool, produce the same bytes for any thread count and,
 * after the first frame of a size, allocate nothing.
 */
#ifndef LS_IMAGE_FACE_H
#define LS_IMAGE_FACE_H

#include "core/error.h"
#include "core/threadpool.h"
#include "image/codec.h"
#include "image/image.h"
#include "image/resize.h"

#define LS_CROP_SIDE 328  /* the face crop the model works on */
#define LS_FACE_SIDE 320  /* the model's input and output side */
#define LS_FACE_BORDER 4  /* offset of the 320 window inside the 328 crop */
#define LS_INPUT_CHANNELS 6
#define LS_OUTPUT_CHANNELS 3
#define LS_INPUT_FLOATS ((size_t)LS_INPUT_CHANNELS * LS_FACE_SIDE * LS_FACE_SIDE)
#define LS_OUTPUT_FLOATS ((size_t)LS_OUTPUT_CHANNELS * LS_FACE_SIDE * LS_FACE_SIDE)

/* crop328 (a 328x328x3 view) = cubic resize of rect of frame. */
int ls_face_crop(ls_resizer *rz, ls_pool *pool, const ls_image *frame, ls_rect rect,
                 ls_image *crop328, ls_error *err);

/* Writes the 6x320x320 float input of crop328 into slot. */
int ls_face_input(ls_pool *pool, const ls_image *crop328, float *slot, ls_error *err);

typedef struct ls_compositor ls_compositor;

/* *out is NULL on failure. */
int ls_compositor_create(ls_compositor **out, ls_error *err);
void ls_compositor_destroy(ls_compositor *c);

/* dst (same size as frame, not overlapping it) = frame with the model output composited
 * into rect. crop328 is the frame's face crop; out is 3x320x320 floats. feather >= 0. */
int ls_composite(ls_compositor *c, ls_pool *pool, const ls_image *frame,
                 const ls_image *crop328, ls_rect rect, const float *out, int feather,
                 ls_image *dst, ls_error *err);

/* The rectangle alone: area (rect's size) holds the original pixels of the rectangle on
 * entry (read only when feathering) and the composited ones on return. For callers that
 * avoid copying the rest of the frame (the JPEG path encodes untouched rows in place). */
int ls_composite_area(ls_compositor *c, ls_pool *pool, const ls_image *crop328,
                      const float *out, int feather, ls_image *area, ls_error *err);

/* Composite and JPEG-encode in one pass: only the rows the rectangle spans are copied (into
 * the compositor's scratch); the encoder reads every other row from frame. The bytes equal
 * ls_jpeg_encode of ls_composite's result. */
int ls_composite_jpeg(ls_compositor *c, ls_jpeg_encoder *enc, ls_pool *pool,
                      const ls_image *frame, const ls_image *crop328, ls_rect rect,
                      const float *out, int feather, int quality, uint8_t *jpeg, size_t cap,
                      size_t *len, ls_error *err);

#endif
