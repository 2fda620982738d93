#include "image/codec.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <spng.h>
#include <turbojpeg.h>

/* ---- libjpeg memory manager that keeps its chunks between images ---- */

/* libjpeg-turbo's SIMD code reads and writes whole vectors past a row's end, so rows are
 * padded to this many samples and every block aligned to it, as its own manager does. */
#define JALIGN 64
#define CHUNK_MIN (256 * 1024)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    /* payload follows, JALIGN-aligned */
} arena_chunk;

typedef struct arena_mgr {
    struct jpeg_memory_mgr pub;   /* first: libjpeg sees only this */
    struct jpeg_memory_mgr *orig; /* the library's own manager, freed by its self_destruct */
    arena_chunk *chunks[JPOOL_NUMPOOLS];
} arena_mgr;

#define CHUNK_HEADER ((sizeof(arena_chunk) + JALIGN - 1) / JALIGN * JALIGN)

static void *arena_alloc(j_common_ptr cinfo, int pool_id, size_t size)
{
    arena_mgr *m = (arena_mgr *)cinfo->mem;
    if (pool_id < 0 || pool_id >= JPOOL_NUMPOOLS) ERREXIT1(cinfo, JERR_BAD_POOL_ID, pool_id);
    size = (size + JALIGN - 1) / JALIGN * JALIGN;
    for (arena_chunk *c = m->chunks[pool_id]; c; c = c->next) {
        if (c->size - c->used >= size) {
            void *p = (uint8_t *)c + CHUNK_HEADER + c->used;
            c->used += size;
            return p;
        }
    }
    size_t payload = size > CHUNK_MIN ? size : CHUNK_MIN;
    arena_chunk *c = aligned_alloc(JALIGN, CHUNK_HEADER + payload);
    if (!c) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    c->size = payload;
    c->used = size;
    /* Chunks are searched first-fit from the head; appending keeps earlier layout stable. */
    c->next = NULL;
    arena_chunk **tail = &m->chunks[pool_id];
    while (*tail) tail = &(*tail)->next;
    *tail = c;
    return (uint8_t *)c + CHUNK_HEADER;
}

static JSAMPARRAY arena_sarray(j_common_ptr cinfo, int pool_id, JDIMENSION samplesperrow,
                               JDIMENSION numrows)
{
    size_t row = ((size_t)samplesperrow + JALIGN - 1) / JALIGN * JALIGN * sizeof(JSAMPLE);
    JSAMPARRAY rows = arena_alloc(cinfo, pool_id, (size_t)numrows * sizeof(JSAMPROW));
    JSAMPLE *data = arena_alloc(cinfo, pool_id, row * numrows);
    for (JDIMENSION i = 0; i < numrows; i++) rows[i] = data + i * row;
    return rows;
}

static JBLOCKARRAY arena_barray(j_common_ptr cinfo, int pool_id, JDIMENSION blocksperrow,
                                JDIMENSION numrows)
{
    size_t row = (size_t)blocksperrow * sizeof(JBLOCK);
    JBLOCKARRAY rows = arena_alloc(cinfo, pool_id, (size_t)numrows * sizeof(JBLOCKROW));
    uint8_t *data = arena_alloc(cinfo, pool_id, row * numrows);
    for (JDIMENSION i = 0; i < numrows; i++) rows[i] = (JBLOCKROW)(data + i * row);
    return rows;
}

/* Multi-pass features (optimised Huffman tables, progressive) need virtual arrays; the
 * encoder never enables them, so asking for one is a programming error. */
static jvirt_sarray_ptr arena_virt_sarray(j_common_ptr cinfo, int pool_id, boolean pre_zero,
                                          JDIMENSION samplesperrow, JDIMENSION numrows,
                                          JDIMENSION maxaccess)
{
    (void)pool_id, (void)pre_zero, (void)samplesperrow, (void)numrows, (void)maxaccess;
    ERREXIT(cinfo, JERR_NOT_COMPILED);
    return NULL;
}

static jvirt_barray_ptr arena_virt_barray(j_common_ptr cinfo, int pool_id, boolean pre_zero,
                                          JDIMENSION blocksperrow, JDIMENSION numrows,
                                          JDIMENSION maxaccess)
{
    (void)pool_id, (void)pre_zero, (void)blocksperrow, (void)numrows, (void)maxaccess;
    ERREXIT(cinfo, JERR_NOT_COMPILED);
    return NULL;
}

