/* Avatar directories: layouts, validation errors, frame order, memory budget + LRU cache,
 * prepare (directory and video sources), and the painter the pipeline calls. */
#include "support/test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "avatar/avatar.h"
#include "avatar/fixture.h"
#include "avatar/painter.h"
#include "avatar/prepare.h"
#include "core/npy.h"
#include "image/codec.h"
#include "image/face.h"

static ls_avatar *load(const char *dir, size_t budget, ls_pool *pool)
{
    ls_avatar_options opt = {budget};
    ls_avatar *av;
    ls_error err;
    if (ls_avatar_load(dir, &opt, pool, &av, &err) != LS_OK) fail_msg("%s", err.msg);
    return av;
}

/* Expects loading dir to fail with code and a message containing each of the words. */
static void expect_error(const char *dir, int code, const char *w1, const char *w2)
{
    ls_avatar *av;
    ls_error err = {0};
    int rc = ls_avatar_load(dir, NULL, NULL, &av, &err);
    if (rc != code || !strstr(err.msg, w1) || (w2 && !strstr(err.msg, w2)))
        fail_msg("%s: got %d '%s', wanted %d with '%s' '%s'", dir, rc, err.msg, code, w1,
                 w2 ? w2 : "");
    assert_null(av);
}

/* The 328 crops of a and b are identical (b loaded with other threads, or copied). */
static void expect_same_crops(const ls_avatar *a, const ls_avatar *b, int n)
{
    for (int i = 0; i < n; i++)
        assert_memory_equal(ls_avatar_crop(a, i)->data, ls_avatar_crop(b, i)->data,
                            (size_t)LS_CROP_SIDE * LS_CROP_SIDE * 3);
}

/* Checks the layout, name and frame rate av reports; returns its info. */
static ls_avatar_info expect_info(const ls_avatar *av, ls_avatar_layout_kind layout,
                                  const char *name, double fps)
{
    ls_avatar_info in;
    ls_avatar_get_info(av, &in);
    assert_int_equal(in.layout, layout);
    assert_string_equal(in.name, name);
    assert_true(in.fps == fps);
    return in;
}

/* Frames, rectangles and crops of av are those of the fixture (JPEG frames within loss). */
static void check_against_fixture(ls_avatar *av, int n, int lossless)
{
    ls_avatar_info in;
    ls_avatar_get_info(av, &in);
    assert_int_equal(in.n_frames, n);
    assert_int_equal(in.width, FIX_W);
    assert_int_equal(in.height, FIX_H);
    ls_resizer *rz;
    assert_int_equal(ls_resizer_create(&rz, NULL), LS_OK);
    ls_image crop;
    assert_int_equal(ls_image_alloc(&crop, LS_CROP_SIDE, LS_CROP_SIDE, 3, NULL), LS_OK);
    for (int i = 0; i < n; i++) {
        ls_rect r = ls_avatar_rect(av, i), want = fixture_rect(i);
        assert_memory_equal(&r, &want, sizeof r);
        ls_image frame, ref = fixture_frame(i);
        assert_int_equal(ls_avatar_acquire_frame(av, i, &frame, NULL), LS_OK);
        long sum = 0;
        for (int y = 0; y < FIX_H; y++)
            for (int x = 0; x < FIX_W * 3; x++)
                sum += labs((long)ls_image_row(&frame, y)[x] - ls_image_row(&ref, y)[x]);
        if (lossless) assert_int_equal(sum, 0);
        else assert_true(sum < (long)FIX_W * FIX_H * 3 * 4); /* JPEG q95: mean error < 4 */
        /* The kept crop is the cubic crop of the decoded frame. */
        assert_int_equal(ls_face_crop(rz, NULL, &frame, r, &crop, NULL), LS_OK);
        assert_memory_equal(crop.data, ls_avatar_crop(av, i)->data,
                            (size_t)LS_CROP_SIDE * LS_CROP_SIDE * 3);
        ls_avatar_release_frame(av, i);
        ls_image_free(&ref);
    }
    ls_image_free(&crop);
    ls_resizer_destroy(rz);
}

