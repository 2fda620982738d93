#include "media/log.h"

#include <libavutil/log.h>

void ls_media_set_log_level(int verbose)
{
    av_log_set_level(verbose > 0 ? AV_LOG_INFO : AV_LOG_QUIET);
}
