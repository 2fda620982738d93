# image/: pixel buffers, OpenCV-exact cubic resize, model inputs, compositing, JPEG/PNG, pools.
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
# The encoder drives libjpeg-turbo through its libjpeg API (see codec.h).
pkg_check_modules(JPEG REQUIRED IMPORTED_TARGET libjpeg)
pkg_check_modules(SPNG REQUIRED IMPORTED_TARGET spng)
target_sources(lipsync_core PRIVATE
  src/image/image.c
  src/image/bufpool.c
  src/image/resize.c
  src/image/codec.c
  src/image/face.c)
target_link_libraries(lipsync_core PUBLIC PkgConfig::TURBOJPEG PkgConfig::JPEG PkgConfig::SPNG)