static void test_dataset_layout(void **state)
{
    (void)state;
    const char *dir = fixture_dataset("dataset", 7);
    ls_pool *pool;
    assert_int_equal(ls_pool_create(3, &pool, NULL), LS_OK);
    ls_avatar *av = load(dir, 0, pool);
    ls_avatar_info in = expect_info(av, LS_LAYOUT_DATASET, "dataset", 25.0);
    assert_int_equal(in.cached_frames, 7);
    assert_int_equal(in.frames_bytes, (size_t)7 * FIX_W * FIX_H * 3);
    assert_int_equal(in.crops_bytes, (size_t)7 * LS_CROP_SIDE * LS_CROP_SIDE * 3);
    assert_int_equal(in.compressed_bytes, 0);
    check_against_fixture(av, 7, 0);
    ls_avatar_destroy(av);
    ls_pool_destroy(pool);
}

static void test_frames_layout(void **state)
{
    (void)state;
    for (int first = 0; first <= 1; first++) {
        const char *dir = fixture_frames(first ? "frames1" : "frames0", 5, first);
        ls_avatar *av = load(dir, 0, NULL);
        ls_avatar_info in;
        ls_avatar_get_info(av, &in);
        assert_int_equal(in.layout, LS_LAYOUT_FRAMES);
        check_against_fixture(av, 5, 1);
        ls_avatar_destroy(av);
    }
}

/* Loading gives the same crops whatever the thread count. */
static void test_load_thread_invariance(void **state)
{
    (void)state;
    const char *dir = fixture_dataset("threads", 9);
    ls_avatar *ref = load(dir, 0, NULL);
    for (int t = 2; t <= 16; t *= 2) {
        ls_pool *pool;
        assert_int_equal(ls_pool_create(t, &pool, NULL), LS_OK);
        ls_avatar *av = load(dir, 0, pool);
        expect_same_crops(av, ref, 9);
        ls_avatar_destroy(av);
        ls_pool_destroy(pool);
    }
    ls_avatar_destroy(ref);
}

