target_sources(lipsync_core PRIVATE
  src/media/log.c
  src/media/video_writer.c)
target_link_libraries(lipsync_core PUBLIC PkgConfig::LIBAV)
