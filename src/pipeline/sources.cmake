add_library(lipsync_pipeline STATIC
  src/pipeline/features.c
  src/pipeline/model.c
  src/pipeline/calibration.c
  src/pipeline/quantize.c
  src/pipeline/silence.c
  src/pipeline/session.c
  src/pipeline/drive.c)
target_link_libraries(lipsync_pipeline PUBLIC lipsync_avatar lipsync_audio lipsync_nn
  lipsync_image lipsync_core PkgConfig::CJSON)