static void test_validation_errors(void **state)
{
    (void)state;
    char p[1024];
    const char *dir;
    expect_error("/nonexistent/avatar", LS_ERR_NOT_FOUND, "not a directory", NULL);
    dir = fixture_dir("empty");
    expect_error(dir, LS_ERR_NOT_FOUND, "no avatar.json", NULL);

    dir = fixture_dataset("gap", 5);
    snprintf(p, sizeof p, "%s/full_body_img/2.jpg", dir);
    unlink(p);
    expect_error(dir, LS_ERR_NOT_FOUND, "frame 2", "2.jpg is missing");

    dir = fixture_dataset("nolms", 5);
    snprintf(p, sizeof p, "%s/landmarks/3.lms", dir);
    unlink(p);
    expect_error(dir, LS_ERR_NOT_FOUND, "frame 3", "count mismatch");

    dir = fixture_dataset("extralms", 4);
    snprintf(p, sizeof p, "%s/landmarks/4.lms", dir);
    fixture_write_lms(p, fixture_rect(4));
    expect_error(dir, LS_ERR_FORMAT, "count mismatch", "4.lms");

    dir = fixture_dataset("badlms", 4);
    snprintf(p, sizeof p, "%s/landmarks/1.lms", dir);
    fixture_write_text(p, "1 2\n3 4\n");
    expect_error(dir, LS_ERR_FORMAT, "frame 1", "2 points");

    dir = fixture_dataset("unreadable", 4);
    snprintf(p, sizeof p, "%s/full_body_img/3.jpg", dir);
    fixture_write_text(p, "this is not a jpeg");
    expect_error(dir, LS_ERR_FORMAT, "frame 3", "neither JPEG nor PNG");

    dir = fixture_dataset("truncated", 4);
    snprintf(p, sizeof p, "%s/full_body_img/1.jpg", dir);
    assert_int_equal(truncate(p, 300), 0);
    expect_error(dir, LS_ERR_FORMAT, "frame 1", "JPEG");

    dir = fixture_dataset("zeroarea", 4);
    snprintf(p, sizeof p, "%s/landmarks/2.lms", dir);
    fixture_write_lms(p, (ls_rect){30, 10, 30, 10});
    expect_error(dir, LS_ERR_RANGE, "frame 2", "zero area");

    dir = fixture_dataset("outside", 4);
    snprintf(p, sizeof p, "%s/landmarks/3.lms", dir);
    fixture_write_lms(p, (ls_rect){70, 10, 110, 50});
    expect_error(dir, LS_ERR_RANGE, "frame 3", "outside the 96x72 frame");

    dir = fixture_frames("shortjson", 4, 0);
    snprintf(p, sizeof p, "%s/crop_rects.json", dir);
    fixture_write_text(p, "[[20, 10, 61, 51], [20, 10, 61, 51]]");
    expect_error(dir, LS_ERR_FORMAT, "count mismatch", "4 frames");

    dir = fixture_frames("badjson", 2, 0);
    snprintf(p, sizeof p, "%s/crop_rects.json", dir);
    fixture_write_text(p, "[[20, 10, 61, 51], [20, \"a\", 61, 51]]");
    expect_error(dir, LS_ERR_FORMAT, "frame 1", "not [x1, y1, x2, y2]");
    fixture_write_text(p, "{oops");
    expect_error(dir, LS_ERR_FORMAT, "not a JSON array", NULL);

    dir = fixture_frames("sizes", 3, 0);
    snprintf(p, sizeof p, "%s/frames/frame_0002.png", dir);
    ls_image small;
    assert_int_equal(ls_image_alloc(&small, 80, 72, 3, NULL), LS_OK);
    memset(small.data, 100, (size_t)80 * 72 * 3);
    uint8_t *png;
    size_t len;
    assert_int_equal(ls_png_encode(&small, &png, &len, NULL), LS_OK);
    FILE *f = fopen(p, "wb");
    fwrite(png, 1, len, f);
    fclose(f);
    free(png);
    ls_image_free(&small);
    expect_error(dir, LS_ERR_FORMAT, "frame 2", "80x72, frame 0 is 96x72");

    dir = fixture_frames("manifest", 3, 0);
    snprintf(p, sizeof p, "%s/avatar.json", dir);
    fixture_write_text(p, "{\"name\": \"m\", \"fps\": 25, \"width\": 96, \"height\": 72, "
                          "\"frames\": 4}");
    expect_error(dir, LS_ERR_FORMAT, "count mismatch", "says 4 frames");
    fixture_write_text(p, "{\"name\": \"m\", \"fps\": 25, \"width\": 90, \"height\": 72, "
                          "\"frames\": 3}");
    expect_error(dir, LS_ERR_FORMAT, "says 90x72", NULL);
    fixture_write_text(p, "[1, 2]");
    expect_error(dir, LS_ERR_FORMAT, "not a JSON object", NULL);
}

