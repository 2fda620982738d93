target_sources(lipsync_core PRIVATE)
