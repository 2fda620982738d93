/* cmd_render.c - `lipsync render`: audio file + model directory -> MP4.
 *
 * Runs the streaming pipeline over the audio one second at a time (the same
 * path a live session takes), writes each frame as it comes out, and muxes
 * the audio into an H.264 MP4. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/decode.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "core/fps.h"
#include "image/codec.h"
#include "image/image.h"
#include "media/log.h"
#include "media/video_writer.h"
#include "nn/engine.h"
#include "pipeline/drive.h"
#include "pipeline/features.h"
#include "pipeline/session.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync render MODEL_DIR AUDIO -o OUT.mp4 [options]\n"
            "\n"
            "Lip-syncs the model's avatar to AUDIO (any format `lipsync mel` reads) and writes\n"
            "an H.264 MP4 at %d fps with the audio (AAC).\n"
            "  -o, --output FILE      the video file\n"
            "      --frames-dir DIR   also write every frame as DIR/frame_%%06d.jpg (or .png);\n"
            "                         DIR and its missing parents are created\n"
            "      --frame-format F   jpeg (default) or png: lossless, the exact composited pixels\n"
            "      --jpeg-dir DIR     same as --frames-dir DIR --frame-format jpeg\n"
            "      --start-frame N    avatar frame the video starts from (default 0)\n"
            "      --batch B          frames per UNet batch (default: the model's, else 8)\n"
            "      --threads T        worker threads (default: all cores)\n"
            "      --precision P      fp32 (default), bf16 or int8 (after lipsync quantize)\n"
            "      --quality Q        JPEG quality of the jpeg frames (default 85)\n"
            "      --raw SPEC         AUDIO is raw PCM: s16le|f32le:RATE:CHANNELS\n"
            "      --quiet            no progress bar\n"
            "  -v, --verbose          show FFmpeg's own log lines (encoder statistics)\n"
            "Prints a per-stage timing summary and the overall frames per second.\n",
            LS_VIDEO_FPS);
}

typedef enum frame_format { FRAMES_JPEG, FRAMES_PNG } frame_format;

typedef struct render_args {
    const char *model_dir, *audio, *output, *frames_dir, *raw;
    frame_format frame_format;
    int start_frame, batch, threads, quality, quiet, verbose;
    ls_precision precision;
} render_args;

static int parse_args(int argc, char **argv, render_args *a)
{
    enum { O_JPEG = 256, O_FRAMES, O_FORMAT, O_START, O_BATCH, O_THREADS, O_PREC, O_QUALITY,
           O_RAW, O_QUIET };
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},   {"jpeg-dir", required_argument, 0, O_JPEG},
        {"frames-dir", required_argument, 0, O_FRAMES},
        {"frame-format", required_argument, 0, O_FORMAT}, {"verbose", no_argument, 0, 'v'},
        {"start-frame", required_argument, 0, O_START}, {"batch", required_argument, 0, O_BATCH},
        {"threads", required_argument, 0, O_THREADS}, {"precision", required_argument, 0, O_PREC},
        {"quality", required_argument, 0, O_QUALITY}, {"raw", required_argument, 0, O_RAW},
        {"quiet", no_argument, 0, O_QUIET},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (a->threads < 1) a->threads = 1;
    a->quality = 85;
    ls_error err = {0};
    const char *jpeg_dir = NULL, *format = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': a->output = optarg; break;
        case O_JPEG: jpeg_dir = optarg; break;
        case O_FRAMES: a->frames_dir = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_START: if ((a->start_frame = cli_parse_int("--start-frame", optarg, 0, 1 << 30)) < 0) return 2; break;
        case O_BATCH: if ((a->batch = cli_parse_int("--batch", optarg, 1, 64)) < 0) return 2; break;
        case O_THREADS: if ((a->threads = cli_parse_int("--threads", optarg, 1, 256)) < 0) return 2; break;
        case O_QUALITY: if ((a->quality = cli_parse_int("--quality", optarg, 1, 100)) < 0) return 2; break;
        case O_PREC:
            if (ls_precision_parse(optarg, &a->precision, &err)) return cli_fail("--precision", &err) + 1;
            break;
        case O_RAW: a->raw = optarg; break;
        case O_QUIET: a->quiet = 1; break;
        case 'v': a->verbose = 1; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (format && !strcmp(format, "png")) {
        a->frame_format = FRAMES_PNG;
    } else if (format && strcmp(format, "jpeg") && strcmp(format, "jpg")) {
        fprintf(stderr, "lipsync: --frame-format wants jpeg or png, got '%s'\n", format);
        return 2;
    }
    /* --jpeg-dir is the older spelling of --frames-dir with JPEG frames. */
    if (jpeg_dir && (a->frames_dir || a->frame_format != FRAMES_JPEG)) {
        fprintf(stderr, "lipsync: --jpeg-dir (JPEG frames) does not combine with --frames-dir "
                        "or --frame-format png\n");
        return 2;
    }
    if (jpeg_dir) a->frames_dir = jpeg_dir;
    /* A usage error names what is missing: the whole usage text hid it. */
    if (optind == argc) return cli_missing("render", "MODEL_DIR and AUDIO");
    if (optind == argc - 1) return cli_missing("render", "AUDIO (after MODEL_DIR)");
    if (optind < argc - 2) return cli_unexpected("render", argv[optind + 2]);
    if (!a->output && !a->frames_dir) return cli_missing("render", "-o OUT.mp4 (or --frames-dir DIR)");
    a->model_dir = argv[optind];
    a->audio = argv[optind + 1];
    return 0;
}