static void arena_realize(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void arena_free_pool(j_common_ptr cinfo, int pool_id)
{
    arena_mgr *m = (arena_mgr *)cinfo->mem;
    if (pool_id < 0 || pool_id >= JPOOL_NUMPOOLS) ERREXIT1(cinfo, JERR_BAD_POOL_ID, pool_id);
    for (arena_chunk *c = m->chunks[pool_id]; c; c = c->next) c->used = 0;
}

static void arena_self_destruct(j_common_ptr cinfo)
{
    arena_mgr *m = (arena_mgr *)cinfo->mem;
    for (int p = 0; p < JPOOL_NUMPOOLS; p++) {
        arena_chunk *c = m->chunks[p];
        while (c) {
            arena_chunk *next = c->next;
            free(c);
            c = next;
        }
    }
    cinfo->mem = m->orig;
    free(m);
    (*cinfo->mem->self_destruct)(cinfo);
}

/* ---- error handling and destination ---- */

typedef struct jpeg_failure {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void on_jpeg_error(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, f->msg);
    longjmp(f->jump, 1);
}

static void silence_jpeg(j_common_ptr cinfo, int level)
{
    (void)cinfo, (void)level;
}

typedef struct fixed_dest {
    struct jpeg_destination_mgr pub;
    uint8_t *buf;
    size_t cap;
    int overflow;
} fixed_dest;

static void dest_init(j_compress_ptr cinfo)
{
    fixed_dest *d = (fixed_dest *)cinfo->dest;
    d->pub.next_output_byte = d->buf;
    d->pub.free_in_buffer = d->cap;
    d->overflow = 0;
}

static boolean dest_full(j_compress_ptr cinfo)
{
    fixed_dest *d = (fixed_dest *)cinfo->dest;
    d->overflow = 1;
    ERREXIT(cinfo, JERR_BUFFER_SIZE);
    return FALSE;
}

static void dest_term(j_compress_ptr cinfo)
{
    (void)cinfo;
}

struct ls_jpeg_encoder {
    struct jpeg_compress_struct cinfo;
    jpeg_failure fail;
    fixed_dest dest;
};

/* Creates the libjpeg object and swaps in the recycling memory manager. */
static int init_compress(ls_jpeg_encoder *enc, arena_mgr *m, ls_error *err)
{
    enc->cinfo.err = jpeg_std_error(&enc->fail.pub);
    enc->fail.pub.error_exit = on_jpeg_error;
    enc->fail.pub.emit_message = silence_jpeg;
    if (setjmp(enc->fail.jump))
        return ls_error_set(err, LS_ERR_INTERNAL, "cannot create a JPEG encoder: %s",
                            enc->fail.msg);
    jpeg_create_compress(&enc->cinfo);
    m->orig = enc->cinfo.mem;
    m->pub = *m->orig;
    m->pub.alloc_small = arena_alloc;
    m->pub.alloc_large = arena_alloc;
    m->pub.alloc_sarray = arena_sarray;
    m->pub.alloc_barray = arena_barray;
    m->pub.request_virt_sarray = arena_virt_sarray;
    m->pub.request_virt_barray = arena_virt_barray;
    m->pub.realize_virt_arrays = arena_realize;
    m->pub.free_pool = arena_free_pool;
    m->pub.self_destruct = arena_self_destruct;
    enc->cinfo.mem = &m->pub;
    enc->dest.pub.init_destination = dest_init;
    enc->dest.pub.empty_output_buffer = dest_full;
    enc->dest.pub.term_destination = dest_term;
    enc->cinfo.dest = &enc->dest.pub;
    return LS_OK;
}

int ls_jpeg_encoder_create(ls_jpeg_encoder **out, ls_error *err)
{
    *out = NULL;
    ls_jpeg_encoder *enc = calloc(1, sizeof *enc);
    arena_mgr *m = calloc(1, sizeof *m);
    if (!enc || !m) {
        free(enc);
        free(m);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot allocate a JPEG encoder");
    }
    int rc = init_compress(enc, m, err);
    if (rc != LS_OK) {
        free(m);
        free(enc);
        return rc;
    }
    *out = enc;
    return LS_OK;
}

void ls_jpeg_encoder_destroy(ls_jpeg_encoder *enc)
{
    if (!enc) return;
    jpeg_destroy_compress(&enc->cinfo);
    free(enc);
}

size_t ls_jpeg_bound(int width, int height)
{
    unsigned long n = tjBufSize(width, height, TJSAMP_420);
    return n == (unsigned long)-1 ? 0 : (size_t)n;
}

static const uint8_t *image_row(const void *ctx, int y)
{
    return ls_image_row((const ls_image *)ctx, y);
}

int ls_jpeg_encode(ls_jpeg_encoder *enc, const ls_image *img, int quality, uint8_t *out,
                   size_t cap, size_t *len, ls_error *err)
{
    *len = 0;
    if (!img || !img->data)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "jpeg: missing image");
    return ls_jpeg_encode_rows(enc, image_row, img, img->width, img->height, img->channels,
                               quality, out, cap, len, err);
}

