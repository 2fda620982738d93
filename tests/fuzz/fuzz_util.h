/* fuzz_util.h - what the libFuzzer targets share: the input size cap and a
 * private temporary folder for the parsers that only read files.
 *
 * The folder is made once per process under $TMPDIR (scripts/fuzz.sh points
 * it into build-fuzz/) and removed at exit; targets write nothing elsewhere.
 */
#ifndef LS_FUZZ_UTIL_H
#define LS_FUZZ_UTIL_H

#include <ftw.h> /* nftw: the build defines _GNU_SOURCE */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Inputs above this are skipped: the parsers' own limits are tested, not
 * the machine's memory. */
#define FUZZ_MAX_INPUT (1u << 20)

static char fuzz_dir_path[4096];

static inline int fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void fuzz_rm_dir(void)
{
    if (fuzz_dir_path[0]) nftw(fuzz_dir_path, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's temporary folder, made on first use; exits if it cannot be. */
static inline const char *fuzz_dir(void)
{
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/ls-fuzz-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir_path)) {
        perror("fuzz: mkdtemp");
        exit(1);
    }
    atexit(fuzz_rm_dir);
    return fuzz_dir_path;
}

/* dir/name (in out, cap bytes). */
static inline const char *fuzz_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fuzz_dir(), name);
    return out;
}

/* Writes len bytes to path; exits on failure (a broken harness, not a find). */
static inline void fuzz_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static inline void fuzz_mkdir(const char *path)
{
    if (mkdir(path, 0700) && access(path, F_OK)) {
        perror(path);
        exit(1);
    }
}

/* With LS_FUZZ_VERBOSE set (replaying a file by hand), says what the parser
 * answered: its message, or "ok". */
static inline void fuzz_note(const char *what, int rc, const char *msg)
{
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("LS_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, rc == 0 ? "ok" : msg);
}

/* An invariant the parser promises: a failure is a finding. */
#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

#endif
