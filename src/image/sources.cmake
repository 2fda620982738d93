# image/: pixel buffers, OpenCV-exact cubic resize, model inputs, compositing, JPEG/PNG.
# The encoder drives libjpeg-turbo through its libjpeg API (see codec.h).
add_library(lipsync_image STATIC
  src/image/image.c
  src/image/resize.c
  src/image/codec.c
  src/image/face.c)
target_link_libraries(lipsync_image PUBLIC lipsync_core
  PkgConfig::TURBOJPEG PkgConfig::JPEG PkgConfig::SPNG)
