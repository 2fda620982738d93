/* fps.h - the video frame rate.
 *
 * The model family runs at one rate: audio is cut into one mel window per video
 * frame at this rate (audio/windows.h), frame timestamps are index / LS_VIDEO_FPS,
 * and the MP4 writer, models and avatars default to it. It lives in core/ because
 * layers that know nothing of each other (audio/, media/, pipeline/) must agree on it.
 */
#ifndef LS_CORE_FPS_H
#define LS_CORE_FPS_H

#define LS_VIDEO_FPS 25

#endif
