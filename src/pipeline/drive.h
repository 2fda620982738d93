/* drive.h - the one loop that drives a session into a sink: push the audio
 * in chunks, pull every frame that is ready after each, finish, pull the
 * rest. The CLI's render, the server's jobs and streams and the pipeline
 * bench all run it, so they cannot drift apart in how they chunk or when
 * they pull.
 *
 * Contract:
 * - frames reach sink->frame in order, each exactly once, on the calling
 *   thread (the session's driving thread, session.h); f->data is valid only
 *   during the call;
 * - sink->pulled, if set, runs after every pull pass (after each chunk, the
 *   flush and the finish), frames or not: where a caller hands frames on,
 *   reports progress or records timings;
 * - sink->proceed, if set, runs before each chunk: LS_OK goes on,
 *   LS_DRIVE_STOP ends the drive quietly (LS_OK returned, nothing more pushed
 *   and no finish), a negative status ends it with that status (err filled by
 *   proceed). This is how a hang-up or an interrupt stops the work between
 *   chunks;
 * - a failing push, flush, finish or sink->frame ends the drive with its
 *   status; frames already pulled stay delivered.
 * Chunking does not change the frames (session.h), only how soon they come
 * and how often proceed is asked.
 */
#ifndef LS_PIPELINE_DRIVE_H
#define LS_PIPELINE_DRIVE_H

#include <stddef.h>

#include "core/error.h"
#include "pipeline/session.h"

/* sink->proceed's answer that stops the drive without an error. */
#define LS_DRIVE_STOP 1

typedef struct ls_drive_sink {
    int (*frame)(void *ctx, const ls_frame *f, ls_error *err); /* required */
    void (*pulled)(void *ctx);
    int (*proceed)(void *ctx, ls_error *err);
    void *ctx;
} ls_drive_sink;

typedef struct ls_drive_options {
    size_t chunk; /* samples per push; 0: all at once */
    int flush;    /* flush after every chunk (live streams: partial batches) */
    int finish;   /* end of audio: finish the session and pull the rest */
} ls_drive_options;

/* Pushes n samples (16 kHz mono; x may be NULL when n is 0) as opt says,
 * handing every frame to sink; returns LS_OK or the first failure. */
int ls_session_drive(ls_session *s, const float *x, size_t n, const ls_drive_options *opt,
                     const ls_drive_sink *sink, ls_error *err);

/* One pull pass: every frame ready now to sink->frame, then sink->pulled.
 * For callers that flush or finish on their own schedule. */
int ls_session_drain(ls_session *s, const ls_drive_sink *sink, ls_error *err);

#endif