/* Mutated crop_rects.json and avatar.json either load or fail with a message; never crash. */
static void test_mutated_json(void **state)
{
    (void)state;
    const char *dir = fixture_frames("mutate", 3, 0);
    char rects[512], manifest[512];
    snprintf(rects, sizeof rects, "%s/crop_rects.json", dir);
    snprintf(manifest, sizeof manifest, "%s/avatar.json", dir);
    const char *good_rects = "[[20, 10, 61, 51], [21, 11, 63, 53], [22, 12, 63, 53]]";
    const char *good_manifest = "{\"name\": \"m\", \"fps\": 25, \"width\": 96, "
                                "\"height\": 72, \"frames\": 3, \"source\": \"x\"}";
    uint64_t seed = 77;
    int failed = 0, loaded = 0;
    for (int rep = 0; rep < 60; rep++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s", good_rects);
        snprintf(b, sizeof b, "%s", good_manifest);
        char *t = rep % 2 ? a : b;
        size_t n = strlen(t);
        for (int k = 0; k <= rep % 3; k++) /* 1 to 3 random characters */
            t[test_rand(&seed) % n] = "[]{},:\"-9e0 x"[test_rand(&seed) % 14];
        fixture_write_text(rects, a);
        fixture_write_text(manifest, b);
        ls_avatar *av;
        ls_error err = {0};
        if (ls_avatar_load(dir, NULL, NULL, &av, &err) == LS_OK) {
            loaded++;
            ls_avatar_destroy(av);
        } else {
            assert_true(err.msg[0] != 0);
            failed++;
        }
    }
    print_message("mutated JSON: %d loaded, %d refused\n", loaded, failed);
    assert_true(failed > 0);
}

static void test_pingpong(void **state)
{
    (void)state;
    const int want0[] = {1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3};
    for (int k = 0; k < 13; k++) assert_int_equal(ls_avatar_pingpong(5, 0, k), want0[k]);
    const int want2[] = {3, 4, 3, 2, 3, 4, 3, 2};
    for (int k = 0; k < 8; k++) assert_int_equal(ls_avatar_pingpong(5, 2, k), want2[k]);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(ls_avatar_pingpong(1, 0, k), 0);
        assert_int_equal(ls_avatar_pingpong(5, 4, k), 4);
    }
    const int want_two[] = {1, 0, 1, 0};
    for (int k = 0; k < 4; k++) assert_int_equal(ls_avatar_pingpong(2, 0, k), want_two[k]);
    /* Periodic with period 2 (n - 1 - start), far along a long stream too. */
    int64_t big = 1000000000007LL;
    assert_int_equal(ls_avatar_pingpong(250, 10, big), ls_avatar_pingpong(250, 10, big % 478));
    assert_int_equal(ls_avatar_pingpong(5, 5, 0), -1);
    assert_int_equal(ls_avatar_pingpong(5, -1, 0), -1);
    assert_int_equal(ls_avatar_pingpong(0, 0, 0), -1);
    assert_int_equal(ls_avatar_pingpong(5, 0, -1), -1);
}

typedef struct lru_ctx {
    ls_avatar *av;
    const ls_avatar *ref;
    int n;
    uint64_t seed;
    int failures;
} lru_ctx;

static void *lru_user(void *arg)
{
    lru_ctx *c = arg;
    for (int rep = 0; rep < 60; rep++) {
        int i = (int)(test_rand(&c->seed) % (uint64_t)c->n);
        ls_image got, want;
        if (ls_avatar_acquire_frame(c->av, i, &got, NULL) != LS_OK) {
            c->failures++;
            continue;
        }
        ls_avatar_acquire_frame((ls_avatar *)c->ref, i, &want, NULL);
        if (memcmp(got.data, want.data, (size_t)FIX_W * FIX_H * 3)) c->failures++;
        ls_avatar_release_frame(c->av, i);
    }
    return NULL;
}

/* With a budget of 2 frames: compressed frames kept, LRU cache of 2, same pixels, and
 * several threads sharing the cache. */
