#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ls_buf_reserve(ls_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return LS_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) return LS_ERR_NOMEM;
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) return LS_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return LS_OK;
}

int ls_buf_append(ls_buf *b, const void *bytes, size_t n)
{
    if (ls_buf_reserve(b, n + 1)) return LS_ERR_NOMEM;
    if (n) memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = 0; /* text stays NUL-terminated */
    return LS_OK;
}

int ls_buf_printf(ls_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ls_buf_reserve(b, (size_t)n + 1)) return LS_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LS_OK;
}

void ls_buf_free(ls_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
