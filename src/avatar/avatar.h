/* avatar.h - a loaded avatar: its frames, crop rectangles and 328x328 face crops.
 *
 * ls_avatar_load reads any layout of layout.h, decodes every frame once (libjpeg-turbo,
 * libspng; frames in parallel on the pool), checks that all frames have one size and that
 * every rectangle has area and lies inside the frame, and keeps each frame's 328 face crop
 * (the model input depends only on it). Decoded frames are kept in full unless a memory
 * budget is given and they would exceed it: then the compressed files stay in memory and
 * frames are decoded on demand into an LRU cache of as many frames as the budget holds.
 *
 * After loading, an avatar is shared read-only by any number of threads; frame access goes
 * through acquire/release (a pin, so the cache never evicts a frame in use). In the default
 * (all decoded) mode acquiring is lock-free and allocation-free.
 */
#ifndef LS_AVATAR_AVATAR_H
#define LS_AVATAR_AVATAR_H

#include <stddef.h>
#include <stdint.h>

#include "avatar/layout.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "image/image.h"

typedef struct ls_avatar ls_avatar;

typedef struct ls_avatar_options {
    size_t memory_budget; /* bytes of decoded frames to keep; 0: keep all */
} ls_avatar_options;

typedef struct ls_avatar_info {
    const char *name, *source, *dir;
    ls_avatar_layout_kind layout;
    double fps;
    int width, height, n_frames;
    int cached_frames;       /* decoded frames held at once (n_frames when all are kept) */
    size_t frames_bytes;     /* decoded frames resident (all, or the cache) */
    size_t crops_bytes;      /* the 328x328 crops */
    size_t compressed_bytes; /* encoded frames kept for on-demand decoding (0 if all kept) */
    size_t total_bytes;
} ls_avatar_info;

int ls_avatar_load(const char *dir, const ls_avatar_options *opt, ls_pool *pool,
                   ls_avatar **out, ls_error *err);
void ls_avatar_destroy(ls_avatar *av);

void ls_avatar_get_info(const ls_avatar *av, ls_avatar_info *info);
/* Image file of frame i as found on disk. */
const char *ls_avatar_frame_path(const ls_avatar *av, int i);

/* Crop rectangle and 328x328 BGR face crop of frame i (0 <= i < n_frames). */
ls_rect ls_avatar_rect(const ls_avatar *av, int i);
const ls_image *ls_avatar_crop(const ls_avatar *av, int i);

/* Pins frame i and gives a view of its pixels, valid until ls_avatar_release_frame(av, i).
 * May block while every cache slot is pinned by other threads. */
int ls_avatar_acquire_frame(ls_avatar *av, int i, ls_image *frame, ls_error *err);
void ls_avatar_release_frame(ls_avatar *av, int i);

/* Frame order of the reference inference: output frame k of a stream that starts at
 * avatar frame `start` uses start+1, start+2, ..., last, last-1, ..., start, start+1, ...
 * (a single usable frame repeats). Returns -1 if start is outside 0..n_frames-1 or k < 0. */
int ls_avatar_pingpong(int n_frames, int start, int64_t k);

#endif
