/* push.h - a stream session's frames and audio pushed to a media server:
 * start's "output":"rtmp://HOST/APP/KEY" (stream.h) sends FLV with H.264
 * (live x264 settings) and AAC through media/video_writer.h.
 *
 * A/V sync by construction: output frame k of a session covers its input
 * audio [k*640, (k+1)*640) at 16 kHz (session.h), so with every frame the
 * push writes exactly that 40 ms of the input it was given (silence where
 * the input has none, the frames after the end of audio). An interrupt
 * drops frames and the audio they would have carried together
 * (ls_push_restart): the pushed video and audio stay the same length. The
 * audio goes out at 44.1 kHz, the rate FLV's audio tags declare for AAC.
 *
 * Every call may block on the network (bounded by LS_PUSH_IO_TIMEOUT_MS per
 * step): the push belongs to the stream's work side, never the loop. One
 * thread at a time.
 */
#ifndef LS_SERVER_PUSH_H
#define LS_SERVER_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "pipeline/session.h"

#define LS_PUSH_URL_MAX 1024      /* bytes of an output URL */
#define LS_PUSH_IO_TIMEOUT_MS 5000 /* the longest a connect or a write may wait */

typedef struct ls_push ls_push;

/* Whether url is an output the push takes: rtmp:// or rtmps://, a host,
 * at most LS_PUSH_URL_MAX bytes of printable ASCII without spaces (FFmpeg
 * would read what follows a space as options). why gets the reason. */
int ls_push_url_ok(const char *url, size_t len, char *why, size_t cap);

/* Connects and sends the stream's header; frames are width x height. The
 * error names the server by host only (the key stays out of logs). */
int ls_push_open(const char *url, int width, int height, ls_push **out, ls_error *err);

/* The session's input audio, 16 kHz mono, in order, before its frames. */
int ls_push_audio(ls_push *p, const float *x, size_t n, ls_error *err);

/* The session's next output frame (JPEG or BGR), with its 40 ms of audio. */
int ls_push_frame(ls_push *p, const ls_frame *f, ls_error *err);

/* An interrupt: the audio given and not yet sent with a frame is dropped;
 * the next audio given belongs to the next frame. */
void ls_push_restart(ls_push *p);

/* Frames sent so far. */
int64_t ls_push_frames(const ls_push *p);

/* End of stream: the encoders' tails and the trailer, then frees p. */
int ls_push_close(ls_push *p, ls_error *err);

/* Frees p at once, without waiting on the server. */
void ls_push_abort(ls_push *p);

#endif
