/* cmd_avatar.c - `lipsync avatar prepare|info`: make and inspect avatar directories. */
#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avatar/avatar.h"
#include "avatar/prepare.h"
#include "cli/commands.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync avatar prepare SRC -o DIR [--landmarks DIR] [--name NAME]\n"
            "                              [--fps F] [--png] [--quality Q] [--threads T]\n"
            "       lipsync avatar info DIR [--budget MB] [--threads T]\n"
            "\n"
            "prepare validates SRC and writes an avatar directory DIR (frames/,\n"
            "crop_rects.json, avatar.json). SRC is a SyncTalk_2D dataset folder\n"
            "(full_body_img/ + landmarks/), a folder with frames/frame_NNNN.{jpg,png} and\n"
            "crop_rects.json, or a video file with --landmarks DIR (<i>.lms per frame).\n"
            "Video frames are stored as JPEG quality Q (default 95) or, with --png, PNG.\n"
            "\n"
            "info loads an avatar directory (any of those layouts) and prints its frames\n"
            "and memory use; --budget keeps at most MB of decoded frames (LRU cache).\n");
}

/* Options shared by both subcommands; returns -1 on a bad option (already reported). */
static int parse(int argc, char **argv, ls_prepare_options *opt, const char **out,
                 const char **src, int *threads, double *budget_mb)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && v) {
            *out = v, i++;
        } else if (!strcmp(a, "--landmarks") && v) {
            opt->landmarks_dir = v, i++;
        } else if (!strcmp(a, "--name") && v) {
            opt->name = v, i++;
        } else if (!strcmp(a, "--fps") && v) {
            char *end;
            opt->fps = strtod(v, &end);
            if (*end || !(opt->fps > 0 && opt->fps <= 1000)) {
                fprintf(stderr, "lipsync: --fps wants a number in (0, 1000], got '%s'\n", v);
                return -1;
            }
            i++;
        } else if (!strcmp(a, "--png")) {
            opt->png = 1;
        } else if (!strcmp(a, "--quality") && v) {
            if ((opt->jpeg_quality = cli_parse_int("--quality", v, 1, 100)) < 0) return -1;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            if ((*threads = cli_parse_int("--threads", v, 1, 256)) < 0) return -1;
            i++;
        } else if (!strcmp(a, "--budget") && v) {
            int mb = cli_parse_int("--budget", v, 1, 1 << 20);
            if (mb < 0) return -1;
            *budget_mb = mb;
            i++;
        } else if (a[0] != '-' && !*src) {
            *src = a;
        } else {
            fprintf(stderr, "lipsync avatar: unexpected argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static int print_info(const char *dir, double budget_mb, ls_pool *pool)
{
    ls_avatar_options aopt = {(size_t)(budget_mb * 1e6)};
    ls_avatar *av;
    ls_error err = {0};
    if (ls_avatar_load(dir, &aopt, pool, &av, &err) != LS_OK) return cli_fail("avatar", &err);
    ls_avatar_info in;
    ls_avatar_get_info(av, &in);
    printf("avatar: %s\nlayout: %s\nsource: %s\nframes: %d of %dx%d at %.3g fps\n", in.name,
           ls_avatar_layout_name(in.layout), in.source, in.n_frames, in.width, in.height,
           in.fps);
    printf("memory: %.1f MB decoded frames (%d of %d kept), %.1f MB face crops, %.1f MB "
           "compressed, %.1f MB total\n",
           (double)in.frames_bytes / 1e6, in.cached_frames, in.n_frames,
           (double)in.crops_bytes / 1e6, (double)in.compressed_bytes / 1e6,
           (double)in.total_bytes / 1e6);
    for (int i = 0; i < in.n_frames && i < 3; i++) {
        ls_rect r = ls_avatar_rect(av, i);
        printf("frame %d: %s rect %d %d %d %d\n", i, ls_avatar_frame_path(av, i), r.x1, r.y1,
               r.x2, r.y2);
    }
    ls_avatar_destroy(av);
    return 0;
}

int cmd_avatar(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) return cli_missing("avatar", "the subcommand: prepare SRC -o DIR, or info DIR");
    ls_prepare_options opt = {0};
    const char *out = NULL, *src = NULL;
    int threads = 2;
    double budget_mb = 0;
    if (parse(argc, argv, &opt, &out, &src, &threads, &budget_mb) < 0) return 2;
    int prepare = !strcmp(argv[1], "prepare");
    if (!prepare && strcmp(argv[1], "info")) {
        fprintf(stderr, "lipsync: avatar: unknown subcommand '%s' (prepare or info; see "
                        "`lipsync avatar --help`)\n", argv[1]);
        return 2;
    }
    if (!src) return cli_missing(prepare ? "avatar prepare" : "avatar info",
                                 prepare ? "SRC (a dataset folder or a video)" : "DIR");
    if (prepare && !out) return cli_missing("avatar prepare", "-o DIR");
    ls_error err = {0};
    ls_pool *pool;
    if (ls_pool_create(threads, &pool, &err)) return cli_fail("avatar", &err);
    int status;
    if (prepare) {
        av_log_set_level(AV_LOG_ERROR); /* FFmpeg's own chatter; our errors say what failed */
        opt.report = stdout;
        status = ls_avatar_prepare(src, out, &opt, pool, &err) == LS_OK
                     ? (printf("wrote %s\n", out), 0)
                     : cli_fail("avatar prepare", &err);
    } else {
        status = print_info(src, budget_mb, pool);
    }
    ls_pool_destroy(pool);
    return status;
}
