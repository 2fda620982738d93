/* prepare.h - turning what people have into an avatar directory (`lipsync avatar prepare`).
 *
 * Sources: a directory in any layout of layout.h, or a video file plus a folder of
 * landmarks (<i>.lms for video frame i, decoded with FFmpeg). The source is validated in
 * full (every image decoded, one frame size, every rectangle with area and inside the frame,
 * matching counts) and written as a prepared avatar:
 *   OUT/frames/frame_%04d.{jpg,png}  (image files copied as they are; video frames encoded)
 *   OUT/crop_rects.json              [[x1, y1, x2, y2], ...]
 *   OUT/avatar.json                  {"name", "fps", "width", "height", "frames", "source"}
 * OUT must not exist yet or be empty. The result is loaded back once as a final check.
 * It is written into a sibling directory (OUT.partial-PID-K) and renamed to OUT when
 * complete: on failure nothing is left behind (an empty OUT that was there stays).
 */
#ifndef LS_AVATAR_PREPARE_H
#define LS_AVATAR_PREPARE_H

#include <stdio.h>

#include "core/error.h"
#include "core/threadpool.h"

typedef struct ls_prepare_options {
    const char *landmarks_dir; /* required for a video source, unused otherwise */
    const char *name;          /* NULL: the source's name */
    double fps;                /* 0: the video's rate, else the source's (25 by default) */
    int png;                   /* video frames as PNG (lossless) instead of JPEG */
    int jpeg_quality;          /* for video frames; 0: 95 */
    FILE *report;              /* progress and summary lines, or NULL */
} ls_prepare_options;

int ls_avatar_prepare(const char *src, const char *out_dir, const ls_prepare_options *opt,
                      ls_pool *pool, ls_error *err);

#endif
