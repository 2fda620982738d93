/* JPEG encoding and decoding, PNG decoding, raw output, buffer pools; malformed inputs. */
#include "support/test_util.h"

#include <math.h>
#include <pthread.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/bufpool.h"
#include "image/codec.h"
#include "image/ref_util.h"

static double psnr(const ls_image *a, const ls_image *b)
{
    double se = 0;
    size_t n = (size_t)a->width * a->height * 3;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->data[i] - b->data[i];
        se += d * d;
    }
    return 10 * log10(255.0 * 255.0 / (se / (double)n + 1e-12));
}

static size_t encode(ls_jpeg_encoder *enc, const ls_image *img, int q, uint8_t *buf, size_t cap)
{
    size_t len;
    ls_error err;
    if (ls_jpeg_encode(enc, img, q, buf, cap, &len, &err) != LS_OK) fail_msg("%s", err.msg);
    return len;
}

static void test_jpeg_roundtrip(void **state)
{
    (void)state;
    ls_image img = make_test_image(321, 243, 3);
    size_t cap = ls_jpeg_bound(img.width, img.height);
    uint8_t *buf = malloc(cap);
    ls_jpeg_encoder *enc;
    assert_int_equal(ls_jpeg_encoder_create(&enc, NULL), LS_OK);
    ls_image_decoder *dec;
    assert_int_equal(ls_image_decoder_create(&dec, NULL), LS_OK);
    assert_non_null(enc);
    size_t len95 = encode(enc, &img, 95, buf, cap);
    /* 4:2:0 and the right size, as any decoder sees it. */
    tjhandle tj = tjInitDecompress();
    int w, h, ss, cs;
    assert_int_equal(tjDecompressHeader3(tj, buf, len95, &w, &h, &ss, &cs), 0);
    assert_int_equal(ss, TJSAMP_420);
    assert_int_equal(w, 321);
    assert_int_equal(h, 243);
    tjDestroy(tj);
    ls_image back;
    ls_error err;
    assert_int_equal(ls_image_decode(dec, buf, len95, &back, &err), LS_OK);
    double p95 = psnr(&img, &back);
    ls_image_free(&back);
    size_t len30 = encode(enc, &img, 30, buf, cap);
    assert_int_equal(ls_image_decode(dec, buf, len30, &back, &err), LS_OK);
    double p30 = psnr(&img, &back);
    ls_image_free(&back);
    print_message("jpeg q95: %zu bytes, %.1f dB; q30: %zu bytes, %.1f dB\n", len95, p95, len30,
                  p30);
    assert_true(p95 > 30.0);
    assert_true(len30 < len95 && p30 < p95);
    /* The same image twice gives the same bytes (the recycled scratch leaves no trace). */
    uint8_t *again = malloc(cap);
    assert_int_equal(encode(enc, &img, 30, again, cap), len30);
    assert_memory_equal(buf, again, len30);
    /* A strided view encodes like its packed copy. */
    ls_image sub = ls_image_sub(&img, (ls_rect){5, 7, 205, 107}), packed;
    assert_int_equal(ls_image_alloc(&packed, 200, 100, 3, NULL), LS_OK);
    ls_image_copy(&sub, &packed);
    size_t l1 = encode(enc, &sub, 85, buf, cap), l2 = encode(enc, &packed, 85, again, cap);
    assert_int_equal(l1, l2);
    assert_memory_equal(buf, again, l1);
    ls_image_free(&packed);
    free(again);
    free(buf);
    ls_image_free(&img);
    ls_jpeg_encoder_destroy(enc);
    ls_image_decoder_destroy(dec);
}

static void test_jpeg_encode_errors(void **state)
{
    (void)state;
    ls_image img = make_test_image(64, 64, 1);
    ls_jpeg_encoder *enc;
    assert_int_equal(ls_jpeg_encoder_create(&enc, NULL), LS_OK);
    uint8_t small[100];
    size_t len;
    ls_error err;
    assert_int_equal(ls_jpeg_encode(enc, &img, 85, small, sizeof small, &len, &err),
                     LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "too small"));
    /* The encoder recovers after a failure. */
    size_t cap = ls_jpeg_bound(64, 64);
    uint8_t *buf = malloc(cap);
    assert_int_equal(ls_jpeg_encode(enc, &img, 85, buf, cap, &len, &err), LS_OK);
    assert_true(len > 100);
    assert_int_equal(ls_jpeg_encode(enc, &img, 0, buf, cap, &len, &err), LS_ERR_RANGE);
    assert_int_equal(ls_jpeg_encode(enc, &img, 101, buf, cap, &len, &err), LS_ERR_RANGE);
    ls_image gray = img;
    gray.channels = 1;
    assert_int_equal(ls_jpeg_encode(enc, &gray, 85, buf, cap, &len, &err), LS_ERR_INVALID_ARG);
    free(buf);
    ls_image_free(&img);
    ls_jpeg_encoder_destroy(enc);
}

