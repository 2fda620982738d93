target_sources(lipsync_core PRIVATE)
target_link_libraries(lipsync_core PUBLIC PkgConfig::SNDFILE PkgConfig::SOXR PkgConfig::FFTW3)
