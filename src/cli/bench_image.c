/* bench_image.c - `lipsync bench image`: per-frame cost of the image side of the pipeline.
 *
 * One 1280x720 frame with a 182x182 face rectangle: model-input build (from the cached
 * 328 crop), composite of a model output into a full frame copy, and JPEG encode of it
 * (quality 85, 4:2:0), each timed per frame; then the one-pass composite + JPEG the painter
 * (and so the pipeline) uses, which copies only the rectangle's rows. Medians over the runs,
 * on 1 and 2 threads. TurboJPEG's tjCompress2 on the same frame, measured in the same loop,
 * is the peer: jpeg/tj shows the encoder wrapper costs nothing, total/tj is the whole
 * per-frame cost in units of a bare TurboJPEG encode (robust to machine load). The bar:
 * model input + composite + JPEG <= 6 ms on one thread, checked on the painter's path
 * (input + one-pass). */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "cli/commands.h"
#include "core/clock.h"
#include "image/codec.h"
#include "image/face.h"

#define BAR_MS 6.0

/* A frame with smooth shading, edges and grain, so the JPEG does realistic work. */
static void synth_frame(ls_image *im)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int y = 0; y < im->height; y++) {
        uint8_t *p = ls_image_row(im, y);
        for (int x = 0; x < im->width; x++)
            for (int c = 0; c < 3; c++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                double v = 110 + 70 * sin(x / (40.0 + 9 * c)) * cos(y / 55.0) +
                           35 * ((x / 64 + y / 48) % 2) + (double)(s % 17) - 8;
                *p++ = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
    }
}

typedef struct stage_times {
    double input, composite, jpeg, fused, peer;
} stage_times;

static int run_threads(int threads, int runs, const ls_image *frame, ls_rect rect, int quality,
                       stage_times *med)
{
    ls_error err = {0};
    ls_pool *pool = NULL;
    ls_resizer *rz = NULL;
    ls_compositor *comp = NULL;
    ls_jpeg_encoder *enc = NULL;
    int rc = threads > 1 ? ls_pool_create(threads, &pool, &err) : LS_OK;
    if (!rc) rc = ls_resizer_create(&rz, &err);
    if (!rc) rc = ls_compositor_create(&comp, &err);
    if (!rc) rc = ls_jpeg_encoder_create(&enc, &err);
    tjhandle tj = tjInitCompress();
    ls_image crop = {0}, dst = {0};
    size_t cap = ls_jpeg_bound(frame->width, frame->height);
    uint8_t *jpeg = malloc(cap);
    float *slot = malloc(LS_INPUT_FLOATS * sizeof(float));
    float *out = malloc(LS_OUTPUT_FLOATS * sizeof(float));
    double *t = calloc((size_t)runs * 5, sizeof(double));
    int status = 0;
    if (rc || !tj || !jpeg || !slot || !out || !t ||
        ls_image_alloc(&crop, LS_CROP_SIDE, LS_CROP_SIDE, 3, &err) ||
        ls_image_alloc(&dst, frame->width, frame->height, 3, &err) ||
        ls_face_crop(rz, pool, frame, rect, &crop, &err)) {
        status = cli_fail("bench image setup", &err);
        goto done;
    }
    for (size_t i = 0; i < LS_OUTPUT_FLOATS; i++) out[i] = 0.5f + 0.4f * sinf((float)i * 0.001f);
    for (int r = -3; r < runs && !status; r++) { /* 3 warm-up runs */
        size_t len;
        unsigned long tlen = cap;
        double t0 = ls_now();
        status |= ls_face_input(pool, &crop, slot, &err);
        double t1 = ls_now();
        status |= ls_composite(comp, pool, frame, &crop, rect, out, 0, &dst, &err);
        double t2 = ls_now();
        status |= ls_jpeg_encode(enc, &dst, quality, jpeg, cap, &len, &err);
        double t3 = ls_now();
        if (tjCompress2(tj, dst.data, dst.width, 0, dst.height, TJPF_BGR, &jpeg, &tlen,
                        TJSAMP_420, quality, TJFLAG_NOREALLOC))
            ls_error_set(&err, LS_ERR_INTERNAL, "%s", tjGetErrorStr2(tj)), status = 1;
        double t4 = ls_now();
        status |= ls_composite_jpeg(comp, enc, pool, frame, &crop, rect, out, 0, quality, jpeg,
                                    cap, &len, &err);
        double t5 = ls_now();
        if (status) status = cli_fail("bench image", &err);
        if (r < 0) continue;
        t[r] = t1 - t0;
        t[runs + r] = t2 - t1;
        t[2 * runs + r] = t3 - t2;
        t[3 * runs + r] = t4 - t3;
        t[4 * runs + r] = t5 - t4;
    }
    if (!status) {
        med->input = ls_median(t, (size_t)runs) * 1e3;
        med->composite = ls_median(t + runs, (size_t)runs) * 1e3;
        med->jpeg = ls_median(t + 2 * runs, (size_t)runs) * 1e3;
        med->peer = ls_median(t + 3 * runs, (size_t)runs) * 1e3;
        med->fused = ls_median(t + 4 * runs, (size_t)runs) * 1e3;
    }
done:
    free(t);
    free(out);
    free(slot);
    free(jpeg);
    ls_image_free(&crop);
    ls_image_free(&dst);
    if (tj) tjDestroy(tj);
    ls_jpeg_encoder_destroy(enc);
    ls_compositor_destroy(comp);
    ls_resizer_destroy(rz);
    ls_pool_destroy(pool);
    return status;
}