int ls_jpeg_encode_rows(ls_jpeg_encoder *enc, ls_row_fn row, const void *ctx, int width,
                        int height, int channels, int quality, uint8_t *out, size_t cap,
                        size_t *len, ls_error *err)
{
    *len = 0;
    if (!enc || !row || !out)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "jpeg: missing encoder, rows or output");
    if (channels != 3 && channels != 4)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "jpeg: %d channels (3 or 4 expected)",
                            channels);
    if (width < 1 || height < 1 || width > LS_IMAGE_MAX_SIDE || height > LS_IMAGE_MAX_SIDE)
        return ls_error_set(err, LS_ERR_RANGE, "jpeg: image size %dx%d", width, height);
    if (quality < 1 || quality > 100)
        return ls_error_set(err, LS_ERR_RANGE, "jpeg: quality %d outside 1..100", quality);
    j_compress_ptr c = &enc->cinfo;
    enc->dest.buf = out;
    enc->dest.cap = cap;
    if (setjmp(enc->fail.jump)) {
        jpeg_abort_compress(c);
        if (enc->dest.overflow)
            return ls_error_set(err, LS_ERR_RANGE, "jpeg: %zu-byte output buffer too small",
                                cap);
        return ls_error_set(err, LS_ERR_INTERNAL, "jpeg: %s", enc->fail.msg);
    }
    c->image_width = (JDIMENSION)width;
    c->image_height = (JDIMENSION)height;
    c->input_components = channels;
    c->in_color_space = channels == 3 ? JCS_EXT_BGR : JCS_EXT_BGRX;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
    /* 4:2:0, as TurboJPEG's TJSAMP_420. */
    c->comp_info[0].h_samp_factor = 2;
    c->comp_info[0].v_samp_factor = 2;
    c->dct_method = JDCT_IFAST; /* TurboJPEG's default too */
    jpeg_start_compress(c, TRUE);
    enum { CHUNK = 32 };
    JSAMPROW rows[CHUNK];
    while (c->next_scanline < c->image_height) {
        JDIMENSION n = c->image_height - c->next_scanline;
        if (n > CHUNK) n = CHUNK;
        /* libjpeg takes non-const rows but only reads them. */
        for (JDIMENSION i = 0; i < n; i++)
            rows[i] = (JSAMPROW)row(ctx, (int)(c->next_scanline + i));
        jpeg_write_scanlines(c, rows, n);
    }
    jpeg_finish_compress(c);
    *len = cap - enc->dest.pub.free_in_buffer;
    return LS_OK;
}

/* ---- decoding ---- */

ls_image_format ls_image_sniff(const uint8_t *b, size_t len)
{
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return LS_IMAGE_JPEG;
    if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return LS_IMAGE_PNG;
    return LS_IMAGE_UNKNOWN;
}

struct ls_image_decoder {
    tjhandle tj;
};

/* A TurboJPEG handle can keep state from a corrupt stream that breaks the next, valid one;
 * after any failure the decoder starts over with a fresh handle. */
static int jpeg_failed(ls_image_decoder *dec, ls_error *err, const char *what)
{
    int rc = ls_error_set(err, LS_ERR_FORMAT, "%s: %s", what, tjGetErrorStr2(dec->tj));
    tjhandle fresh = tjInitDecompress();
    if (fresh) {
        tjDestroy(dec->tj);
        dec->tj = fresh;
    }
    return rc;
}

int ls_image_decoder_create(ls_image_decoder **out, ls_error *err)
{
    *out = NULL;
    ls_image_decoder *dec = calloc(1, sizeof *dec);
    if (!dec || !(dec->tj = tjInitDecompress())) {
        free(dec);
        return ls_error_set(err, LS_ERR_NOMEM, "cannot create an image decoder");
    }
    *out = dec;
    return LS_OK;
}

