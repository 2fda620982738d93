add_library(lipsync_media STATIC
  src/media/log.c
  src/media/video_writer.c)
target_link_libraries(lipsync_media PUBLIC lipsync_core PkgConfig::LIBAV)
