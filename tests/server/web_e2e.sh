#!/usr/bin/env bash
# web_e2e.sh LIPSYNC MODELS_ROOT MODEL_ID WORK_DIR - the browser client end to
# end: starts `lipsync serve` on a free port with a token, makes speech-like
# WAVs, and runs web_e2e.mjs's scenarios in headless Chromium (Debian's,
# driven by a pinned playwright-core installed into WORK_DIR on first use).
set -euo pipefail
lipsync=$1 root=$2 model=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
pw_version=1.56.1
mkdir -p "$work"
if [ ! -f "$work/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$pw_version\"" "$work/node_modules/playwright-core/package.json"; then
  npm install --prefix "$work" --no-audit --no-fund --loglevel=error "playwright-core@$pw_version"
fi
[ -x /usr/bin/chromium ] || { echo "web_e2e: /usr/bin/chromium is missing (scripts/install-deps.sh)"; exit 1; }

# speech.wav: 2 s of a speech-like signal (the whole file session);
# short.wav: 1.2 s of it (Interrupt and Stop); mic.wav: the fake microphone's
# loop, silence, so that live mode keeps up on a slow machine (silent frames
# skip the UNet) and the server's stall alone makes it fall behind.
/usr/bin/python3 - "$work/speech.wav" "$work/short.wav" "$work/mic.wav" <<'PY'
import math, struct, sys, wave
def write(path, secs, voiced):
    rate = 22050
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
        frames = bytearray()
        for i in range(int(rate * secs)):
            t = i / rate
            env = 0.5 + 0.5 * math.sin(2 * math.pi * 3.5 * t) if t < voiced else 0.0
            v = env * (0.3 * math.sin(2 * math.pi * 140 * t) + 0.1 * math.sin(2 * math.pi * 420 * t))
            frames += struct.pack("<h", int(v * 32767))
        w.writeframes(bytes(frames))
write(sys.argv[1], 2.0, 2.0)
write(sys.argv[2], 1.2, 1.2)
write(sys.argv[3], 2.0, 0.0)
PY

log="$work/serve.log"
"$lipsync" serve --models-root "$root" --preload "$model" --port 0 --token e2e-token --web-root "$here/../../web" --verbose 1 \
  >"$log" 2>&1 &
pid=$!
trap 'kill -CONT $pid 2>/dev/null || true; kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 1200); do  # up to 2 min: the model loads before the port is printed
  port=$(grep -o '127\.0\.0\.1:[0-9]\+/' "$log" | head -1 | sed 's/.*:\([0-9]*\)\//\1/' || true)
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "web_e2e: server did not start"; cat "$log"; exit 1; }
# The scenarios stop the server for a moment (SIGSTOP) to make live mode fall behind.
# 420 s: with the server's start (up to 2 min) within ctest's 600, so that a
# failure still prints the server's log below.
rc=0
timeout 420 node "$here/web_e2e.mjs" "http://127.0.0.1:$port/" e2e-token "$model" \
  "$work/speech.wav" "$work/short.wav" "$work/mic.wav" "$work" "$pid" || rc=$?
[ $rc -eq 0 ] || { echo "web_e2e: server log:"; tail -n 40 "$log"; }
# --verbose 1: a line per request (method, path, status, bytes, duration)
# and per stream (open; at the close its frames and why it closed).
for want in "GET / 200 file index.html" "GET /v1/models 200 [0-9]+ bytes [0-9.]+ ms" \
            "POST /v1/batch 200 [0-9]+ bytes [0-9.]+ ms" "stream [0-9]+ open: model $model" \
            "stream [0-9]+ closed after [0-9.]+ s: [1-9][0-9]* frames sent, 1000 done"; do
  grep -qE "$want" "$log" || { echo "web_e2e: no '$want' in the verbose server log"; rc=1; }
done
exit $rc
