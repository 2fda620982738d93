/* fixture.h - small avatar directories written by the tests themselves. */
#ifndef LS_TEST_AVATAR_FIXTURE_H
#define LS_TEST_AVATAR_FIXTURE_H

#include "image/image.h"

#define FIX_W 96
#define FIX_H 72

/* Frame i of the fixtures: a smooth pattern that moves with i (owned). */
ls_image fixture_frame(int i);
/* The rectangle used for frame i: inside the frame, changing a little with i. */
ls_rect fixture_rect(int i);

/* Writes .lms text whose crop rectangle is r. */
void fixture_write_lms(const char *path, ls_rect r);
void fixture_write_text(const char *path, const char *text);
/* Encodes frame i as JPEG (quality 95) or PNG at path. */
void fixture_write_image(const char *path, int i, int png);

/* A fresh empty directory under the test scratch folder; returns its path (static). */
const char *fixture_dir(const char *name);

/* full_body_img/<i>.jpg + landmarks/<i>.lms for n frames. */
const char *fixture_dataset(const char *name, int n);
/* frames/frame_%04d.png numbered from `first` + crop_rects.json. */
const char *fixture_frames(const char *name, int n, int first);

#endif
