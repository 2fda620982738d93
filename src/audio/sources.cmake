add_library(lipsync_audio STATIC
  src/audio/decode.c
  src/audio/pcm.c
  src/audio/resample.c
  src/audio/mel.c
  src/audio/windows.c)
# FFmpeg decodes Ogg (decode.c says why). fftw3_threads provides
# fftw_make_planner_thread_safe (sessions plan from many threads).
target_link_libraries(lipsync_audio PUBLIC lipsync_core
  PkgConfig::SNDFILE PkgConfig::LIBAV PkgConfig::SOXR PkgConfig::FFTW3 fftw3_threads)