static void progress(int64_t done, int64_t total, double elapsed)
{
    int width = 40, filled = total ? (int)(width * done / total) : 0;
    double fps = elapsed > 0 ? done / elapsed : 0.0;
    char eta[32] = "";
    if (done < total && fps > 0) snprintf(eta, sizeof eta, ", ETA %.0f s", (double)(total - done) / fps);
    fprintf(stderr, "\r[%.*s%*s] %lld/%lld frames %.1f fps, %.0f s%s   ", filled,
            "########################################", width - filled, "", (long long)done,
            (long long)total, fps, elapsed, eta);
    fflush(stderr);
}

/* Ctrl-C (or SIGTERM) during a render stops the drive between chunks, and
 * the MP4 is finished with the frames so far: the file always plays (never
 * one without its index). Setting a flag is all a handler may do. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static int render_proceed(void *ctx, ls_error *err)
{
    (void)ctx;
    (void)err;
    return stop_signal ? LS_DRIVE_STOP : LS_OK;
}

typedef struct render_out {
    ls_video_writer *video;
    ls_jpeg_encoder *jpeg;
    uint8_t *jpeg_buf;
    size_t jpeg_cap;
    const render_args *args;
    double encode_s;
    int64_t frames;
    int show;                 /* a progress bar on stderr */
    int64_t expected;         /* frames the audio gives */
    double t_run;
} render_out;

/* mkdir -p: creates dir and its missing parents. */
static int make_dirs(const char *dir, ls_error *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return ls_error_set(err, LS_ERR_INVALID_ARG, "bad directory name '%s'", dir);
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char end = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return ls_error_set(err, LS_ERR_IO, "cannot create directory %s: %s", path,
                                strerror(errno));
        *p = end;
        if (!end) break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ls_error_set(err, LS_ERR_IO, "cannot create directory %s: a file is in the way",
                            dir);
    return LS_OK;
}

