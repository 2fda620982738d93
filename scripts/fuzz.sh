#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan + UBSan) into build-fuzz/ and runs them.
#   scripts/fuzz.sh [TARGET|all] [SECONDS]
# For each target (all by default, or the one named: `pcm` or `fuzz_pcm`): replays its
# seeds (tests/fuzz/corpus/<target>/) and past crashes (tests/fuzz/regress/<target>/), then
# fuzzes for SECONDS (default 60; 0: replay only). New inputs go to build-fuzz/corpus/<target>/
# (not committed); a crash is kept in build-fuzz/crashes/<target>/ and the script exits 1.
# Prints the executions per target. LS_FUZZ_JOBS sets the build's parallelism (default nproc);
# LS_FUZZ_SEED fixes libFuzzer's random seed (CI does: a run explores the same inputs each time,
# so a red CI means a real finding in the change, not a lucky draw).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
secs="${2:-60}"
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [TARGET|all] [SECONDS]" >&2; exit 2 ;; esac

targets=()
for f in tests/fuzz/fuzz_*.c; do
  t="$(basename "$f" .c)"
  t="${t#fuzz_}"
  if [ "$which" = all ] || [ "$which" = "$t" ] || [ "$which" = "fuzz_$t" ]; then targets+=("$t"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no target '$which'; targets: $(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//' | tr '\n' ' ')" >&2
  exit 2
fi

dir=build-fuzz
command -v clang >/dev/null || { echo "fuzz: clang is needed (scripts/install-deps.sh)" >&2; exit 2; }
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLS_FUZZ=ON -DLS_BUILD_TESTS=OFF >/dev/null
cmake --build "$dir" -j "${LS_FUZZ_JOBS:-$(nproc)}" --target ls_fuzz

# Targets that need files write them in a folder of their own under TMPDIR.
export TMPDIR="$PWD/$dir/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}"
# Leaks inside third-party libraries (listed, with reasons, in the file) are not findings.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Findings besides crashes: one allocation above 1 GiB, 2 GiB resident, 30 s on one input.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=30)
seed=()
if [ -n "${LS_FUZZ_SEED:-}" ]; then seed=(-seed="$LS_FUZZ_SEED"); fi

summary=()
failed=0
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz/fuzz_$t"
  seeds="tests/fuzz/corpus/$t"
  regress="tests/fuzz/regress/$t"
  work="$dir/corpus/$t"
  crashes="$dir/crashes/$t"
  log="$dir/logs/$t.log"
  mkdir -p "$work" "$crashes" "$(dirname "$log")"
  : >"$log"
  # Replay: every seed and regression input once, by name.
  mapfile -t inputs < <(find "$seeds" "$regress" -type f 2>/dev/null | sort)
  echo "== fuzz_$t: replaying ${#inputs[@]} inputs"
  rc=0
  if [ ${#inputs[@]} -gt 0 ]; then
    "$bin" "${limits[@]}" -artifact_prefix="$crashes/" "${inputs[@]}" >>"$log" 2>&1 || rc=$?
  fi
  execs=${#inputs[@]}
  if [ $rc -eq 0 ] && [ "$secs" -gt 0 ]; then
    echo "== fuzz_$t: fuzzing for $secs s"
    dirs=("$work" "$seeds")
    [ -d "$regress" ] && dirs+=("$regress")
    "$bin" "${limits[@]}" "${seed[@]}" -max_total_time="$secs" -print_final_stats=1 \
      -artifact_prefix="$crashes/" "${dirs[@]}" >>"$log" 2>&1 || rc=$?
    n="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    execs=$((execs + ${n:-0}))
  fi
  if [ $rc -ne 0 ]; then
    failed=1
    # The fuzzing run writes the input to crashes/; a replayed file is its own reproducer.
    crash="$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')"
    [ -n "$crash" ] || crash="$(sed -n 's/^Running: //p' "$log" | tail -1)"
    echo "!! fuzz_$t FAILED (exit $rc): ${crash:-see $log}"
    grep -E "ERROR: |runtime error:|invariant failed|SUMMARY:" "$log" | head -5 | sed 's/^/   /'
    summary+=("$(printf '%-16s %12s executions  CRASH %s' "$t" "$execs" "${crash:-(see $log)}")")
  else
    summary+=("$(printf '%-16s %12s executions  ok' "$t" "$execs")")
  fi
done
echo "== fuzz summary (replay + ${secs} s each; logs in $dir/logs/)"
printf '%s\n' "${summary[@]}"
exit $failed
