/* codec.h - JPEG encoding into pooled buffers, JPEG/PNG decoding, raw pixel output.
 *
 * ls_jpeg_encoder is one caller's libjpeg-turbo compressor (baseline, 4:2:0, quality 1..100)
 * writing into a buffer the caller supplies, typically an ls_buffer of ls_jpeg_bound bytes.
 * It uses libjpeg-turbo's libjpeg API rather than tjCompress2 because it can give the codec
 * a memory manager that recycles its scratch: after the first frame of a size, encoding
 * allocates nothing (TurboJPEG mallocs and frees its working memory on every image).
 *
 * ls_image_decoder decodes JPEG (TurboJPEG API) and PNG (libspng) into BGR, checking the
 * headers first so that hostile or truncated files fail with LS_ERR_FORMAT, never crash.
 * Both objects belong to one thread at a time.
 */
#ifndef LS_IMAGE_CODEC_H
#define LS_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "image/image.h"

#define LS_JPEG_DEFAULT_QUALITY 85

/* The bytes an output frame is delivered as: the one format enum of the painter, the session,
 * the server and the CLI. */
typedef enum ls_frame_format {
    LS_FRAME_JPEG = 0, /* JPEG bytes (4:2:0, a quality 1..100) */
    LS_FRAME_BGR,      /* width*height*3 bytes, BGR */
    LS_FRAME_RGBA      /* width*height*4 bytes, RGBA (alpha 255) */
} ls_frame_format;

typedef struct ls_jpeg_encoder ls_jpeg_encoder;

/* *out is NULL on failure. */
int ls_jpeg_encoder_create(ls_jpeg_encoder **out, ls_error *err);
void ls_jpeg_encoder_destroy(ls_jpeg_encoder *enc);

/* Worst-case size of the JPEG of a width x height image (4:2:0). */
size_t ls_jpeg_bound(int width, int height);

/* Encodes a BGR (3 channels) or BGRX (4) image into out[0..cap); *len gets the size.
 * LS_ERR_RANGE when cap is too small for this image. */
int ls_jpeg_encode(ls_jpeg_encoder *enc, const ls_image *img, int quality, uint8_t *out,
                   size_t cap, size_t *len, ls_error *err);

/* Same from rows given one at a time: row(ctx, y) returns row y (width * channels bytes),
 * so a frame that is mostly another image's rows need not be copied first. */
typedef const uint8_t *(*ls_row_fn)(const void *ctx, int y);
int ls_jpeg_encode_rows(ls_jpeg_encoder *enc, ls_row_fn row, const void *ctx, int width,
                        int height, int channels, int quality, uint8_t *out, size_t cap,
                        size_t *len, ls_error *err);

typedef enum ls_image_format {
    LS_IMAGE_UNKNOWN = 0,
    LS_IMAGE_JPEG,
    LS_IMAGE_PNG
} ls_image_format;

/* Format from the first bytes (magic numbers), LS_IMAGE_UNKNOWN if neither. */
ls_image_format ls_image_sniff(const uint8_t *bytes, size_t len);

typedef struct ls_image_decoder ls_image_decoder;

/* *out is NULL on failure. */
int ls_image_decoder_create(ls_image_decoder **out, ls_error *err);
void ls_image_decoder_destroy(ls_image_decoder *dec);

/* Reads the size from the header; fails on anything but a readable JPEG or PNG. */
int ls_image_decode_size(ls_image_decoder *dec, const uint8_t *bytes, size_t len, int *width,
                         int *height, ls_error *err);

/* Decodes into dst, a 3-channel view whose size must equal the image's. */
int ls_image_decode_into(ls_image_decoder *dec, const uint8_t *bytes, size_t len,
                         ls_image *dst, ls_error *err);

/* Decodes into a newly allocated BGR image (release with ls_image_free). */
int ls_image_decode(ls_image_decoder *dec, const uint8_t *bytes, size_t len, ls_image *out,
                    ls_error *err);

/* Encodes a 3-channel BGR image as an 8-bit RGB PNG into a malloc'd buffer (for tools,
 * not hot paths). */
int ls_png_encode(const ls_image *img, uint8_t **out, size_t *len, ls_error *err);

/* Writes img as 3-channel BGR (LS_FRAME_BGR) or 4-channel RGBA (LS_FRAME_RGBA, alpha 255),
 * tightly packed, into out; LS_FRAME_JPEG is not raw (LS_ERR_INVALID_ARG). ls_raw_size is the
 * byte count of either raw format. */
size_t ls_raw_size(int width, int height, ls_frame_format fmt);
int ls_raw_write(const ls_image *img, ls_frame_format fmt, uint8_t *out, size_t cap, size_t *len,
                 ls_error *err);

#endif
