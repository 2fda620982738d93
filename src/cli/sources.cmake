# Subcommands and benchmarks compiled into the lipsync binary.
target_sources(lipsync PRIVATE)
