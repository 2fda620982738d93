add_library(lipsync_pipeline STATIC
  src/pipeline/features.c
  src/pipeline/model.c
  src/pipeline/session.c)
target_link_libraries(lipsync_pipeline PUBLIC lipsync_avatar lipsync_audio lipsync_nn
  lipsync_image lipsync_core PkgConfig::CJSON)
