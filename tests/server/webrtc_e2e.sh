#!/usr/bin/env bash
# webrtc_e2e.sh LIPSYNC MODELS_ROOT MODEL_ID WORK_DIR [SECONDS] - WebRTC end
# to end: starts `lipsync serve` on a free port (a token, max_sessions 2),
# makes a speech-like WAV for Chromium's fake microphone, and runs
# webrtc_e2e.mjs in headless Chromium (Debian's, driven by the pinned
# playwright-core that web_e2e.sh installs into WORK_DIR on first use).
set -euo pipefail
lipsync=$1 root=$2 model=$3 seconds=${5:-10}
mkdir -p "$4"; work=$(cd "$4" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
pw_version=1.56.1
mkdir -p "$work"
if [ ! -f "$work/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$pw_version\"" "$work/node_modules/playwright-core/package.json"; then
  npm install --prefix "$work" --no-audit --no-fund --loglevel=error "playwright-core@$pw_version"
fi
[ -x /usr/bin/chromium ] || { echo "webrtc_e2e: /usr/bin/chromium is missing (scripts/install-deps.sh)"; exit 1; }

# speech.wav: a speech-like signal in bursts with pauses (Chromium loops it).
/usr/bin/python3 - "$work/speech.wav" <<'PY'
import math, struct, sys, wave
rate = 48000
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    frames = bytearray()
    for i in range(rate * 4):
        t = i / rate
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 3.5 * t) if (t % 2.0) < 1.2 else 0.0
        v = env * (0.3 * math.sin(2 * math.pi * 140 * t) + 0.1 * math.sin(2 * math.pi * 420 * t))
        frames += struct.pack("<h", int(v * 32767))
    w.writeframes(bytes(frames))
PY

log="$work/serve.log"
"$lipsync" serve --models-root "$root" --preload "$model" --port 0 --token rtc-token \
  --max-sessions 2 --verbose ${WEBRTC_E2E_VERBOSE:-1} >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 1200); do  # up to 2 min: the model loads before the port is printed
  port=$(grep -o '127\.0\.0\.1:[0-9]\+/' "$log" | head -1 | sed 's/.*:\([0-9]*\)\//\1/' || true)
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "webrtc_e2e: server did not start"; cat "$log"; exit 1; }
rc=0
timeout 400 node "$here/webrtc_e2e.mjs" "http://127.0.0.1:$port/" rtc-token "$model" "$work" \
  "$work/speech.wav" "$seconds" || rc=$?
[ $rc -eq 0 ] || { echo "webrtc_e2e: server log:"; tail -n 40 "$log"; }
kill -TERM $pid
wait $pid || { echo "webrtc_e2e: the server did not exit cleanly"; rc=1; }
trap - EXIT
exit $rc
