/* session.h - one lip-sync stream: audio in, frames out, in order.
 *
 * A session binds a loaded model to a state: the global frame index, the
 * audio context (streaming mel, encoder features) and the avatar position.
 * Audio arrives in chunks of any size (16 kHz mono float; see audio/ for
 * decoding and resampling); each output frame is produced as soon as the
 * audio it depends on has arrived and a batch is full, or at once for what
 * is ready on ls_session_flush, and everything at ls_session_finish. Frames
 * do not depend on how the audio was chunked, on flushes, on the batch size
 * or on the session pool's thread count: the same audio and start frame on
 * the same model give the same bytes (tests/pipeline/test_session.c). The
 * model's engine_threads is the one setting that changes low-order bits.
 *
 * Output frame i (i = 0 .. N+1 for N mel windows) is avatar frame
 * ls_avatar_pingpong(n, start_frame, i) - start+1, ..., last, last-1, ...,
 * start, start+1, ... as the reference inference - with the mouth painted from encoder features
 * F[i-8 .. i+7], F = [E0, E0, E1, .., E(N-1), E(N-1)], zeros outside F.
 *
 * Silence (opt-in, for live streams): with silence_rms > 0, a frame whose
 * whole audio window - every sample the mel rows of its features saw, from
 * 400 before the first row of window first_window(i) to 400 after the last
 * row of last_window(i) (features.h, windows.h) - has an RMS below
 * silence_rms is the avatar's own frame, sent without running the UNet
 * (ls_frame.silent). The decision depends on the audio only, so frames stay
 * independent of chunking, flushes and batch size; the other frames are the
 * bytes they would be without the option.
 *
 * Threading: a session is driven by one thread at a time (push, flush,
 * finish, pull); compute runs on that thread and the shared pool.
 * ls_session_interrupt may be called from any thread. Many sessions may run
 * on one model and one pool at once.
 */
#ifndef LS_PIPELINE_SESSION_H
#define LS_PIPELINE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "image/codec.h"
#include "pipeline/model.h"

typedef struct ls_session ls_session;

typedef struct ls_session_options {
    int64_t start_frame;    /* avatar position of output frame 0 (>= 0) */
    int batch;              /* 0: the model's default */
    ls_frame_format format; /* image/codec.h; JPEG at quality jpeg_quality */
    int jpeg_quality;       /* 1..100; 0: 85 */
    float silence_rms;      /* > 0: quieter frames skip inference (see above); 0: off */
    /* frame_count > 0: only output frames first_frame .. first_frame +
     * frame_count - 1 are made (the batch API's window on a clip). The mel
     * rows, encoder windows and UNet runs are only those these frames'
     * features need, the frames are the bytes the whole session gives them,
     * and once they are out the rest of the audio is dropped unread. */
    int64_t first_frame, frame_count;
    /* unet_tap (may be NULL) sees every UNet batch's inputs before it runs:
     * `items` items of the visual [B,6,320,320] and audio [B,32,16,16] inputs
     * (int8 calibration, quantize.h, collects them). */
    void (*unet_tap)(void *ctx, const float *visual, const float *audio, int items);
    void *unet_tap_ctx;
} ls_session_options;

typedef struct ls_frame {
    int64_t index;          /* output frame index within the session, from 0 */
    double timestamp;       /* index / LS_VIDEO_FPS seconds */
    int64_t avatar_frame;   /* avatar image used */
    int silent;             /* 1: the avatar frame as it is, no inference (silence_rms) */
    ls_frame_format format;
    int width, height;
    const uint8_t *data;    /* valid until the next pull, interrupt or destroy */
    size_t size;
} ls_frame;

/* Seconds spent per stage since creation, and frames produced. */
typedef struct ls_stage_times {
    double mel, encoder, input, unet, composite, encode;
    int64_t frames, batches; /* frames out, UNet batches run */
    int64_t encoder_batches; /* audio-encoder batches run */
    int64_t silent_frames;   /* frames sent without inference (counted in frames too) */
} ls_stage_times;

int ls_session_create(ls_model *model, ls_pool *pool, const ls_session_options *opt,
                      ls_session **out, ls_error *err);
void ls_session_destroy(ls_session *s);

/* Appends n samples (16 kHz mono float) and runs every full batch ready. */
int ls_session_push_audio(ls_session *s, const float *samples, size_t n, ls_error *err);
/* Runs the frames that are ready now as a partial batch (live streams). */
int ls_session_flush(ls_session *s, ls_error *err);
/* End of audio: produces every remaining frame. Later pushes are errors. */
int ls_session_finish(ls_session *s, ls_error *err);

/* Takes the next frame in order: 1 if *frame was filled, 0 if none yet. */
int ls_session_pull_frame(ls_session *s, ls_frame *frame);
/* Frames produced and not yet pulled. */
int ls_session_pending_frames(const ls_session *s);

/* Drops queued frames and audio not yet turned into frames; the session
 * continues from the next frame index with fresh audio context. */
void ls_session_interrupt(ls_session *s);

void ls_session_get_times(const ls_session *s, ls_stage_times *times);

#endif
