/* resize_map.h - the geometry of a Resize node: which source pixels an
 * output pixel reads, and with what weight.
 *
 * One definition for both executors (the reference op in ref.c, the
 * engine's tap tables), so both map pixels identically. Per axis: the
 * attribute's coordinate transform gives a source coordinate, then the
 * nearest mode rounds it to one index, or linear mode splits it into two
 * indices and the weight of the second. Pure functions of their arguments.
 */
#ifndef LS_NN_RESIZE_MAP_H
#define LS_NN_RESIZE_MAP_H

#include <stdint.h>

#include "nn/graph.h"

/* Source coordinate of output index `o` along an axis of in_size -> out_size
 * pixels under the attribute's coordinate transform (scale <= 0: out/in). */
double ls_resize_source(const ls_resize_attr *a, double scale, int64_t o, int64_t in_size,
                        int64_t out_size);
/* Nearest mode: the source index for coordinate x, clamped to [0, in_size). */
int64_t ls_resize_nearest(const ls_resize_attr *a, double x, int64_t in_size);
/* Linear mode: the two source indices and the weight of the second. */
void ls_resize_linear(double x, int64_t in_size, int64_t *i0, int64_t *i1, float *w1);

#endif
