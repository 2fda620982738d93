/* stream.h - the WebSocket stream protocol, GET /v1/stream?model=ID, whole:
 * the upgrade's checks, the client's messages, the session driven on a
 * worker, frames and events back, live pacing, idle and drain closes.
 *
 * Client -> server:
 *   text {"type":"start","format":"s16le"|"f32le","rate":R,"channels":C,
 *         "start_frame":N,"batch":B,"live":false,
 *         "skip_silence":<live>,
 *         "output":"rtmp://HOST/APP/KEY"}                once, before audio
 *   binary audio in that format, any chunk size (samples may be split)
 *   text {"type":"flush"}      run the frames that are ready now
 *   text {"type":"interrupt"}  drop queued and in-flight frames
 *   text {"type":"end"}        end of audio: remaining frames, then "done"
 * Server -> client:
 *   binary frame: "LSF1", u32 flags (bit 0: the avatar's own frame, sent
 *          without inference as its audio is silent), i64 frame index, f64
 *          timestamp (index/25 s), then the JPEG (all little-endian)
 *   text {"type":"ready"|"speech_start"|"speech_end"|"stats"|"interrupted"
 *         |"done"|"error", ...}
 * Live mode ("live":true) flushes after every chunk and paces frames at 25
 * fps against the session clock. Speech events come from the RMS of each
 * 40 ms of 16 kHz audio against silence_rms (pipeline/silence.h); with
 * skip_silence (the default in live mode) a frame whose whole audio window
 * is below it skips inference (session.h). With "output" (optional;
 * rtmp:// or rtmps://, at most LS_PUSH_URL_MAX printable ASCII bytes, no
 * spaces) the session's frames and its input audio are also pushed as FLV
 * (H.264 + AAC) to that media server (push.h), from the work side: "ready"
 * comes once it is connected, "done" once its trailer is sent, and a push
 * that fails is the stream's error event ("output: ..."), then the close.
 * docs/server.md has the rest.
 *
 * Threads: the loop owns the socket side of a stream and hands its input
 * (audio bytes, start / flush / end) to one work item at a time (conn.h),
 * which drives the session; frames and events go back through an outbox
 * under the stream's lock, the only state both sides touch, and leave as
 * they are made (ls_conn_wake), not when the work ends. An interrupt bumps
 * an epoch under that lock: frames of an older epoch are dropped.
 */
#ifndef LS_SERVER_STREAM_H
#define LS_SERVER_STREAM_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "audio/pcm.h"
#include "server/conn.h"
#include "server/env.h"
#include "server/push.h"

/* Binary frame message header (little-endian), then the JPEG bytes. */
#define LS_FRAME_MAGIC "LSF1"
#define LS_FRAME_HEADER_BYTES 24 /* magic[4] flags u32 index i64 timestamp f64 */
#define LS_FRAME_FLAG_SILENT 1u  /* the avatar's own frame, sent without inference */

/* The open streams of a server, for the idle and drain scans. [loop] */
typedef struct ls_streams ls_streams;

int ls_streams_create(ls_env *env, ls_streams **out, ls_error *err);
void ls_streams_destroy(ls_streams *set);

/* lws's callbacks for streams; each returns what the callback returns. */
/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE for "websocket": 0 accepts, else the
 * JSON refusal was sent (401, 404, 503 at the session limit, ...). */
int ls_stream_confirm_upgrade(ls_streams *set, struct lws *wsi);
/* LWS_CALLBACK_ESTABLISHED: the stream object goes on sock. */
int ls_stream_open(ls_streams *set, struct lws *wsi, ls_socket *sock);
int ls_stream_receive(struct lws *wsi, ls_socket *sock, const void *in, size_t len);
/* SERVER_WRITEABLE and TIMER (live pacing). */
int ls_stream_writable(struct lws *wsi, ls_socket *sock);
/* LWS_CALLBACK_CLOSED. Nothing if sock holds no stream. */
void ls_stream_closed(ls_socket *sock);

/* Every second: streams silent longer than idle_timeout_s get an error
 * event and are closed. */
void ls_streams_idle_scan(ls_streams *set);
/* A drain's deadline: every open stream drops what is not yet sent, gets
 * an error event naming the deadline and closes with 1001 (going away). */
void ls_streams_go_away(ls_streams *set);

/* A stream's text (control) messages, apart from lws so that the fuzz
 * target (tests/fuzz) can feed them from memory. */
typedef struct stream_start {
    ls_pcm_format format;
    int rate, channels;
    int64_t start_frame;
    int batch;
    int live;
    int skip_silence; /* silent frames are the avatar's own, without inference */
    char output[LS_PUSH_URL_MAX + 1]; /* "": none; else a URL ls_push_url_ok took */
} stream_start;

typedef enum ctl_type {
    CTL_BAD,       /* not a control message: why says what is wrong */
    CTL_BAD_START, /* a start whose settings are wrong: why says which */
    CTL_START,     /* settings in *st */
    CTL_FLUSH,
    CTL_END,
    CTL_INTERRUPT
} ctl_type;

ctl_type stream_parse_control(const char *text, size_t len, stream_start *st, char *why,
                              size_t cap);
const char *stream_control_name(ctl_type t);

#endif
