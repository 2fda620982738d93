#!/usr/bin/env bash
# Builds lipsync and runs its whole test suite.
#   scripts/test.sh            plain (Release) build in build/
#   scripts/test.sh address    AddressSanitizer + UndefinedBehaviorSanitizer, in build-asan/
#   scripts/test.sh thread     ThreadSanitizer, in build-tsan/
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-}"
case "$kind" in
  "")      dir=build;      flags=(-DCMAKE_BUILD_TYPE=Release -DLS_BUILD_TESTS=ON) ;;
  address) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_BUILD_TESTS=ON -DLS_SANITIZE=address) ;;
  thread)  dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_BUILD_TESTS=ON -DLS_SANITIZE=thread) ;;
  *) echo "usage: $0 [address|thread]" >&2; exit 2 ;;
esac
jobs="$(nproc)"
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
cd "$dir" && ctest --output-on-failure -j "$jobs"
