#include "server/outputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

int ls_jpeg_list_add(ls_jpeg_list *l, int64_t index, int64_t avatar_frame, double timestamp,
                     const uint8_t *data, size_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        ls_jpeg_frame *f = realloc(l->frames, cap * sizeof *f);
        if (!f) return LS_ERR_NOMEM;
        l->frames = f;
        l->cap = cap;
    }
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return LS_ERR_NOMEM;
    memcpy(copy, data, size);
    l->frames[l->n++] = (ls_jpeg_frame){index, avatar_frame, timestamp, copy, size};
    return LS_OK;
}

void ls_jpeg_list_free(ls_jpeg_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->frames[i].data);
    free(l->frames);
    memset(l, 0, sizeof *l);
}

static int zip_fail(zip_t *za, zip_source_t *src, ls_error *err, const char *what)
{
    int rc = ls_error_set(err, LS_ERR_INTERNAL, "zip: %s: %s", what,
                          za ? zip_strerror(za) : "libzip failed");
    if (za) zip_discard(za);
    if (src) zip_source_free(src);
    return rc;
}

int ls_frames_to_zip(const ls_jpeg_list *l, const char *manifest_json, ls_buf *out,
                     ls_error *err)
{
    if (!manifest_json) return ls_error_set(err, LS_ERR_INVALID_ARG, "zip: no manifest");
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) return zip_fail(NULL, NULL, err, "cannot create buffer");
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (!za) return zip_fail(NULL, src, err, "cannot open archive");
    zip_source_keep(src); /* read the bytes back after zip_close */
    for (size_t i = 0; i <= l->n; i++) {
        char name[64];
        const void *data;
        size_t size;
        if (i < l->n) {
            snprintf(name, sizeof name, "frame_%06lld.jpg", (long long)l->frames[i].index);
            data = l->frames[i].data;
            size = l->frames[i].size;
        } else {
            snprintf(name, sizeof name, "manifest.json");
            data = manifest_json;
            size = strlen(manifest_json);
        }
        zip_source_t *fs = zip_source_buffer(za, data, size, 0);
        if (!fs) return zip_fail(za, src, err, name);
        zip_int64_t idx = zip_file_add(za, name, fs, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
            zip_source_free(fs);
            return zip_fail(za, src, err, name);
        }
        /* JPEG does not deflate: store frames, deflate only the manifest. */
        zip_set_file_compression(za, (zip_uint64_t)idx, i < l->n ? ZIP_CM_STORE : ZIP_CM_DEFLATE,
                                 0);
    }
    if (zip_close(za) < 0) return zip_fail(za, src, err, "cannot finish archive");
    zip_stat_t st;
    int rc = LS_OK;
    if (zip_source_stat(src, &st) < 0 || zip_source_open(src) < 0) {
        rc = ls_error_set(err, LS_ERR_INTERNAL, "zip: cannot read archive back");
    } else {
        if (ls_buf_reserve(out, (size_t)st.size + 1)) {
            rc = ls_error_set(err, LS_ERR_NOMEM, "zip: out of memory");
        } else {
            zip_int64_t got = zip_source_read(src, out->data + out->len, st.size);
            if (got < 0 || (zip_uint64_t)got != st.size)
                rc = ls_error_set(err, LS_ERR_INTERNAL, "zip: short read of archive");
            else
                out->len += (size_t)got;
        }
        zip_source_close(src);
    }
    zip_source_free(src);
    return rc;
}

int ls_frames_to_mjpeg(const ls_jpeg_list *l, ls_buf *out, ls_error *err)
{
    for (size_t i = 0; i < l->n; i++)
        if (ls_buf_append(out, l->frames[i].data, l->frames[i].size))
            return ls_error_set(err, LS_ERR_NOMEM, "mjpeg: out of memory");
    return LS_OK;
}

int ls_frames_to_multipart(const ls_jpeg_list *l, const char *json, const char *boundary,
                           ls_buf *out, ls_error *err)
{
    int bad = ls_buf_printf(out,
                            "--%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n"
                            "%s\r\n",
                            boundary, strlen(json), json);
    for (size_t i = 0; i < l->n && !bad; i++) {
        const ls_jpeg_frame *f = &l->frames[i];
        bad = ls_buf_printf(out,
                            "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n"
                            "X-Frame-Index: %lld\r\nX-Frame-Timestamp: %.3f\r\n\r\n",
                            boundary, f->size, (long long)f->index, f->timestamp) ||
              ls_buf_append(out, f->data, f->size) || ls_buf_append(out, "\r\n", 2);
    }
    if (!bad) bad = ls_buf_printf(out, "--%s--\r\n", boundary);
    return bad ? ls_error_set(err, LS_ERR_NOMEM, "multipart: out of memory") : LS_OK;
}

char *ls_base64(const uint8_t *bytes, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)bytes[i] << 16 | (i + 1 < n ? (uint32_t)bytes[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}