static void test_memory_budget(void **state)
{
    (void)state;
    const char *dir = fixture_dataset("budget", 8);
    ls_avatar *ref = load(dir, 0, NULL);
    size_t frame = (size_t)FIX_W * FIX_H * 3;
    ls_avatar *av = load(dir, 2 * frame + 10, NULL);
    ls_avatar_info in;
    ls_avatar_get_info(av, &in);
    assert_int_equal(in.cached_frames, 2);
    assert_int_equal(in.frames_bytes, 2 * frame);
    assert_true(in.compressed_bytes > 0);
    assert_true(in.total_bytes < 8 * frame + in.crops_bytes);
    /* A budget larger than the avatar keeps everything. */
    ls_avatar *all = load(dir, 100 * frame, NULL);
    ls_avatar_get_info(all, &in);
    assert_int_equal(in.cached_frames, 8);
    ls_avatar_destroy(all);
    /* Ping-pong order through the cache, one thread: pixels as the fully decoded avatar. */
    for (int k = 0; k < 20; k++) {
        int i = ls_avatar_pingpong(8, 0, k);
        ls_image a, b;
        assert_int_equal(ls_avatar_acquire_frame(av, i, &a, NULL), LS_OK);
        assert_int_equal(ls_avatar_acquire_frame(ref, i, &b, NULL), LS_OK);
        assert_memory_equal(a.data, b.data, frame);
        assert_memory_equal(ls_avatar_crop(av, i)->data, ls_avatar_crop(ref, i)->data,
                            (size_t)LS_CROP_SIDE * LS_CROP_SIDE * 3);
        ls_avatar_release_frame(av, i);
    }
    /* Two frames pinned at once fit; a third waits for a release (tested by threads). */
    pthread_t t[4];
    lru_ctx c[4];
    for (int k = 0; k < 4; k++) {
        c[k] = (lru_ctx){av, ref, 8, (uint64_t)k + 1, 0};
        pthread_create(&t[k], NULL, lru_user, &c[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(t[k], NULL);
        assert_int_equal(c[k].failures, 0);
    }
    ls_error err;
    ls_image img;
    assert_int_equal(ls_avatar_acquire_frame(av, 8, &img, &err), LS_ERR_RANGE);
    ls_avatar_destroy(av);
    ls_avatar_destroy(ref);
}

static void test_prepare_from_directory(void **state)
{
    (void)state;
    const char *src = fixture_dataset("prep_src", 6);
    char src_copy[512], out[512];
    snprintf(src_copy, sizeof src_copy, "%s", src);
    snprintf(out, sizeof out, "%s/prepared", fixture_dir("prep_out"));
    ls_prepare_options opt = {.name = "alice", .fps = 30};
    ls_error err;
    if (ls_avatar_prepare(src_copy, out, &opt, NULL, &err) != LS_OK) fail_msg("%s", err.msg);
    ls_avatar *av = load(out, 0, NULL);
    ls_avatar_info in = expect_info(av, LS_LAYOUT_PREPARED, "alice", 30.0);
    assert_string_equal(in.source, src_copy);
    check_against_fixture(av, 6, 0);
    /* Frames were copied byte for byte: same crops as the source. */
    ls_avatar *orig = load(src_copy, 0, NULL);
    expect_same_crops(av, orig, 6);
    ls_avatar_destroy(orig);
    ls_avatar_destroy(av);
    /* A non-empty output is refused; an invalid source writes nothing usable. */
    assert_int_equal(ls_avatar_prepare(src_copy, out, &opt, NULL, &err), LS_ERR_STATE);
    assert_non_null(strstr(err.msg, "not empty"));
    char p[1024];
    snprintf(p, sizeof p, "%s/landmarks/5.lms", src_copy);
    unlink(p);
    snprintf(out, sizeof out, "%s/second", fixture_dir("prep_out2"));
    assert_int_equal(ls_avatar_prepare(src_copy, out, &opt, NULL, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "frame 5"));
}

static const char *ref_video(char *buf, size_t cap, const char *name)
{
    const char *build = getenv("LS_BUILD_DIR");
    snprintf(buf, cap, "%s/image_refs/%s", build ? build : ".", name);
    return buf;
}

/* Video + landmarks: frames decoded by FFmpeg (lossless FFV1 source, stored as PNG) equal
 * the frames python3-opencv wrote; count mismatches and bad files are errors. */
/* A failed prepare leaves nothing in OUT's parent: no OUT, no partial directory.
 * (fixture_dir() would empty the folder: the parent is taken from out.) */
static void assert_nothing_left(const char *out)
{
    char parent[512];
    snprintf(parent, sizeof parent, "%s", out);
    char *slash = strrchr(parent, '/');
    assert_non_null(slash);
    *slash = 0;
    DIR *d = opendir(parent);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            fail_msg("a failed prepare left %s/%s", parent, e->d_name);
    closedir(d);
}

static void test_prepare_from_video(void **state)
{
    (void)state;
    char video[512], frames_npy[512], lms[512], out[512], p[1024];
    ref_video(video, sizeof video, "avatar_video.avi");
    ref_video(frames_npy, sizeof frames_npy, "avatar_video_frames.npy");
    snprintf(lms, sizeof lms, "%s", fixture_dir("video_lms"));
    ls_rect r = {10, 5, 40, 35};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%d.lms", lms, i);
        fixture_write_lms(p, r);
    }
    snprintf(out, sizeof out, "%s/av", fixture_dir("video_out"));
    ls_prepare_options opt = {.landmarks_dir = lms, .png = 1};
    ls_error err;
    if (ls_avatar_prepare(video, out, &opt, NULL, &err) != LS_OK) fail_msg("%s", err.msg);
    ls_avatar *av = load(out, 0, NULL);
    ls_avatar_info in = expect_info(av, LS_LAYOUT_PREPARED, "avatar_video", 25.0);
    assert_int_equal(in.n_frames, 6);
    assert_int_equal(in.width, 64);
    assert_int_equal(in.height, 48);
    ls_npy ref;
    assert_int_equal(ls_npy_read(frames_npy, &ref, &err), LS_OK);
    size_t fb = (size_t)64 * 48 * 3, diff = 0;
    for (int i = 0; i < 6; i++) {
        ls_image f;
        assert_int_equal(ls_avatar_acquire_frame(av, i, &f, NULL), LS_OK);
        for (size_t k = 0; k < fb; k++) diff += f.data[k] != (uint8_t)ref.data[i * fb + k];
        ls_avatar_release_frame(av, i);
        ls_rect got = ls_avatar_rect(av, i);
        assert_memory_equal(&got, &r, sizeof r);
    }
    assert_int_equal(diff, 0);
    ls_npy_free(&ref);
    ls_avatar_destroy(av);

    /* JPEG frames by default. */
    snprintf(out, sizeof out, "%s/av", fixture_dir("video_jpg"));
    opt.png = 0;
    assert_int_equal(ls_avatar_prepare(video, out, &opt, NULL, &err), LS_OK);
    snprintf(p, sizeof p, "%s/frames/frame_0005.jpg", out);
    assert_int_equal(access(p, R_OK), 0);

    /* 7 landmark files for 6 frames, then 5. */
    snprintf(p, sizeof p, "%s/6.lms", lms);
    fixture_write_lms(p, r);
    snprintf(out, sizeof out, "%s/av", fixture_dir("video_more"));
    assert_int_equal(ls_avatar_prepare(video, out, &opt, NULL, &err), LS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "count mismatch"));
    /* Found after all 6 frames were written: they go with the partial directory. */
    assert_nothing_left(out);
    unlink(p);
    snprintf(p, sizeof p, "%s/5.lms", lms);
    unlink(p);
    snprintf(out, sizeof out, "%s/av", fixture_dir("video_less"));
    assert_int_equal(ls_avatar_prepare(video, out, &opt, NULL, &err), LS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "frame 5"));
    assert_nothing_left(out);
    /* A rectangle outside the 64x48 frame. */
    fixture_write_lms(p, (ls_rect){50, 5, 80, 35});
    snprintf(out, sizeof out, "%s/av", fixture_dir("video_outside"));
    assert_int_equal(ls_avatar_prepare(video, out, &opt, NULL, &err), LS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "frame 5"));
    assert_nothing_left(out);
    /* An empty OUT that was there is the user's: it stays, empty. */
    assert_int_equal(mkdir(out, 0777), 0);
    assert_int_equal(ls_avatar_prepare(video, out, &opt, NULL, &err), LS_ERR_RANGE);
    assert_int_equal(rmdir(out), 0);
    assert_nothing_left(out);
    /* Not a video; no landmarks folder. */
    snprintf(p, sizeof p, "%s/fake.mp4", lms);
    fixture_write_text(p, "not a video at all");
    snprintf(out, sizeof out, "%s/av", fixture_dir("video_fake"));
    assert_int_equal(ls_avatar_prepare(p, out, &opt, NULL, &err), LS_ERR_FORMAT);
    assert_nothing_left(out);
    opt.landmarks_dir = NULL;
    assert_int_equal(ls_avatar_prepare(video, out, &opt, NULL, &err), LS_ERR_INVALID_ARG);
}