void ls_image_decoder_destroy(ls_image_decoder *dec)
{
    if (!dec) return;
    tjDestroy(dec->tj);
    free(dec);
}

static spng_ctx *png_open(const uint8_t *bytes, size_t len, struct spng_ihdr *ihdr,
                          ls_error *err)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) {
        ls_error_set(err, LS_ERR_NOMEM, "cannot create a PNG decoder");
        return NULL;
    }
    spng_set_image_limits(ctx, LS_IMAGE_MAX_SIDE, LS_IMAGE_MAX_SIDE);
    spng_set_chunk_limits(ctx, 64u << 20, 64u << 20);
    int rc = spng_set_png_buffer(ctx, bytes, len);
    if (!rc) rc = spng_get_ihdr(ctx, ihdr);
    if (rc) {
        ls_error_set(err, LS_ERR_FORMAT, "bad PNG: %s", spng_strerror(rc));
        spng_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

int ls_image_decode_size(ls_image_decoder *dec, const uint8_t *bytes, size_t len, int *width,
                         int *height, ls_error *err)
{
    *width = *height = 0;
    switch (ls_image_sniff(bytes, len)) {
    case LS_IMAGE_JPEG: {
        int w, h, subsamp, cs;
        if (tjDecompressHeader3(dec->tj, bytes, (unsigned long)len, &w, &h, &subsamp, &cs))
            return jpeg_failed(dec, err, "bad JPEG header");
        if (w < 1 || h < 1 || w > LS_IMAGE_MAX_SIDE || h > LS_IMAGE_MAX_SIDE)
            return ls_error_set(err, LS_ERR_RANGE, "JPEG size %dx%d out of range", w, h);
        *width = w;
        *height = h;
        return LS_OK;
    }
    case LS_IMAGE_PNG: {
        struct spng_ihdr ihdr;
        spng_ctx *ctx = png_open(bytes, len, &ihdr, err);
        if (!ctx) return err ? err->code : LS_ERR_FORMAT;
        spng_ctx_free(ctx);
        *width = (int)ihdr.width;
        *height = (int)ihdr.height;
        return LS_OK;
    }
    default:
        return ls_error_set(err, LS_ERR_FORMAT, "neither JPEG nor PNG (%zu bytes)", len);
    }
}

static int decode_png(const uint8_t *bytes, size_t len, ls_image *dst, ls_error *err)
{
    struct spng_ihdr ihdr;
    spng_ctx *ctx = png_open(bytes, len, &ihdr, err);
    if (!ctx) return err ? err->code : LS_ERR_FORMAT;
    int rc = LS_OK;
    size_t need = 0;
    if ((int)ihdr.width != dst->width || (int)ihdr.height != dst->height) {
        rc = ls_error_set(err, LS_ERR_FORMAT, "PNG is %ux%u, expected %dx%d", ihdr.width,
                          ihdr.height, dst->width, dst->height);
    } else if (spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &need) ||
               need != (size_t)dst->width * 4 * (size_t)dst->height) {
        rc = ls_error_set(err, LS_ERR_FORMAT, "PNG: unexpected decoded size");
    } else {
        /* RGBA8 is the one output libspng offers for every colour type, depth and
         * interlacing; decode it whole, then keep BGR. */
        uint8_t *rgba = malloc(need);
        int e = rgba ? spng_decode_image(ctx, rgba, need, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS)
                     : SPNG_EMEM;
        if (e) {
            rc = ls_error_set(err, e == SPNG_EMEM ? LS_ERR_NOMEM : LS_ERR_FORMAT,
                              "bad PNG data: %s", spng_strerror(e));
        } else {
            const uint8_t *q = rgba;
            for (int y = 0; y < dst->height; y++) {
                uint8_t *p = ls_image_row(dst, y);
                for (int x = 0; x < dst->width; x++, p += 3, q += 4) {
                    p[0] = q[2];
                    p[1] = q[1];
                    p[2] = q[0];
                }
            }
        }
        free(rgba);
    }
    spng_ctx_free(ctx);
    return rc;
}

