/* outputs.h - the container formats the HTTP API returns, built into an
 * ls_buf (core/buf.h): JPEG frames as a zip archive (stored, one file per frame), as an MJPEG
 * stream (concatenated JPEGs, what `ffmpeg -f mjpeg` reads) and as
 * multipart/mixed parts. Pure byte work: no pipeline, no sockets.
 */
#ifndef LS_SERVER_OUTPUTS_H
#define LS_SERVER_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* An ordered list of owned JPEG frames. */
typedef struct ls_jpeg_frame {
    int64_t index;        /* output frame index */
    int64_t avatar_frame;
    double timestamp;
    uint8_t *data;
    size_t size;
} ls_jpeg_frame;

typedef struct ls_jpeg_list {
    ls_jpeg_frame *frames;
    size_t n, cap;
} ls_jpeg_list;

int ls_jpeg_list_add(ls_jpeg_list *l, int64_t index, int64_t avatar_frame, double timestamp,
                     const uint8_t *data, size_t size);
void ls_jpeg_list_free(ls_jpeg_list *l);

/* frame_000000.jpg, ... (named by frame index) plus manifest.json. */
int ls_frames_to_zip(const ls_jpeg_list *l, const char *manifest_json, ls_buf *out,
                     ls_error *err);
int ls_frames_to_mjpeg(const ls_jpeg_list *l, ls_buf *out, ls_error *err);
/* multipart/mixed with the given boundary: a JSON part, then one image/jpeg
 * part per frame with X-Frame-Index and X-Frame-Timestamp headers. */
int ls_frames_to_multipart(const ls_jpeg_list *l, const char *json, const char *boundary,
                           ls_buf *out, ls_error *err);

/* Standard base64 of n bytes into a malloc'd NUL-terminated string. */
char *ls_base64(const uint8_t *bytes, size_t n);

#endif
