#!/usr/bin/env bash
# soak.sh LIPSYNC MODEL_DIR WORK_DIR [SECONDS] - one `lipsync serve` on
# loopback under SECONDS (default 150) of mixed, partly hostile load from
# soak.py; then the server must drain and exit 0 on SIGTERM.
set -euo pipefail
lipsync=$1 model_dir=$2 work=$3 seconds=${4:-150}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work/models"
ln -s "$(cd "$model_dir" && pwd)" "$work/models/demo"
pid=""
cleanup() {
  rc=$?
  if [ $rc -ne 0 ]; then echo "---- server log"; tail -n 60 "$work/server.log"; fi
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  wait 2>/dev/null || true
  exit $rc
}
trap cleanup EXIT
fail() { echo "soak: FAIL: $*"; exit 1; }

# Two workers, so one job runs beside the streams (max_jobs 1); streams
# never closed as idle (the slow reader pauses for seconds).
"$lipsync" serve --models-root "$work/models" --preload demo --port 0 --web-root "" \
  --workers 2 --max-sessions 8 --idle-timeout-s 600 >"$work/server.log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 1200); do
  port=$(grep -o '127\.0\.0\.1:[0-9]\+/' "$work/server.log" | head -1 | sed 's/.*:\([0-9]*\)\//\1/' || true)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited at start"
  sleep 0.1
done
[ -n "$port" ] || fail "the server did not start"

/usr/bin/python3 "$here/soak.py" "$port" "$pid" demo "$seconds"

kill -TERM "$pid"
for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the server did not exit within 60 s of SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=""
[ $rc -eq 0 ] || fail "the server exited $rc on SIGTERM"
echo "soak: OK"
