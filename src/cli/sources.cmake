# Subcommands and benchmarks compiled into the lipsync binary.
target_sources(lipsync PRIVATE
  src/cli/bench_image.c)
