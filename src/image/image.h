/* image.h - interleaved 8-bit pixel buffers and the views the image code passes around.
 *
 * An ls_image is a view: width x height pixels of `channels` bytes each, rows `stride` bytes
 * apart, over memory someone else owns (an avatar, a pool buffer, a caller's array). Views of
 * a sub-rectangle share the parent's memory. Colour order is BGR everywhere (as OpenCV and
 * the models use); RGBA appears only as an output format. ls_image_alloc is the one owning
 * constructor, for buffers created once (at load or warm-up), released with ls_image_free.
 */
#ifndef LS_IMAGE_IMAGE_H
#define LS_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ls_image {
    int width, height, channels;
    size_t stride; /* bytes from one row to the next */
    uint8_t *data;
} ls_image;

/* A rectangle [x1, x2) x [y1, y2), as the crop rectangles are written. */
typedef struct ls_rect {
    int x1, y1, x2, y2;
} ls_rect;

/* Largest side the image code accepts: guards size arithmetic against hostile headers. */
#define LS_IMAGE_MAX_SIDE 16384

static inline ls_image ls_image_view(uint8_t *data, int width, int height, int channels)
{
    ls_image im = {width, height, channels, (size_t)width * (size_t)channels, data};
    return im;
}

static inline uint8_t *ls_image_row(const ls_image *im, int y)
{
    return im->data + (size_t)y * im->stride;
}

/* View of the rectangle r inside im (r must lie inside im). */
ls_image ls_image_sub(const ls_image *im, ls_rect r);

/* Allocates a tightly packed width x height x channels image (stride = width * channels). */
int ls_image_alloc(ls_image *im, int width, int height, int channels, ls_error *err);
void ls_image_free(ls_image *im);

/* Copies src into dst row by row; sizes and channels must match. */
void ls_image_copy(const ls_image *src, ls_image *dst);

/* 1 when r has positive area and lies inside a width x height frame. */
int ls_rect_valid(ls_rect r, int width, int height);

#endif
