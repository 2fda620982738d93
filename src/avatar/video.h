/* video.h - decoding a video file into BGR frames with FFmpeg's libavformat/libavcodec.
 *
 * Frames come in presentation order to a callback, converted to packed BGR by libswscale;
 * the callback may stop decoding by returning an error, which ls_video_decode returns.
 * Files that are not video, or streams that fail to decode, give LS_ERR_FORMAT with
 * FFmpeg's reason.
 */
#ifndef LS_AVATAR_VIDEO_H
#define LS_AVATAR_VIDEO_H

#include "core/error.h"
#include "image/image.h"

typedef int (*ls_video_frame_fn)(void *ctx, int index, const ls_image *bgr, ls_error *err);

/* Calls fn for every frame of the best video stream of path; *fps gets the stream's
 * average frame rate (0 if unknown), *n_frames the frames delivered. */
int ls_video_decode(const char *path, ls_video_frame_fn fn, void *ctx, double *fps,
                    int *n_frames, ls_error *err);

#endif
