/* buf.h - a growable byte buffer: the one way a module accumulates bytes of
 * unknown length (archives, HTTP bodies, text built piece by piece).
 *
 * A zeroed ls_buf is empty and ready; the caller owns it and frees it with
 * ls_buf_free. Capacity doubles from 4 KiB, so appending n bytes in any
 * pieces copies O(n) bytes. After ls_buf_append or ls_buf_printf the bytes
 * are followed by a NUL (not counted in len), so text built that way is a C
 * string as it stands. A failed realloc, or a capacity past SIZE_MAX / 2,
 * returns LS_ERR_NOMEM and leaves the buffer as it was.
 */
#ifndef LS_CORE_BUF_H
#define LS_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ls_buf {
    uint8_t *data;
    size_t len, cap;
} ls_buf;

/* Room for `extra` more bytes past len (no NUL added). */
int ls_buf_reserve(ls_buf *b, size_t extra);
int ls_buf_append(ls_buf *b, const void *bytes, size_t n);
int ls_buf_printf(ls_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the bytes and zeroes b, ready for reuse. */
void ls_buf_free(ls_buf *b);

#endif
