/* fuzz_lms - a landmark file (.lms, 110 lines "x y") of an avatar dataset and
 * its crop rectangle: ls_croprect_parse on the bytes as they are (not NUL
 * terminated, so an over-read is seen). */
#include "avatar/croprect.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT) return 0;
    ls_rect r;
    ls_error err = {0};
    int rc = ls_croprect_parse((const char *)data, size, "fuzz.lms", &r, &err);
    fuzz_note("lms", rc, err.msg);
    if (rc == LS_OK) {
        /* Coordinates are bounded by 1e6, so y2 = y1 + (x2 - x1) cannot overflow. */
        FUZZ_CHECK(r.x1 >= -1000000 && r.x1 <= 1000000 && r.x2 >= -1000000 && r.x2 <= 1000000);
        FUZZ_CHECK(r.y2 - r.y1 == r.x2 - r.x1);
    } else {
        FUZZ_CHECK(err.msg[0]);
    }
    return 0;
}
