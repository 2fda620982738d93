#include "image/image.h"

#include <stdlib.h>
#include <string.h>

ls_image ls_image_sub(const ls_image *im, ls_rect r)
{
    ls_image v = *im;
    v.width = r.x2 - r.x1;
    v.height = r.y2 - r.y1;
    v.data = im->data + (size_t)r.y1 * im->stride + (size_t)r.x1 * (size_t)im->channels;
    return v;
}

int ls_image_alloc(ls_image *im, int width, int height, int channels, ls_error *err)
{
    memset(im, 0, sizeof *im);
    if (width < 1 || height < 1 || width > LS_IMAGE_MAX_SIDE || height > LS_IMAGE_MAX_SIDE ||
        channels < 1 || channels > 4)
        return ls_error_set(err, LS_ERR_RANGE, "image size %dx%dx%d outside 1..%d x 1..4",
                            width, height, channels, LS_IMAGE_MAX_SIDE);
    size_t bytes = (size_t)width * (size_t)height * (size_t)channels;
    uint8_t *data = malloc(bytes);
    if (!data)
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a %dx%d image", width, height);
    *im = ls_image_view(data, width, height, channels);
    return LS_OK;
}

void ls_image_free(ls_image *im)
{
    if (!im) return;
    free(im->data);
    memset(im, 0, sizeof *im);
}

void ls_image_copy(const ls_image *src, ls_image *dst)
{
    size_t row = (size_t)src->width * (size_t)src->channels;
    if (src->stride == row && dst->stride == row) {
        memcpy(dst->data, src->data, row * (size_t)src->height);
        return;
    }
    for (int y = 0; y < src->height; y++) memcpy(ls_image_row(dst, y), ls_image_row(src, y), row);
}

int ls_rect_valid(ls_rect r, int width, int height)
{
    return r.x1 >= 0 && r.y1 >= 0 && r.x2 > r.x1 && r.y2 > r.y1 && r.x2 <= width &&
           r.y2 <= height;
}
