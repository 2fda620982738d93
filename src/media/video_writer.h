/* video_writer.h - H.264 MP4 files with an AAC audio track (FFmpeg libraries).
 *
 * Frames arrive as BGR pixels in order at a constant frame rate; audio as
 * mono float samples at any rate (encoded AAC at that rate, 8..96 kHz). The
 * file is complete only after ls_video_writer_close; ls_video_writer_abort
 * frees everything and removes the partial file.
 *
 * The target may also be a URL FFmpeg's avio opens for writing, e.g. an
 * RTMP push (rtmp://HOST/APP/KEY with container "flv"): then abort removes
 * nothing, and io_timeout_ms bounds how long the connect and each write may
 * block (an interrupt callback with a deadline; a host name's DNS lookup is
 * the one step FFmpeg cannot interrupt). The writer's calls block: they
 * belong on a worker thread, never on an event loop.
 */
#ifndef LS_MEDIA_VIDEO_WRITER_H
#define LS_MEDIA_VIDEO_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ls_video_writer ls_video_writer;

typedef struct ls_video_writer_options {
    int width, height;      /* even sizes are best; odd ones are padded by 1 */
    int fps;                /* 0: LS_VIDEO_FPS */
    int crf;                /* x264 constant rate factor; 0: 20 */
    const char *preset;     /* x264 preset; NULL: "veryfast" */
    int threads;            /* encoder threads; 0: 1 (inference owns the cores) */
    int audio_rate;         /* Hz of the samples given; 0: no audio track */
    int audio_bitrate;      /* bits/s; 0: 96000 */
    const char *container;  /* FFmpeg muxer, e.g. "mp4", "flv"; NULL: from the path's
                               extension, else "mp4" */
    int live;               /* a live push: x264 tune=zerolatency, constrained baseline */
    int io_timeout_ms;      /* > 0: the longest one connect or write may block (LS_ERR_IO) */
} ls_video_writer_options;

int ls_video_writer_open(const char *path, const ls_video_writer_options *opt,
                         ls_video_writer **out, ls_error *err);

/* One frame of width x height BGR pixels, rows `stride` bytes apart. */
int ls_video_writer_add_frame(ls_video_writer *w, const uint8_t *bgr, int stride, ls_error *err);

/* Appends mono float samples to the audio track. */
int ls_video_writer_add_audio(ls_video_writer *w, const float *samples, size_t n, ls_error *err);

/* Flushes the encoders, writes the trailer and frees the writer. */
int ls_video_writer_close(ls_video_writer *w, ls_error *err);

/* Frees the writer without finishing the file, and deletes the file (a
 * local file only: a URL's stream is dropped, without waiting on it). */
void ls_video_writer_abort(ls_video_writer *w);

#endif
