/* model.h - a model directory, loaded: encoder + UNet engines and the avatar.
 *
 * A model directory holds model.json, the UNet and audio-encoder ONNX files
 * and the avatar (see avatar/). ls_model_load validates and loads it once;
 * sessions (session.h) share it read-only. Models are reference counted so
 * a registry can unload one while sessions still run on it: the memory goes
 * when the last reference is released.
 *
 * model.json:
 *   { "name": "may", "unet": "unet.onnx", "encoder": "audio_encoder.onnx",
 *     "avatar": "avatar", "fps": 25, "batch": 8,
 *     "unet_inputs": {"visual": "input", "audio": "audio"},   (optional names)
 *     "encoder_input": "mel" }                                 (optional)
 */
#ifndef LS_PIPELINE_MODEL_H
#define LS_PIPELINE_MODEL_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"
#include "core/threadpool.h"

typedef struct ls_model ls_model;

typedef struct ls_model_options {
    int batch;                   /* default batch size; 0: model.json's, else 8 */
    int precision;               /* an ls_precision of nn/engine.h; 0: fp32; int8 reads
                                    the directory's int8.json (calibration.h) */
    size_t avatar_memory_budget; /* bytes of decoded frames kept; 0: all */
    int engine_threads;          /* threads each UNet/encoder run uses; 0: the
                                    load pool's size. oneDNN fixes a kernel's
                                    work split (and so its rounding) for the
                                    thread count it is compiled for: frames are
                                    byte-identical for one engine_threads value,
                                    whatever the pool size of a session. */
} ls_model_options;

typedef struct ls_model_info {
    const char *name;            /* from model.json, else the directory name */
    const char *dir;
    int fps;                     /* always LS_VIDEO_FPS for this model family */
    int width, height;           /* avatar frame size */
    int n_frames;                /* avatar frames */
    int batch;                   /* default batch size */
    int engine_threads;
    size_t memory_bytes;         /* weights + avatar, resident */
} ls_model_info;

/* Loads a model directory; pool (shared, may be NULL) runs the image work. */
int ls_model_load(const char *dir, const ls_model_options *opt, ls_pool *pool, ls_model **out,
                  ls_error *err);

/* Validates a model directory without keeping it, printing what it found to
 * report (may be NULL). */
int ls_model_check(const char *dir, FILE *report, ls_error *err);

ls_model *ls_model_retain(ls_model *m);
void ls_model_release(ls_model *m);

void ls_model_get_info(const ls_model *m, ls_model_info *info);

#endif
