# core/: what every layer shares and nothing above it knows of: status codes, timing, .npy,
# the video rate, the thread pool, the byte buffer and the buffer pool.
add_library(lipsync_core STATIC
  src/core/error.c
  src/core/clock.c
  src/core/npy.c
  src/core/threadpool.c
  src/core/buf.c
  src/core/bufpool.c)
# Headers are named from src/ ("core/error.h"), by this layer and every one above it.
target_include_directories(lipsync_core PUBLIC ${CMAKE_SOURCE_DIR}/src)
# The C runtime's threads and maths, which every layer uses.
target_link_libraries(lipsync_core PUBLIC Threads::Threads m)
