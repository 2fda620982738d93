#include "support/test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *test_data_path(char *buf, size_t cap, const char *rel)
{
    const char *root = getenv("LS_TEST_DATA");
    snprintf(buf, cap, "%s/%s", root ? root : "tests/data", rel);
    return buf;
}

uint8_t *test_read_data(const char *rel, size_t *len)
{
    char path[1024];
    test_data_path(path, sizeof path, rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(n > 0 ? (size_t)n : 1);
    if (!bytes || n < 0 || fread(bytes, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    fclose(f);
    *len = (size_t)n;
    return bytes;
}

const char *test_shared_path(char *buf, size_t cap, const char *rel)
{
    const char *root = getenv("LS_SHARED");
    if (!root) return NULL;
    snprintf(buf, cap, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

const char *test_tmp_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("LS_BUILD_DIR");
        snprintf(dir, sizeof dir, "%s/test-tmp/%ld", base ? base : "/tmp", (long)getpid());
        char cmd[320];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", dir);
    }
    return dir;
}

const char *test_write_tmp(const char *name, const void *bytes, size_t len)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmp_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    if (len) fwrite(bytes, 1, len, f);
    fclose(f);
    return path;
}

uint64_t test_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

double test_rand_uniform(uint64_t *s)
{
    return (double)(test_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}
