/* test_util.h - helpers shared by the cmocka tests. */
#ifndef LS_TEST_UTIL_H
#define LS_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Path of a file under tests/data (static buffer per call site is fine). */
const char *test_data_path(char *buf, size_t cap, const char *rel);
/* The bytes of a file under tests/data (malloc'd; the test fails if it
 * cannot be read). */
uint8_t *test_read_data(const char *rel, size_t *len);
/* Path of a file under ../shared, or NULL when that folder is absent. */
const char *test_shared_path(char *buf, size_t cap, const char *rel);
/* A scratch directory unique to this test process (created on first use). */
const char *test_tmp_dir(void);
/* Writes bytes to a file under the scratch directory; returns its path. */
const char *test_write_tmp(const char *name, const void *bytes, size_t len);

/* Deterministic PRNG for tests (xorshift64*). */
uint64_t test_rand(uint64_t *state);
double test_rand_uniform(uint64_t *state); /* [0, 1) */

#endif