/* Painter: input equals the face input of the crop; JPEG, BGR and RGBA outputs agree with
 * the composite, for 1 and 4 threads. */
static void test_painter(void **state)
{
    (void)state;
    const char *dir = fixture_frames("paint", 4, 0);
    ls_avatar *av = load(dir, 0, NULL);
    ls_painter *p;
    assert_int_equal(ls_painter_create(av, &p, NULL), LS_OK);
    assert_non_null(p);
    float *slot = malloc(LS_INPUT_FLOATS * sizeof(float));
    float *want = malloc(LS_INPUT_FLOATS * sizeof(float));
    float *out = malloc(LS_OUTPUT_FLOATS * sizeof(float));
    uint64_t seed = 9;
    for (size_t i = 0; i < LS_OUTPUT_FLOATS; i++) out[i] = (float)test_rand_uniform(&seed);
    ls_buffer_pool *bufs;
    assert_int_equal(
        ls_buffer_pool_create(ls_painter_output_size(av, LS_FRAME_RGBA), 0, &bufs, NULL), LS_OK);
    ls_error err;
    assert_int_equal(ls_painter_input(p, NULL, 2, slot, &err), LS_OK);
    assert_int_equal(ls_face_input(NULL, ls_avatar_crop(av, 2), want, NULL), LS_OK);
    assert_memory_equal(slot, want, LS_INPUT_FLOATS * sizeof(float));

    ls_image frame, expect;
    assert_int_equal(ls_image_alloc(&expect, FIX_W, FIX_H, 3, NULL), LS_OK);
    assert_int_equal(ls_avatar_acquire_frame(av, 2, &frame, NULL), LS_OK);
    ls_compositor *comp;
    assert_int_equal(ls_compositor_create(&comp, NULL), LS_OK);
    assert_int_equal(ls_composite(comp, NULL, &frame, ls_avatar_crop(av, 2), ls_avatar_rect(av, 2),
                                  out, 0, &expect, NULL),
                     LS_OK);
    ls_avatar_release_frame(av, 2);
    ls_buffer *jpeg_ref = NULL;
    for (int threads = 1; threads <= 4; threads += 3) {
        ls_pool *pool;
        assert_int_equal(ls_pool_create(threads, &pool, NULL), LS_OK);
        ls_buffer *b;
        ls_paint_options o = {LS_FRAME_BGR, 0, 0};
        assert_int_equal(ls_painter_output(p, pool, 2, out, &o, bufs, &b, &err), LS_OK);
        assert_int_equal(b->len, (size_t)FIX_W * FIX_H * 3);
        assert_int_equal(b->channels, 3);
        assert_memory_equal(b->data, expect.data, b->len);
        ls_buffer_put(b);
        o.format = LS_FRAME_RGBA;
        assert_int_equal(ls_painter_output(p, pool, 2, out, &o, bufs, &b, &err), LS_OK);
        assert_int_equal(b->len, (size_t)FIX_W * FIX_H * 4);
        assert_int_equal(b->data[4 * 10], expect.data[3 * 10 + 2]);
        ls_buffer_put(b);
        o.format = LS_FRAME_JPEG;
        o.jpeg_quality = 90;
        assert_int_equal(ls_painter_output(p, pool, 2, out, &o, bufs, &b, &err), LS_OK);
        if (!jpeg_ref) {
            jpeg_ref = b;
        } else {
            assert_int_equal(b->len, jpeg_ref->len);
            assert_memory_equal(b->data, jpeg_ref->data, b->len);
            ls_buffer_put(b);
        }
        ls_pool_destroy(pool);
    }
    ls_image_decoder *dec;
    assert_int_equal(ls_image_decoder_create(&dec, NULL), LS_OK);
    int w, h;
    assert_int_equal(ls_image_decode_size(dec, jpeg_ref->data, jpeg_ref->len, &w, &h, NULL), LS_OK);
    assert_int_equal(w, FIX_W);
    assert_int_equal(h, FIX_H);
    ls_image_decoder_destroy(dec);
    ls_buffer_put(jpeg_ref);
    /* Bad frame index, bad quality, buffers too small. */
    ls_buffer *b;
    ls_paint_options o = {LS_FRAME_JPEG, 0, 0};
    assert_int_equal(ls_painter_output(p, NULL, 4, out, &o, bufs, &b, &err), LS_ERR_RANGE);
    assert_int_equal(ls_painter_input(p, NULL, -1, slot, &err), LS_ERR_RANGE);
    o.jpeg_quality = 101;
    assert_int_equal(ls_painter_output(p, NULL, 1, out, &o, bufs, &b, &err), LS_ERR_RANGE);
    ls_buffer_pool *tiny;
    assert_int_equal(ls_buffer_pool_create(100, 0, &tiny, NULL), LS_OK);
    o.jpeg_quality = 0;
    assert_int_equal(ls_painter_output(p, NULL, 1, out, &o, tiny, &b, &err), LS_ERR_RANGE);
    ls_buffer_pool_destroy(tiny);
    ls_compositor_destroy(comp);
    ls_image_free(&expect);
    ls_buffer_pool_destroy(bufs);
    free(slot);
    free(want);
    free(out);
    ls_painter_destroy(p);
    ls_avatar_destroy(av);
}

