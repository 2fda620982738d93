/* ref_util.h - loading the python3-opencv reference outputs and comparing pixels. */
#ifndef LS_TEST_REF_UTIL_H
#define LS_TEST_REF_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/npy.h"
#include "image/image.h"

/* Path of a file in the build tree's image_refs folder. */
const char *ref_path(char *buf, size_t cap, const char *name);

/* Loads a uint8 HxWx3 (or HxW) reference as an owned image; fails the test if absent. */
ls_image ref_load_image(const char *name);
/* Loads any reference array as floats; fails the test if absent. */
ls_npy ref_load(const char *name);

/* Number of bytes that differ between two same-sized images, and the largest difference. */
size_t image_diff(const ls_image *a, const ls_image *b, int *max_diff);

/* A deterministic smooth test image with some noise (owned). */
ls_image make_test_image(int width, int height, uint64_t seed);

#endif