/* Writes one frame as DIR/frame_%06d.jpg or .png. */
static int write_frame_file(render_out *o, const ls_frame *f, ls_error *err)
{
    ls_image img = ls_image_view((uint8_t *)f->data, f->width, f->height, 3);
    const uint8_t *bytes = o->jpeg_buf;
    uint8_t *png = NULL;
    size_t len;
    int png_out = o->args->frame_format == FRAMES_PNG;
    int rc = png_out ? ls_png_encode(&img, &png, &len, err)
                     : ls_jpeg_encode(o->jpeg, &img, o->args->quality, o->jpeg_buf, o->jpeg_cap,
                                      &len, err);
    if (rc) return rc;
    if (png) bytes = png;
    char path[4096];
    snprintf(path, sizeof path, "%s/frame_%06lld.%s", o->args->frames_dir, (long long)f->index,
             png_out ? "png" : "jpg");
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(bytes, 1, len, fp) != len)
        rc = ls_error_set(err, LS_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (fp && fclose(fp) && !rc)
        rc = ls_error_set(err, LS_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    free(png);
    return rc;
}

/* The drive's sink: each frame to the video and the frames directory. */
static int take_frame(void *ctx, const ls_frame *f, ls_error *err)
{
    render_out *o = ctx;
    double t0 = ls_now();
    if (o->video) {
        int rc = ls_video_writer_add_frame(o->video, f->data, f->width * 3, err);
        if (rc) return rc;
    }
    if (o->args->frames_dir) {
        int rc = write_frame_file(o, f, err);
        if (rc) return rc;
    }
    o->encode_s += ls_now() - t0;
    o->frames++;
    return LS_OK;
}

static void show_progress(void *ctx)
{
    render_out *o = ctx;
    if (o->show) progress(o->frames, o->expected, ls_now() - o->t_run);
}

int cmd_render(int argc, char **argv)
{
    render_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc) return prc < 0 ? 0 : prc;
    ls_error err = {0};
    ls_raw_spec raw;
    if (a.raw && ls_raw_spec_parse(a.raw, &raw, &err)) return cli_fail("--raw", &err);
    if (a.verbose) ls_media_set_log_level(1);
    int show = !a.quiet && isatty(fileno(stderr));

    /* From here on a Ctrl-C is ours until the end: a file, once open, is finished. */
    struct sigaction stop = {.sa_handler = on_stop_signal}, old_int, old_term;
    sigemptyset(&stop.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &stop, &old_int);
    sigaction(SIGTERM, &stop, &old_term);

    ls_audio audio = {0};
    ls_pool *pool = NULL;
    ls_model *model = NULL;
    ls_session *session = NULL;
    render_out out = {.args = &a};
    int status = 1;
    double t_start = ls_now();

    if (ls_audio_load_16k(a.audio, a.raw ? &raw : NULL, 0, &audio, &err)) {
        if (a.raw) cli_fail("audio", &err);
        else cli_fail_audio(a.audio, &err);
        goto done;
    }
    if (ls_pool_create(a.threads, &pool, &err)) {
        cli_fail("threads", &err);
        goto done;
    }
    ls_model_options mo = {.batch = a.batch, .precision = a.precision, .engine_threads = a.threads};
    if (ls_model_load(a.model_dir, &mo, pool, &model, &err)) {
        cli_fail("model", &err);
        goto done;
    }
    ls_model_info info;
    ls_model_get_info(model, &info);
    ls_session_options so = {.start_frame = a.start_frame, .batch = a.batch, .format = LS_FRAME_BGR};
    if (ls_session_create(model, pool, &so, &session, &err)) {
        cli_fail("session", &err);
        goto done;
    }
    /* Before the first frame, so that a bad DIR fails at once, not after the model runs. */
    if (a.frames_dir && make_dirs(a.frames_dir, &err)) {
        cli_fail("frames", &err);
        goto done;
    }
    if (a.output) {
        ls_video_writer_options vo = {.width = info.width, .height = info.height, .fps = LS_VIDEO_FPS,
                                      .audio_rate = 16000};
        if (ls_video_writer_open(a.output, &vo, &out.video, &err)) {
            cli_fail("video", &err);
            goto done;
        }
        if (ls_video_writer_add_audio(out.video, audio.samples, audio.n, &err)) {
            cli_fail("video", &err);
            goto done;
        }
    }
    if (a.frames_dir && a.frame_format == FRAMES_JPEG) {
        out.jpeg_cap = ls_jpeg_bound(info.width, info.height);
        out.jpeg_buf = malloc(out.jpeg_cap);
        if (!out.jpeg_buf || ls_jpeg_encoder_create(&out.jpeg, &err)) {
            cli_fail("jpeg", &err);
            goto done;
        }
    }
    /* The frames the audio gives, for the progress bar. */
    out.expected = ls_feature_frames_for_samples(audio.n);
    out.show = show;
    out.t_run = ls_now();
    /* 0.2 s chunks: how soon a Ctrl-C is seen (chunking does not change frames). */
    ls_drive_options dopt = {.chunk = 3200, .finish = 1};
    ls_drive_sink sink = {.frame = take_frame, .pulled = show_progress, .proceed = render_proceed,
                          .ctx = &out};
    if (ls_session_drive(session, audio.samples, audio.n, &dopt, &sink, &err)) {
        cli_fail("render", &err);
        goto done;
    }
    double t_run = out.t_run;
    if (show) {
        progress(out.frames, stop_signal ? out.expected : out.frames, ls_now() - t_run);
        fputc('\n', stderr);
    }
    if (stop_signal) {
        ls_video_writer *v = out.video;
        out.video = NULL;
        int vrc = ls_video_writer_close(v, &err);
        fprintf(stderr, "lipsync: render: interrupted after %lld of %lld frames", (long long)out.frames,
                (long long)out.expected);
        if (a.output && !vrc)
            fprintf(stderr, "; %s holds them (the rest of the sound over the last)", a.output);
        fputc('\n', stderr);
        if (vrc) cli_fail("video", &err);
        status = 128 + stop_signal;
        goto done;
    }
    if (out.video) {
        ls_video_writer *v = out.video;
        out.video = NULL;
        if (ls_video_writer_close(v, &err)) {
            cli_fail("video", &err);
            goto done;
        }
    }
    double run_s = ls_now() - t_run;
    ls_stage_times t;
    ls_session_get_times(session, &t);
    printf("rendered %lld frames (%.2f s of audio) with model %s, batch %d, %d threads\n",
           (long long)out.frames, (double)audio.n / 16000.0, info.name,
           a.batch ? a.batch : info.batch, a.threads);
    if (a.output) printf("video: %s\n", a.output);
    if (a.frames_dir)
        printf("frames: %s/frame_%%06d.%s\n", a.frames_dir,
               a.frame_format == FRAMES_PNG ? "png" : "jpg");
    printf("stage            total ms   ms/frame\n");
    const char *names[] = {"mel", "audio encoder", "model input", "unet", "composite+encode",
                           "video/frames out"};
    double secs[] = {t.mel, t.encoder, t.input, t.unet, t.composite + t.encode, out.encode_s};
    for (int i = 0; i < 6; i++)
        printf("  %-16s %9.1f %10.2f\n", names[i], secs[i] * 1e3,
               out.frames ? secs[i] * 1e3 / (double)out.frames : 0.0);
    printf("pipeline: %.2f s, %.1f fps (%.1f fps including model load)\n", run_s,
           run_s > 0 ? (double)out.frames / run_s : 0.0,
           (double)out.frames / (ls_now() - t_start));
    status = 0;
done:
    ls_video_writer_abort(out.video);
    ls_jpeg_encoder_destroy(out.jpeg);
    free(out.jpeg_buf);
    ls_session_destroy(session);
    ls_model_release(model);
    ls_pool_destroy(pool);
    ls_audio_free(&audio);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return status;
}