/* Writes img as an 8-bit PNG (RGB, or gray from channel 1) with libspng. */
static uint8_t *png_encode(const ls_image *img, int gray, size_t *len)
{
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = (uint32_t)img->width, .height = (uint32_t)img->height,
                             .bit_depth = 8,
                             .color_type = gray ? SPNG_COLOR_TYPE_GRAYSCALE
                                                : SPNG_COLOR_TYPE_TRUECOLOR};
    spng_set_ihdr(ctx, &ihdr);
    size_t n = (size_t)img->width * img->height;
    uint8_t *px = malloc(n * 3);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->data + i * 3;
        if (gray) px[i] = p[1];
        else px[i * 3] = p[2], px[i * 3 + 1] = p[1], px[i * 3 + 2] = p[0];
    }
    assert_int_equal(spng_encode_image(ctx, px, gray ? n : n * 3, SPNG_FMT_PNG,
                                       SPNG_ENCODE_FINALIZE),
                     0);
    int e;
    uint8_t *out = spng_get_png_buffer(ctx, len, &e);
    assert_non_null(out);
    spng_ctx_free(ctx);
    free(px);
    return out;
}

static void test_png_decode(void **state)
{
    (void)state;
    ls_image img = make_test_image(77, 51, 9);
    ls_image_decoder *dec;
    assert_int_equal(ls_image_decoder_create(&dec, NULL), LS_OK);
    for (int gray = 0; gray <= 1; gray++) {
        size_t len;
        uint8_t *png = png_encode(&img, gray, &len);
        assert_int_equal(ls_image_sniff(png, len), LS_IMAGE_PNG);
        ls_image back;
        ls_error err;
        assert_int_equal(ls_image_decode(dec, png, len, &back, &err), LS_OK);
        for (size_t i = 0; i < (size_t)77 * 51; i++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(back.data[i * 3 + c], img.data[i * 3 + (gray ? 1 : c)]);
        ls_image_free(&back);
        /* Truncations of a valid file fail cleanly. */
        for (size_t cut = 0; cut < len; cut += len / 7 + 1)
            assert_int_not_equal(ls_image_decode(dec, png, cut, &back, &err), LS_OK);
        free(png);
    }
    ls_image_free(&img);
    ls_image_decoder_destroy(dec);
}

static void test_decode_malformed(void **state)
{
    (void)state;
    ls_image_decoder *dec;
    assert_int_equal(ls_image_decoder_create(&dec, NULL), LS_OK);
    ls_image img = make_test_image(40, 30, 2), out;
    ls_jpeg_encoder *enc;
    assert_int_equal(ls_jpeg_encoder_create(&enc, NULL), LS_OK);
    uint8_t buf[16384];
    size_t len = encode(enc, &img, 80, buf, sizeof buf);
    ls_error err;
    assert_int_equal(ls_image_decode(dec, buf, 0, &out, &err), LS_ERR_FORMAT);
    assert_int_equal(ls_image_decode(dec, (const uint8_t *)"hello world", 11, &out, &err),
                     LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "neither JPEG nor PNG"));
    for (size_t cut = 3; cut < len; cut += 97)
        assert_int_not_equal(ls_image_decode(dec, buf, cut, &out, &err), LS_OK);
    /* Random bytes after a JPEG signature. */
    uint64_t s = 5;
    for (int rep = 0; rep < 20; rep++) {
        uint8_t junk[600] = {0xFF, 0xD8, 0xFF};
        for (size_t i = 3; i < sizeof junk; i++) junk[i] = (uint8_t)test_rand(&s);
        assert_int_not_equal(ls_image_decode(dec, junk, sizeof junk, &out, &err), LS_OK);
    }
    /* Flipped bytes inside a valid file either decode or fail; never crash. */
    for (size_t i = 2; i < len; i += 13) {
        uint8_t copy[16384];
        memcpy(copy, buf, len);
        copy[i] ^= 0x5A;
        if (ls_image_decode(dec, copy, len, &out, &err) == LS_OK) ls_image_free(&out);
    }
    /* Size mismatch against a fixed destination. */
    ls_image small;
    assert_int_equal(ls_image_alloc(&small, 20, 30, 3, NULL), LS_OK);
    assert_int_equal(ls_image_decode_into(dec, buf, len, &small, &err), LS_ERR_FORMAT);
    if (!strstr(err.msg, "expected 20x30")) fail_msg("message: %s", err.msg);
    ls_image_free(&small);
    ls_image_free(&img);
    ls_jpeg_encoder_destroy(enc);
    ls_image_decoder_destroy(dec);
}

