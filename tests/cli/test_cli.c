/* The `lipsync` command line as the README tells people to use it: a usage
 * error names the argument it lacks (or the option it does not know), `help
 * --help` works, `infer` and `bench engine` take their options anywhere, `infer` lists the
 * graph's inputs when a name binds to none, a headerless file hints at --raw,
 * `mel` reports the frame count render makes, and `bench --help` lists every
 * option of every benchmark. Runs the built binary (LS_BIN). */
#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "audio/mel.h"
#include "audio/windows.h"
#include "core/npy.h"
#include "pipeline/features.h"

/* The whole file, NUL-terminated ("" when unreadable). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = 0;
    } else {
        free(b);
        b = calloc(1, 1);
    }
    if (f) fclose(f);
    return b;
}

typedef struct run_result {
    int status;
    char *out, *err;
} run_result;

/* Runs `lipsync ARGS` (shell words) and keeps its exit status, stdout, stderr. */
static run_result run(const char *args)
{
    const char *tmp = test_tmp_dir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/out' 2> '%s/err' < /dev/null", getenv("LS_BIN"),
             args, tmp, tmp);
    int rc = system(cmd);
    run_result r = {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, NULL, NULL};
    snprintf(cmd, sizeof cmd, "%s/out", tmp);
    r.out = slurp(cmd);
    snprintf(cmd, sizeof cmd, "%s/err", tmp);
    r.err = slurp(cmd);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs ARGS and checks its exit status and that `text` is in its stderr
 * (stdout when want_out). */
static void expect(const char *args, int status, const char *text, int want_out)
{
    run_result r = run(args);
    const char *where = want_out ? r.out : r.err;
    if (r.status != status || !strstr(where, text))
        fail_msg("lipsync %s: exit %d (want %d), %s:\n%s\n(wanted \"%s\")", args, r.status, status,
                 want_out ? "stdout" : "stderr", where, text);
    run_free(&r);
}

