/* After warm-up, model input, compositing (plain and feathered), resizing and JPEG/raw
 * encoding into pooled buffers make no heap allocation, on one thread and on a pool. */
#include "support/test_util.h"

#include <stdlib.h>
#include <string.h>

#include "core/bufpool.h"
#include "image/codec.h"
#include "image/face.h"
#include "image/ref_util.h"
#include "support/alloc_count.h"

typedef struct frame_state {
    ls_image frame, crop;
    ls_rect rect;
    float *slot, *out;
    ls_compositor *comp;
    ls_resizer *rz;
    ls_jpeg_encoder *enc;
    ls_buffer_pool *frames, *jpegs;
} frame_state;

/* One output frame, as the pipeline makes it. */
static void one_frame(frame_state *s, ls_pool *pool, int feather)
{
    ls_error err;
    ls_buffer *fb, *jb;
    assert_int_equal(ls_face_crop(s->rz, pool, &s->frame, s->rect, &s->crop, &err), LS_OK);
    assert_int_equal(ls_face_input(pool, &s->crop, s->slot, &err), LS_OK);
    assert_int_equal(ls_buffer_get(s->frames, &fb, &err), LS_OK);
    assert_int_equal(ls_buffer_get(s->jpegs, &jb, &err), LS_OK);
    ls_image dst = ls_image_view(fb->data, s->frame.width, s->frame.height, 3);
    assert_int_equal(ls_composite(s->comp, pool, &s->frame, &s->crop, s->rect, s->out, feather,
                                  &dst, &err),
                     LS_OK);
    assert_int_equal(ls_jpeg_encode(s->enc, &dst, 85, jb->data, jb->cap, &jb->len, &err), LS_OK);
    assert_true(jb->len > 0);
    assert_int_equal(ls_composite_jpeg(s->comp, s->enc, pool, &s->frame, &s->crop, s->rect,
                                       s->out, feather, 85, jb->data, jb->cap, &jb->len, &err),
                     LS_OK);
    size_t len;
    assert_int_equal(ls_raw_write(&dst, LS_FRAME_RGBA, jb->data, jb->cap, &len, &err), LS_OK);
    ls_buffer_put(fb);
    ls_buffer_put(jb);
}

static void run(int threads)
{
    frame_state s;
    s.frame = make_test_image(640, 360, 11);
    assert_int_equal(ls_image_alloc(&s.crop, LS_CROP_SIDE, LS_CROP_SIDE, 3, NULL), LS_OK);
    s.slot = malloc(LS_INPUT_FLOATS * sizeof(float));
    s.out = malloc(LS_OUTPUT_FLOATS * sizeof(float));
    uint64_t seed = 3;
    for (size_t i = 0; i < LS_OUTPUT_FLOATS; i++) s.out[i] = (float)test_rand_uniform(&seed);
    assert_int_equal(ls_compositor_create(&s.comp, NULL), LS_OK);
    assert_int_equal(ls_resizer_create(&s.rz, NULL), LS_OK);
    assert_int_equal(ls_jpeg_encoder_create(&s.enc, NULL), LS_OK);
    assert_int_equal(ls_buffer_pool_create((size_t)640 * 360 * 3, 0, &s.frames, NULL), LS_OK);
    size_t jcap = ls_jpeg_bound(640, 360), rcap = ls_raw_size(640, 360, LS_FRAME_RGBA);
    assert_int_equal(ls_buffer_pool_create(jcap > rcap ? jcap : rcap, 0, &s.jpegs, NULL), LS_OK);
    ls_pool *pool = NULL;
    if (threads > 1) assert_int_equal(ls_pool_create(threads, &pool, NULL), LS_OK);
    ls_rect rects[2] = {{200, 80, 382, 262}, {100, 150, 283, 331}};
    /* Warm-up: every size and option once. */
    for (int k = 0; k < 2; k++) {
        s.rect = rects[k];
        one_frame(&s, pool, 0);
        one_frame(&s, pool, 5);
    }
    long before = alloc_count();
    for (int i = 0; i < 12; i++) {
        s.rect = rects[i % 2];
        one_frame(&s, pool, i % 3 == 0 ? 5 : 0);
    }
    long after = alloc_count();
    print_message("%d thread(s): %ld allocations over 12 frames after warm-up\n", threads,
                  after - before);
    assert_int_equal(after - before, 0);
    ls_pool_destroy(pool);
    ls_buffer_pool_destroy(s.frames);
    ls_buffer_pool_destroy(s.jpegs);
    ls_jpeg_encoder_destroy(s.enc);
    ls_resizer_destroy(s.rz);
    ls_compositor_destroy(s.comp);
    free(s.slot);
    free(s.out);
    ls_image_free(&s.crop);
    ls_image_free(&s.frame);
}

static void test_no_alloc_one_thread(void **state)
{
    (void)state;
    run(1);
}

static void test_no_alloc_pool(void **state)
{
    (void)state;
    run(3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_alloc_one_thread),
        cmocka_unit_test(test_no_alloc_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