static void test_raw_output(void **state)
{
    (void)state;
    ls_image img = make_test_image(9, 4, 4);
    uint8_t out[9 * 4 * 4];
    size_t len;
    ls_error err;
    assert_int_equal(ls_raw_write(&img, LS_FRAME_RGBA, out, sizeof out, &len, &err), LS_OK);
    assert_int_equal(len, 9 * 4 * 4);
    for (int i = 0; i < 36; i++) {
        assert_int_equal(out[i * 4], img.data[i * 3 + 2]);
        assert_int_equal(out[i * 4 + 2], img.data[i * 3]);
        assert_int_equal(out[i * 4 + 3], 255);
    }
    assert_int_equal(ls_raw_write(&img, LS_FRAME_BGR, out, sizeof out, &len, &err), LS_OK);
    assert_int_equal(len, 9 * 4 * 3);
    assert_memory_equal(out, img.data, len);
    assert_int_equal(ls_raw_write(&img, LS_FRAME_RGBA, out, 100, &len, &err), LS_ERR_RANGE);
    assert_int_equal(ls_raw_write(&img, LS_FRAME_JPEG, out, sizeof out, &len, &err),
                     LS_ERR_INVALID_ARG);
    ls_image_free(&img);
}

static void *pool_user(void *arg)
{
    ls_buffer_pool *pool = arg;
    for (int i = 0; i < 2000; i++) {
        ls_buffer *b;
        if (ls_buffer_get(pool, &b, NULL) != LS_OK) continue; /* BUSY under contention */
        memset(b->data, i & 0xFF, ls_buffer_pool_capacity(pool));
        b->len = 1;
        ls_buffer_put(b);
    }
    return NULL;
}

static void test_buffer_pool(void **state)
{
    (void)state;
    ls_error err;
    ls_buffer_pool *pool;
    assert_int_equal(ls_buffer_pool_create(1000, 3, &pool, &err), LS_OK);
    assert_non_null(pool);
    assert_int_equal(ls_buffer_pool_reserve(pool, 2, &err), LS_OK);
    assert_int_equal(ls_buffer_pool_count(pool), 2);
    ls_buffer *a, *b, *c, *d;
    assert_int_equal(ls_buffer_get(pool, &a, &err), LS_OK);
    assert_int_equal(ls_buffer_get(pool, &b, &err), LS_OK);
    assert_int_equal(ls_buffer_get(pool, &c, &err), LS_OK);
    assert_true(a != b && b != c && a != c);
    assert_int_equal((uintptr_t)a->data % 64, 0);
    assert_int_equal(ls_buffer_get(pool, &d, &err), LS_ERR_BUSY);
    assert_null(d);
    ls_buffer_put(b);
    assert_int_equal(ls_buffer_get(pool, &d, &err), LS_OK);
    assert_ptr_equal(d, b); /* reused, not reallocated */
    assert_int_equal(ls_buffer_pool_count(pool), 3);
    ls_buffer_put(a);
    ls_buffer_put(c);
    ls_buffer_put(d);
    ls_buffer_put(NULL);
    /* Several threads taking and returning buffers. */
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, pool_user, pool);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_true(ls_buffer_pool_count(pool) <= 3);
    ls_buffer_pool_destroy(pool);
    ls_buffer_pool *bad = (ls_buffer_pool *)&err; /* create must overwrite it */
    assert_int_equal(ls_buffer_pool_create(0, 0, &bad, &err), LS_ERR_INVALID_ARG);
    assert_null(bad);
    assert_int_equal(err.code, LS_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg_roundtrip),
        cmocka_unit_test(test_jpeg_encode_errors),
        cmocka_unit_test(test_png_decode),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_raw_output),
        cmocka_unit_test(test_buffer_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