int ls_image_decode_into(ls_image_decoder *dec, const uint8_t *bytes, size_t len,
                         ls_image *dst, ls_error *err)
{
    if (!dec || !bytes || !dst || !dst->data || dst->channels != 3)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "decode: missing input or 3-channel view");
    int w, h;
    int rc = ls_image_decode_size(dec, bytes, len, &w, &h, err);
    if (rc != LS_OK) return rc;
    if (w != dst->width || h != dst->height)
        return ls_error_set(err, LS_ERR_FORMAT, "image is %dx%d, expected %dx%d", w, h,
                            dst->width, dst->height);
    if (ls_image_sniff(bytes, len) == LS_IMAGE_PNG) return decode_png(bytes, len, dst, err);
    if (tjDecompress2(dec->tj, bytes, (unsigned long)len, dst->data, w, (int)dst->stride, h,
                      TJPF_BGR, 0))
        return jpeg_failed(dec, err, "bad JPEG data");
    return LS_OK;
}

int ls_image_decode(ls_image_decoder *dec, const uint8_t *bytes, size_t len, ls_image *out,
                    ls_error *err)
{
    memset(out, 0, sizeof *out);
    int w, h;
    int rc = ls_image_decode_size(dec, bytes, len, &w, &h, err);
    if (rc == LS_OK) rc = ls_image_alloc(out, w, h, 3, err);
    if (rc == LS_OK) rc = ls_image_decode_into(dec, bytes, len, out, err);
    if (rc != LS_OK) ls_image_free(out);
    return rc;
}

int ls_png_encode(const ls_image *img, uint8_t **out, size_t *len, ls_error *err)
{
    *out = NULL;
    *len = 0;
    if (!img || !img->data || img->channels != 3)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "png: 3-channel image expected");
    size_t row = (size_t)img->width * 3;
    uint8_t *rgb = malloc(row * (size_t)img->height);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!rgb || !ctx) {
        free(rgb);
        spng_ctx_free(ctx);
        return ls_error_set(err, LS_ERR_NOMEM, "png encoder");
    }
    for (int y = 0; y < img->height; y++) {
        const uint8_t *p = ls_image_row(img, y);
        uint8_t *q = rgb + row * (size_t)y;
        for (int x = 0; x < img->width; x++, p += 3, q += 3) {
            q[0] = p[2];
            q[1] = p[1];
            q[2] = p[0];
        }
    }
    struct spng_ihdr ihdr = {.width = (uint32_t)img->width, .height = (uint32_t)img->height,
                             .bit_depth = 8, .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    int e = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!e) e = spng_set_ihdr(ctx, &ihdr);
    if (!e) e = spng_encode_image(ctx, rgb, row * (size_t)img->height, SPNG_FMT_PNG,
                                  SPNG_ENCODE_FINALIZE);
    int rc = LS_OK;
    if (!e) *out = spng_get_png_buffer(ctx, len, &e);
    if (e || !*out) rc = ls_error_set(err, LS_ERR_INTERNAL, "png: %s", spng_strerror(e));
    spng_ctx_free(ctx);
    free(rgb);
    return rc;
}

size_t ls_raw_size(int width, int height, ls_frame_format fmt)
{
    return (size_t)width * (size_t)height * (fmt == LS_FRAME_RGBA ? 4u : 3u);
}

int ls_raw_write(const ls_image *img, ls_frame_format fmt, uint8_t *out, size_t cap, size_t *len,
                 ls_error *err)
{
    *len = 0;
    if (!img || img->channels != 3 || !out)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "raw output wants a 3-channel image");
    if (fmt != LS_FRAME_BGR && fmt != LS_FRAME_RGBA)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "raw output format %d is not BGR or RGBA",
                            (int)fmt);
    size_t need = ls_raw_size(img->width, img->height, fmt);
    if (need > cap)
        return ls_error_set(err, LS_ERR_RANGE, "raw output needs %zu bytes, buffer has %zu",
                            need, cap);
    if (fmt == LS_FRAME_BGR) {
        ls_image dst = ls_image_view(out, img->width, img->height, 3);
        ls_image_copy(img, &dst);
    } else {
        uint8_t *o = out;
        for (int y = 0; y < img->height; y++) {
            const uint8_t *p = ls_image_row(img, y);
            for (int x = 0; x < img->width; x++, p += 3, o += 4) {
                o[0] = p[2];
                o[1] = p[1];
                o[2] = p[0];
                o[3] = 255;
            }
        }
    }
    *len = need;
    return LS_OK;
}