int bench_image(int argc, char **argv)
{
    int runs = 200, quality = LS_JPEG_DEFAULT_QUALITY, max_threads = 2, c;
    static const struct option opts[] = {{"runs", required_argument, 0, 'r'},
                                         {"quality", required_argument, 0, 'q'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': if ((runs = cli_parse_int("--runs", optarg, 1, 100000)) < 0) return 2; break;
        case 'q': if ((quality = cli_parse_int("--quality", optarg, 1, 100)) < 0) return 2; break;
        case 't': if ((max_threads = cli_parse_int("--threads", optarg, 1, 64)) < 0) return 2; break;
        case 'h':
            printf("usage: lipsync bench image [--runs N] [--quality Q] [--threads T]\n"
                   "Per-frame model-input build, composite and JPEG encode of a 1280x720\n"
                   "frame with a 182x182 face, medians over N runs, on 1..T threads (default\n"
                   "2), next to TurboJPEG's tjCompress2 of the same frame.\n");
            return 0;
        default: return cli_option_error("bench image", c, argv);
        }
    }
    if (optind < argc) return cli_unexpected("bench image", argv[optind]);
    ls_image frame;
    ls_error err = {0};
    if (ls_image_alloc(&frame, 1280, 720, 3, &err)) return cli_fail("bench image", &err);
    synth_frame(&frame);
    ls_rect rect = {549, 210, 549 + 182, 210 + 182};
    printf("image bench: 1280x720 frame, 182x182 rectangle, JPEG q%d 4:2:0, %d runs, medians "
           "in ms per frame\n"
           "(comp+jpeg 1p: composite + JPEG in one pass, as the painter runs them; "
           "total = input + that)\n",
           quality, runs);
    printf("%-8s %7s %10s %7s %12s %8s %13s %8s %9s\n", "threads", "input", "composite", "jpeg",
           "tjCompress2", "jpeg/tj", "comp+jpeg 1p", "total", "total/tj");
    int status = 0;
    for (int th = 1; th <= max_threads && !status; th++) {
        stage_times m = {0};
        status = run_threads(th, runs, &frame, rect, quality, &m);
        if (status) break;
        double total = m.input + m.fused;
        printf("%-8d %7.3f %10.3f %7.3f %12.3f %8.2f %13.3f %8.3f %9.2f%s\n", th, m.input,
               m.composite, m.jpeg, m.peer, m.jpeg / m.peer, m.fused, total, total / m.peer,
               th == 1 ? (total <= BAR_MS ? "  (bar 6 ms: met)" : "  (bar 6 ms: MISSED)") : "");
    }
    ls_image_free(&frame);
    return status;
}