static void test_missing_argument_named(void **state)
{
    (void)state;
    static const struct {
        const char *args, *text;
    } cases[] = {
        {"render", "lipsync: render: missing MODEL_DIR and AUDIO"},
        {"render model", "lipsync: render: missing AUDIO"},
        {"render model speech.wav", "lipsync: render: missing -o OUT.mp4"},
        {"render model speech.wav extra -o x.mp4", "render: unexpected argument 'extra'"},
        {"mel", "lipsync: mel: missing INPUT"},
        {"mel a.wav b.wav", "mel: unexpected argument 'b.wav'"},
        {"infer", "lipsync: infer: missing MODEL.onnx"},
        {"infer m.onnx", "lipsync: infer: missing the input files"},
        {"infer m.onnx in.npy", "lipsync: infer: missing -o OUT.npy"},
        {"infer m.onnx in.npy -o", "lipsync: infer: missing the file after -o"},
        {"infer m.onnx in.npy -o out.npy --bogus", "lipsync: infer: unknown option '--bogus'"},
        {"infer m.onnx in.npy -o out.npy -q", "lipsync: infer: unknown option '-q'"},
        {"infer m.onnx in.npy -o out.npy --batch", "lipsync: infer: missing the value of --batch"},
        {"infer m.onnx in.npy -o out.npy --threads=x", "lipsync: --threads wants an integer"},
        {"bench engine", "lipsync: bench engine: missing MODEL.onnx"},
        {"bench engine m.onnx --bogus", "lipsync: bench engine: unknown option '--bogus'"},
        {"bench engine m.onnx --runs", "lipsync: bench engine: missing the value of --runs"},
        {"bench engine m.onnx --layout", "lipsync: bench engine: missing the value of --layout"},
        {"bench engine m.onnx extra.onnx", "bench engine: unexpected argument 'extra.onnx'"},
        {"bench pipeline", "lipsync: bench pipeline: missing MODEL_DIR"},
        {"bench mel --runs", "lipsync: bench mel: missing the value of --runs"},
        {"bench image extra", "lipsync: bench image: unexpected argument 'extra'"},
        {"info", "lipsync: info: missing MODEL.onnx"},
        {"info m.onnx --bogus", "lipsync: info: unknown option '--bogus'"},
        {"bench pipeline dir --bogus", "lipsync: bench pipeline: unknown option '--bogus'"},
        {"bench pipeline dir --runs", "lipsync: bench pipeline: missing the value of --runs"},
        {"bench pipeline dir --batches 1,x", "lipsync: --batches wants an integer in 1..64, got 'x'"},
        {"bench pipeline dir --batches 1,2,3,4,5,6,7,8,9", "lipsync: --batches takes at most 8 values"},
        {"bench pipeline dir other", "bench pipeline: unexpected argument 'other'"},
        {"bench serve --models-root r --model m --clients 1,,2",
         "lipsync: --clients wants an integer in 1..64, got ''"},
        {"bench serve --models-root r --model m --mode slow",
         "lipsync: bench serve: --mode slow: want live, fast, both or batch"},
        {"avatar", "lipsync: avatar: missing the subcommand"},
        {"avatar prepare", "lipsync: avatar prepare: missing SRC"},
        {"avatar prepare dataset", "lipsync: avatar prepare: missing -o DIR"},
        {"avatar info", "lipsync: avatar info: missing DIR"},
        {"avatar frob x", "lipsync: avatar: unknown subcommand 'frob'"},
        {"model", "lipsync: model: missing the subcommand"},
        {"model check", "lipsync: model check: missing DIR"},
        {"model frob x", "lipsync: model: unknown subcommand 'frob'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect(cases[i].args, 2, cases[i].text, 0);
}

static void test_help_help(void **state)
{
    (void)state;
    expect("help --help", 0, "usage: lipsync help [COMMAND]", 1);
    expect("help -h", 0, "render ", 1);
    expect("help render", 0, "usage: lipsync render", 1);
    expect("help nosuch", 2, "unknown command 'nosuch'", 0);
}

/* The options of infer and bench engine (getopt_long) take effect wherever
 * they stand, in both spellings (--opt V, --opt=V), around the operands. */
static void test_infer_bench_engine_options(void **state)
{
    (void)state;
    const char *models = getenv("LS_MODELS_DIR");
    char args[2048];
    snprintf(args, sizeof args,
             "infer --threads=1 '%s/encoder_op11.onnx' --repeat 2 '%s/encoder_in_b1.npy' "
             "-o '%s/o.npy' --batch 2",
             models, models, test_tmp_dir());
    expect(args, 0, "batch=2 threads=1 precision=fp32 executor=engine runs=2", 1);
    snprintf(args, sizeof args,
             "bench engine --runs=1 '%s/encoder_op11.onnx' --warmup 0 --threads 1 --batch 2 "
             "--layout any --precision fp32",
             models);
    expect(args, 0, "batch=2 threads=1 precision=fp32 layout=any runs=1", 1);
}

/* A NAME= that is not a graph input: the message lists the ones there are.
 * --reference skips compiling the engine (binding comes after it). */
static void test_infer_lists_inputs(void **state)
{
    (void)state;
    const char *models = getenv("LS_MODELS_DIR");
    char args[2048];
    snprintf(args, sizeof args,
             "infer '%s/unet_op11.onnx' visual='%s/unet_in_visual_b1.npy' "
             "audio='%s/unet_in_audio_b1.npy' -o '%s/o.npy' --reference",
             models, models, models, test_tmp_dir());
    expect(args, 1, "no graph input named 'visual' (inputs: input [1,6,320,320], audio [1,32,16,16])", 0);
}

/* Headerless bytes: libsndfile refuses them, and the message suggests --raw;
 * a missing file gets no such hint, and with --raw the same bytes decode. */
static void test_raw_hint(void **state)
{
    (void)state;
    uint64_t seed = 7;
    int16_t pcm[8000];
    for (size_t i = 0; i < 8000; i++) pcm[i] = (int16_t)(test_rand(&seed) & 0xffff);
    const char *path = test_write_tmp("speech.pcm", pcm, sizeof pcm);
    char args[1024];
    snprintf(args, sizeof args, "mel '%s'", path);
    expect(args, 1, "if it is raw PCM, give its format: --raw s16le:RATE:CHANNELS", 0);
    snprintf(args, sizeof args, "render model '%s' -o '%s/x.mp4'", path, test_tmp_dir());
    expect(args, 1, "--raw s16le:RATE:CHANNELS", 0);
    snprintf(args, sizeof args, "mel '%s' --raw s16le:16000:1", path);
    expect(args, 0, "audio:", 1);
    snprintf(args, sizeof args, "mel '%s/nonexistent.pcm'", test_tmp_dir());
    run_result r = run(args);
    assert_int_equal(r.status, 1);
    if (strstr(r.err, "--raw")) fail_msg("a missing file got the --raw hint:\n%s", r.err);
    run_free(&r);
}

/* `mel` reports the frames render makes (windows + 2, test_render_cli
 * checks render's count) next to the windows it writes. */
static void test_mel_frame_count(void **state)
{
    (void)state;
    enum { N = 16000 + 3210 }; /* 1.2 s */
    float *speech = malloc(N * sizeof *speech);
    assert_non_null(speech);
    uint64_t seed = 3;
    for (size_t i = 0; i < N; i++) speech[i] = (float)(test_rand_uniform(&seed) - 0.5);
    const char *path = test_write_tmp("speech.f32", speech, N * sizeof *speech);
    free(speech);
    char args[1024], win[512], text[256];
    snprintf(win, sizeof win, "%s/win.npy", test_tmp_dir());
    snprintf(args, sizeof args, "mel '%s' --raw f32le:16000:1 --windows '%s'", path, win);
    run_result r = run(args);
    assert_int_equal(r.status, 0);
    ls_npy w;
    ls_error err = {0};
    if (ls_npy_read(win, &w, &err)) fail_msg("%s", err.msg);
    int64_t n_win = w.shape[0];
    ls_npy_free(&w);
    assert_int_equal(n_win, (int64_t)ls_mel_window_count(ls_mel_rows(N)));
    snprintf(text, sizeof text, "mel windows (encoder inputs, 25 per second): %lld\n",
             (long long)n_win);
    if (!strstr(r.out, text)) fail_msg("no \"%s\" in:\n%s", text, r.out);
    snprintf(text, sizeof text, "video frames (what render makes): %lld = windows + 2",
             (long long)n_win + 2);
    if (!strstr(r.out, text)) fail_msg("no \"%s\" in:\n%s", text, r.out);
    assert_int_equal(ls_feature_frame_count(n_win), n_win + 2);
    run_free(&r);
}

/* Every option a benchmark's own --help names is in its entry of `bench --help`. */
static void test_bench_usage_lists_arguments(void **state)
{
    (void)state;
    run_result all = run("bench --help");
    assert_int_equal(all.status, 0);
    const char *list = strstr(all.out, "benchmarks:\n");
    assert_non_null(list);
    int benches = 0;
    for (const char *line = strchr(list, '\n') + 1; line[0] == ' ' && line[1] == ' ' && line[2] != ' ';
         line = strchr(line, '\n') + 1) {
        char name[32];
        assert_int_equal(sscanf(line, " %31s", name), 1);
        /* Its entry: this line and the indented ones under it. */
        const char *end = line;
        do end = strchr(end, '\n') + 1; while (!strncmp(end, "    ", 4));
        char *entry = strndup(line, (size_t)(end - line));
        char args[64];
        snprintf(args, sizeof args, "bench %s --help", name);
        run_result one = run(args);
        if (one.status != 0) fail_msg("lipsync %s: exit %d", args, one.status);
        int options = 0;
        for (const char *p = one.out; (p = strstr(p, "--")); p += 2) {
            size_t n = 2;
            while (p[n] && (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z'))) n++;
            if (n == 2 || (p > one.out && !strchr(" [(\n", p[-1]))) continue;
            char opt[48];
            snprintf(opt, sizeof opt, "%.*s", (int)n, p);
            if (!strcmp(opt, "--help")) continue;
            options++;
            /* A whole word: "--batch" must not be found inside "--batches". */
            int found = 0;
            for (const char *q = entry; (q = strstr(q, opt)); q++)
                if (!(q[n] == '-' || (q[n] >= 'a' && q[n] <= 'z'))) found = 1;
            if (!found)
                fail_msg("`lipsync bench %s --help` has %s, which `lipsync bench --help` does not "
                         "list (src/cli/cmd_bench.c):\n%s", name, opt, entry);
        }
        if (!strcmp(name, "pipeline") || !strcmp(name, "engine")) assert_true(options >= 3);
        run_free(&one);
        free(entry);
        benches++;
        line = end - 1;
    }
    assert_int_equal(benches, 5);
    run_free(&all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_argument_named),
        cmocka_unit_test(test_help_help),
        cmocka_unit_test(test_infer_bench_engine_options),
        cmocka_unit_test(test_infer_lists_inputs),
        cmocka_unit_test(test_raw_hint),
        cmocka_unit_test(test_mel_frame_count),
        cmocka_unit_test(test_bench_usage_lists_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