/* `lipsync avatar prepare` and `avatar info` exit codes and output. */
static void test_cli(void **state)
{
    (void)state;
    const char *bin = getenv("LS_BIN");
    assert_non_null(bin);
    const char *src = fixture_dataset("cli_src", 3);
    char srcc[512], out[512], cmd[2048];
    snprintf(srcc, sizeof srcc, "%s", src);
    snprintf(out, sizeof out, "%s/av", fixture_dir("cli_out"));
    snprintf(cmd, sizeof cmd, "'%s' avatar prepare '%s' -o '%s' >/dev/null", bin, srcc, out);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' avatar info '%s' --budget 1", bin, out);
    FILE *p = popen(cmd, "r");
    char text[4096] = {0};
    size_t got = fread(text, 1, sizeof text - 1, p);
    assert_int_equal(pclose(p), 0);
    assert_true(got > 0);
    assert_non_null(strstr(text, "frames: 3 of 96x72"));
    assert_non_null(strstr(text, "memory:"));
    snprintf(cmd, sizeof cmd, "'%s' avatar prepare /nonexistent -o '%s/x' 2>/dev/null", bin, out);
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof cmd, "'%s' avatar frobnicate 2>/dev/null", bin);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_layout),
        cmocka_unit_test(test_frames_layout),
        cmocka_unit_test(test_load_thread_invariance),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_mutated_json),
        cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_prepare_from_directory),
        cmocka_unit_test(test_prepare_from_video),
        cmocka_unit_test(test_painter),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
