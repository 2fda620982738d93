/* resize_map.c - where a resize's output pixels read from (resize_map.h). */
#include "nn/resize_map.h"

#include <math.h>

double ls_resize_source(const ls_resize_attr *a, double scale, int64_t o, int64_t in_size,
                        int64_t out_size)
{
    if (scale <= 0) scale = (double)out_size / (double)in_size;
    switch (a->coord) {
    case LS_COORD_ALIGN_CORNERS:
        return out_size == 1 ? 0.0 : (double)o * (double)(in_size - 1) / (double)(out_size - 1);
    case LS_COORD_ASYMMETRIC: return (double)o / scale;
    case LS_COORD_PYTORCH_HALF_PIXEL:
        if (out_size == 1) return 0.0;
        return ((double)o + 0.5) / scale - 0.5;
    case LS_COORD_HALF_PIXEL:
    default: return ((double)o + 0.5) / scale - 0.5;
    }
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

int64_t ls_resize_nearest(const ls_resize_attr *a, double x, int64_t in_size)
{
    double r;
    switch (a->nearest) {
    case LS_NEAREST_ROUND_PREFER_CEIL: r = floor(x + 0.5); break;
    case LS_NEAREST_FLOOR: r = floor(x); break;
    case LS_NEAREST_CEIL: r = ceil(x); break;
    case LS_NEAREST_ROUND_PREFER_FLOOR:
    default: r = ceil(x - 0.5); break;
    }
    return clamp_index((int64_t)r, in_size);
}

void ls_resize_linear(double x, int64_t in_size, int64_t *i0, int64_t *i1, float *w1)
{
    if (x < 0) x = 0;
    if (x > (double)(in_size - 1)) x = (double)(in_size - 1);
    int64_t f = (int64_t)floor(x);
    *i0 = f;
    *i1 = f + 1 < in_size ? f + 1 : in_size - 1;
    *w1 = (float)(x - (double)f);
}
