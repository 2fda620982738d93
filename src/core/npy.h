/* npy.h - read and write NumPy .npy files (format versions 1.0-3.0).
 *
 * Reading accepts little-endian float32/float64/int32/int64/uint8 arrays in C
 * or Fortran order and returns them as C-order float32, which is what every
 * tensor at a module boundary is. Writing produces float32 or uint8 C-order
 * files that numpy.load reads back.
 */
#ifndef LS_CORE_NPY_H
#define LS_CORE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define LS_NPY_MAX_DIMS 8

typedef struct ls_npy {
    int ndim;
    int64_t shape[LS_NPY_MAX_DIMS];
    size_t count;  /* product of shape */
    float *data;   /* C-order, owned; free with ls_npy_free */
} ls_npy;

int ls_npy_read(const char *path, ls_npy *out, ls_error *err);
/* Same, from bytes in memory (the parser behind ls_npy_read). */
int ls_npy_parse(const uint8_t *bytes, size_t len, ls_npy *out, ls_error *err);
void ls_npy_free(ls_npy *a);

int ls_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                     ls_error *err);
int ls_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape,
                    ls_error *err);

/* Reads a whole regular file into a malloc'd buffer (NUL-terminated for text use). */
int ls_read_file(const char *path, uint8_t **bytes, size_t *len, ls_error *err);

#endif
