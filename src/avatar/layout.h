/* layout.h - finding an avatar's frames and crop rectangles on disk.
 *
 * Three directory layouts are read:
 *   dataset   SyncTalk_2D training data: full_body_img/<i>.jpg and landmarks/<i>.lms, i = 0..N-1
 *   frames    frames/frame_%04d.{jpg,png} (numbered from 0 or 1) and crop_rects.json,
 *             [[x1, y1, x2, y2], ...] one per frame
 *   prepared  the frames layout plus avatar.json (what `lipsync avatar prepare` writes):
 *             {"name", "fps", "width", "height", "frames", "source"}
 * Scanning checks names, numbering and counts and reads every rectangle; it does not open
 * the images (loading does). Messages name the frame and the file at fault.
 */
#ifndef LS_AVATAR_LAYOUT_H
#define LS_AVATAR_LAYOUT_H

#include "core/error.h"
#include "core/fps.h"
#include "image/image.h"

typedef enum ls_avatar_layout_kind {
    LS_LAYOUT_DATASET = 1,
    LS_LAYOUT_FRAMES,
    LS_LAYOUT_PREPARED
} ls_avatar_layout_kind;

#define LS_AVATAR_NAME_MAX 128
#define LS_AVATAR_DEFAULT_FPS ((double)LS_VIDEO_FPS)

typedef struct ls_avatar_layout {
    ls_avatar_layout_kind kind;
    int n_frames;
    char **paths;   /* image file of each frame */
    ls_rect *rects; /* crop rectangle of each frame */
    /* From avatar.json when present (else name = directory name, fps 25, size 0x0). */
    char name[LS_AVATAR_NAME_MAX];
    char source[1024];
    double fps;
    int width, height;
} ls_avatar_layout;

int ls_avatar_layout_scan(const char *dir, ls_avatar_layout *out, ls_error *err);
void ls_avatar_layout_free(ls_avatar_layout *layout);

const char *ls_avatar_layout_name(ls_avatar_layout_kind kind);

#endif
