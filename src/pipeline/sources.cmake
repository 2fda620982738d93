target_sources(lipsync_core PRIVATE
  src/pipeline/features.c
  src/pipeline/model.c
  src/pipeline/session.c)
