# avatar/: avatar directories (dataset, frames, prepared), video + landmarks, crop rects,
# frame cache; JSON via cJSON, video via FFmpeg's libraries.
add_library(lipsync_avatar STATIC
  src/avatar/croprect.c
  src/avatar/layout.c
  src/avatar/avatar.c
  src/avatar/video.c
  src/avatar/prepare.c
  src/avatar/painter.c)
target_link_libraries(lipsync_avatar PUBLIC lipsync_image lipsync_core
  PkgConfig::CJSON PkgConfig::LIBAV)
