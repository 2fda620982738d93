target_sources(lipsync_core PRIVATE
  src/core/error.c
  src/core/clock.c
  src/core/npy.c
  src/core/threadpool.c
  src/core/bufpool.c
  src/core/buf.c)
