/* log.h - what FFmpeg's libraries may print on stderr.
 *
 * FFmpeg logs through one process-wide level (av_log_set_level): libx264's
 * statistics, the AAC encoder's "Qavg" line, demuxer warnings. Our own
 * ls_error messages already say what failed, so programs silence FFmpeg by
 * default and let the user ask for its lines. Libraries here never set the
 * level themselves; the program calls this once in its setup.
 */
#ifndef LS_MEDIA_LOG_H
#define LS_MEDIA_LOG_H

/* verbose 0: FFmpeg prints nothing (AV_LOG_QUIET); 1: its informational
 * lines and up (AV_LOG_INFO, FFmpeg's own default). */
void ls_media_set_log_level(int verbose);

#endif
