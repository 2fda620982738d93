/* clock.h - monotonic time and small statistics helpers for timings. */
#ifndef LS_CORE_CLOCK_H
#define LS_CORE_CLOCK_H

#include <stddef.h>

/* Seconds on the monotonic clock; only differences are meaningful. */
double ls_now(void);

/* Median of v[0..n) (sorts v in place). Returns 0 for n == 0. */
double ls_median(double *v, size_t n);

/* p-th percentile (0..100) of v[0..n), nearest-rank, sorts v in place. */
double ls_percentile(double *v, size_t n, double p);

#endif
