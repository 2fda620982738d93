#include "avatar/painter.h"

#include <stdlib.h>

#include "image/face.h"

struct ls_painter {
    ls_avatar *av;
    ls_compositor *comp;
    ls_jpeg_encoder *enc;
    ls_image work; /* the composited frame before encoding */
};

int ls_painter_create(ls_avatar *av, ls_painter **out, ls_error *err)
{
    *out = NULL;
    if (!av) return ls_error_set(err, LS_ERR_INVALID_ARG, "painter: no avatar");
    ls_painter *p = calloc(1, sizeof *p);
    if (!p) return ls_error_set(err, LS_ERR_NOMEM, "painter");
    ls_avatar_info info;
    ls_avatar_get_info(av, &info);
    p->av = av;
    int rc = ls_compositor_create(&p->comp, err);
    if (rc == LS_OK) rc = ls_jpeg_encoder_create(&p->enc, err);
    if (rc == LS_OK) rc = ls_image_alloc(&p->work, info.width, info.height, 3, err);
    if (rc != LS_OK) {
        ls_painter_destroy(p);
        return rc;
    }
    *out = p;
    return LS_OK;
}

void ls_painter_destroy(ls_painter *p)
{
    if (!p) return;
    ls_compositor_destroy(p->comp);
    ls_jpeg_encoder_destroy(p->enc);
    ls_image_free(&p->work);
    free(p);
}

size_t ls_painter_output_size(const ls_avatar *av, ls_frame_format format)
{
    ls_avatar_info info;
    ls_avatar_get_info(av, &info);
    if (format == LS_FRAME_JPEG) return ls_jpeg_bound(info.width, info.height);
    return ls_raw_size(info.width, info.height, format);
}

static int check_frame(const ls_painter *p, int frame, ls_error *err)
{
    ls_avatar_info info;
    ls_avatar_get_info(p->av, &info);
    if (frame < 0 || frame >= info.n_frames)
        return ls_error_set(err, LS_ERR_RANGE, "avatar frame %d outside 0..%d", frame,
                            info.n_frames - 1);
    return LS_OK;
}

int ls_painter_input(ls_painter *p, ls_pool *pool, int frame, float *slot, ls_error *err)
{
    if (!p) return ls_error_set(err, LS_ERR_INVALID_ARG, "painter: none");
    int rc = check_frame(p, frame, err);
    if (rc != LS_OK) return rc;
    return ls_face_input(pool, ls_avatar_crop(p->av, frame), slot, err);
}

int ls_painter_output(ls_painter *p, ls_pool *pool, int frame, const float *model_out,
                      const ls_paint_options *opt, ls_buffer_pool *buffers, ls_buffer **out,
                      ls_error *err)
{
    *out = NULL;
    static const ls_paint_options defaults = {LS_FRAME_JPEG, 0, 0};
    if (!opt) opt = &defaults;
    if (!p || !buffers)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "painter: missing argument");
    if (opt->format != LS_FRAME_JPEG && opt->format != LS_FRAME_BGR && opt->format != LS_FRAME_RGBA)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "painter: unknown frame format %d",
                            (int)opt->format);
    int rc = check_frame(p, frame, err);
    if (rc != LS_OK) return rc;
    int quality = opt->jpeg_quality ? opt->jpeg_quality : LS_JPEG_DEFAULT_QUALITY;
    if (quality < 1 || quality > 100)
        return ls_error_set(err, LS_ERR_RANGE, "jpeg quality %d outside 1..100", quality);
    size_t need = ls_painter_output_size(p->av, opt->format);
    if (ls_buffer_pool_capacity(buffers) < need)
        return ls_error_set(err, LS_ERR_RANGE, "output buffers of %zu bytes, frame needs %zu",
                            ls_buffer_pool_capacity(buffers), need);
    ls_buffer *buf;
    if ((rc = ls_buffer_get(buffers, &buf, err)) != LS_OK) return rc;
    ls_image src;
    if ((rc = ls_avatar_acquire_frame(p->av, frame, &src, err)) != LS_OK) {
        ls_buffer_put(buf);
        return rc;
    }
    const ls_image *crop = ls_avatar_crop(p->av, frame);
    ls_rect rect = ls_avatar_rect(p->av, frame);
    if (!model_out) {
        if (opt->format == LS_FRAME_JPEG)
            rc = ls_jpeg_encode(p->enc, &src, quality, buf->data, buf->cap, &buf->len, err);
        else
            rc = ls_raw_write(&src, opt->format, buf->data, buf->cap, &buf->len, err);
    } else if (opt->format == LS_FRAME_JPEG) {
        rc = ls_composite_jpeg(p->comp, p->enc, pool, &src, crop, rect, model_out, opt->feather,
                               quality, buf->data, buf->cap, &buf->len, err);
    } else {
        /* Raw BGR is the composite itself: paint straight into the output buffer. */
        ls_image dst = opt->format == LS_FRAME_BGR
                           ? ls_image_view(buf->data, src.width, src.height, 3)
                           : p->work;
        rc = ls_composite(p->comp, pool, &src, crop, rect, model_out, opt->feather, &dst, err);
        if (rc == LS_OK && opt->format == LS_FRAME_BGR) buf->len = need;
        else if (rc == LS_OK)
            rc = ls_raw_write(&dst, LS_FRAME_RGBA, buf->data, buf->cap, &buf->len, err);
    }
    ls_avatar_release_frame(p->av, frame);
    if (rc != LS_OK) {
        ls_error_prefix(err, "frame %d", frame);
        ls_buffer_put(buf);
        return rc;
    }
    buf->width = src.width;
    buf->height = src.height;
    buf->channels = opt->format == LS_FRAME_JPEG ? 0 : (opt->format == LS_FRAME_BGR ? 3 : 4);
    *out = buf;
    return LS_OK;
}
