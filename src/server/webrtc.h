/* webrtc.h - WebRTC sessions: a browser (or any WebRTC peer) talks to the
 * avatar over one peer connection, through GStreamer's webrtcbin (ICE,
 * DTLS, SRTP and RTP are GStreamer's; nothing of them is written here).
 *
 * Signalling follows WHIP/WHEP: POST /v1/webrtc?model=ID with the offer
 * (Content-Type application/sdp, non-trickle: the candidates in it) is
 * answered 201 Created with the SDP answer (candidates gathered) and
 * Location /v1/webrtc/ID; DELETE on that location ends the session. The
 * routes are http.h's; this module owns the offer's checks, the pipeline
 * and the session's life.
 *
 * Media: the offer's audio (Opus, from the browser's microphone) is decoded
 * to 16 kHz mono and is the session's audio input; the answer sends H.264
 * (constrained baseline, zero-latency x264) at 25 fps of the painted frames
 * and Opus of that same input audio, each frame's 40 ms of audio sent with
 * the frame and both timestamped from the session clock (frame k at k/25 s),
 * so the browser plays them in sync from their RTP timestamps however late
 * the frames are made. While no audio comes (no microphone, a muted one, a
 * stalled network) the clock goes on with silence: the avatar's own frames,
 * as live streams' silence shortcut makes them (session.h), never a frozen
 * picture.
 *
 * Life: a session ends on DELETE, on the peer connection's failure or close
 * (ICE failure: a client that vanished), when it is not connected within
 * LS_WEBRTC_CONNECT_TIMEOUT_S, on a pipeline error, and at the server's
 * drain. It counts against max_sessions like a stream from its admission
 * (the loop's, http.c) to its end.
 *
 * Threads: each session runs one thread of its own that drives its lip-sync
 * session (the model's compute runs on the shared pool) and feeds the
 * pipeline; GStreamer runs its own threads. The set is under a lock;
 * ls_webrtc_offer and ls_webrtc_end block (negotiation, teardown) and run on
 * workers, ls_webrtc_scan runs on the loop and never blocks on a session
 * still running.
 */
#ifndef LS_SERVER_WEBRTC_H
#define LS_SERVER_WEBRTC_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

struct ls_env;

/* Session ids: 32 hex digits from /dev/urandom, so that a Location cannot
 * be guessed by another client. */
#define LS_WEBRTC_ID_LEN 32
/* The largest offer read: browsers' offers are 2-8 KiB. */
#define LS_WEBRTC_OFFER_MAX (64 * 1024)
/* Answer to connected, at most. */
#define LS_WEBRTC_CONNECT_TIMEOUT_S 20.0
/* Candidate gathering before the answer (non-trickle), at most. */
#define LS_WEBRTC_GATHER_TIMEOUT_S 5.0

/* What an offer asks for, read from its SDP (ls_webrtc_read_offer). */
typedef struct ls_webrtc_offer_info {
    int video_pt;      /* the offer's H.264 payload type we send with */
    int audio_pt;      /* its Opus payload type; -1: no audio m-line */
    int audio_send;    /* the peer sends audio (a microphone) */
    int audio_recv;    /* the peer takes audio */
} ls_webrtc_offer_info;

/* Checks an SDP offer from a client: parses it (GStreamer's SDP parser), and
 * wants a video m-line the peer receives on (recvonly or sendrecv) with H.264
 * packetization-mode 1 and a constrained-baseline-compatible profile, and
 * reads the Opus audio m-line if any. LS_OK, or LS_ERR_INVALID_ARG with why.
 * Pure and lock-free: the fuzz target calls it. */
int ls_webrtc_read_offer(const char *sdp, size_t len, ls_webrtc_offer_info *out, ls_error *err);

typedef struct ls_webrtc ls_webrtc;

/* GStreamer is initialised at the first offer, not here: a server that
 * never sees one never starts it. */
int ls_webrtc_create(struct ls_env *env, ls_webrtc **out, ls_error *err);
/* Ends every session (as at a drain's deadline), then frees the set. */
void ls_webrtc_destroy(ls_webrtc *set);

/* [work] Answers the offer for model_id: a new session whose SDP answer goes
 * to answer and whose id to id (LS_WEBRTC_ID_LEN + 1 bytes). The caller was
 * admitted and counted in env->active_streams: the session gives that back
 * when it ends, or this call does when it fails. Errors: LS_ERR_INVALID_ARG
 * (the offer), LS_ERR_NOT_FOUND (the model), LS_ERR_IO (GStreamer: a missing
 * plugin, negotiation, gathering past its timeout). */
int ls_webrtc_offer(ls_webrtc *set, const char *model_id, const char *sdp, size_t len,
                    char *id, ls_buf *answer, ls_error *err);

/* [work] Ends session id and frees it (blocks for the teardown); its frames
 * made go into *frames (may be NULL). LS_ERR_NOT_FOUND if no such session. */
int ls_webrtc_end(ls_webrtc *set, const char *id, long long *frames, ls_error *err);

/* [loop] Frees the sessions that ended on their own (failure, timeout):
 * every second, from the server's idle scan. */
void ls_webrtc_scan(ls_webrtc *set);

/* [any] Asks every session to end (a drain's deadline); they are freed by
 * the next scan. */
void ls_webrtc_stop_all(ls_webrtc *set);

/* Sessions open now. */
int ls_webrtc_count(ls_webrtc *set);

#endif
