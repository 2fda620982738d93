/* croprect.h - the face crop rectangle of a frame, from its SyncTalk_2D landmarks.
 *
 * A .lms file holds 110 lines "x y" (numbers, possibly fractional). As the reference
 * preprocessing does, coordinates are truncated to int and
 *   x1 = lms[1].x, y1 = lms[52].y, x2 = lms[31].x, y2 = y1 + (x2 - x1)
 * (a square whose side is the jaw width). Checking the rectangle against a frame is the
 * caller's job (ls_rect_valid); here only the file's shape is checked.
 */
#ifndef LS_AVATAR_CROPRECT_H
#define LS_AVATAR_CROPRECT_H

#include <stddef.h>

#include "core/error.h"
#include "image/image.h"

#define LS_LMS_POINTS 110

/* Parses .lms text; name (the file, for messages) may be NULL. */
int ls_croprect_parse(const char *text, size_t len, const char *name, ls_rect *out,
                      ls_error *err);

/* Reads and parses a .lms file. */
int ls_croprect_read(const char *path, ls_rect *out, ls_error *err);

#endif
