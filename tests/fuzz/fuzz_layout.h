/* fuzz_layout.h - an avatar directory in the fuzz folder for the JSON targets:
 * frames/frame_0000.jpg .. frame_0002.jpg (empty: scanning does not open the
 * images), into which the input is written as crop_rects.json or avatar.json. */
#ifndef LS_FUZZ_LAYOUT_H
#define LS_FUZZ_LAYOUT_H

#include "avatar/layout.h"
#include "fuzz_util.h"

#define FUZZ_FRAMES 3

/* Makes the avatar folder `name` with its frames (once); returns its path. */
static inline const char *fuzz_avatar_dir(const char *name)
{
    static char dir[4096];
    if (dir[0]) return dir;
    fuzz_path(dir, sizeof dir, name);
    fuzz_mkdir(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/frames", dir);
    fuzz_mkdir(path);
    for (int i = 0; i < FUZZ_FRAMES; i++) {
        snprintf(path, sizeof path, "%s/frames/frame_%04d.jpg", dir, i);
        fuzz_write(path, "", 0);
    }
    return dir;
}

/* Writes dir/file. */
static inline void fuzz_avatar_file(const char *dir, const char *file, const void *data,
                                    size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    fuzz_write(path, data, len);
}

/* Scans dir and checks what a successful scan promises. */
static inline int fuzz_scan(const char *dir, ls_avatar_layout_kind want)
{
    ls_avatar_layout l;
    ls_error err = {0};
    int rc = ls_avatar_layout_scan(dir, &l, &err);
    fuzz_note("scan", rc, err.msg);
    if (rc != LS_OK) {
        FUZZ_CHECK(err.msg[0] && !l.paths && !l.rects && l.n_frames == 0);
        return rc;
    }
    FUZZ_CHECK(l.kind == want && l.n_frames == FUZZ_FRAMES && l.paths && l.rects);
    for (int i = 0; i < l.n_frames; i++) FUZZ_CHECK(l.paths[i]);
    FUZZ_CHECK(memchr(l.name, 0, sizeof l.name) && memchr(l.source, 0, sizeof l.source));
    FUZZ_CHECK(l.fps > 0 && l.fps <= 1000);
    ls_avatar_layout_free(&l);
    return rc;
}

#endif
