#!/usr/bin/env bash
# rtmp_push.sh LIPSYNC MODEL_DIR WORK_DIR - a stream session pushed to a
# media server: Debian's nginx with libnginx-mod-rtmp on loopback records
# what `lipsync serve` pushes for a stream started with
# "output":"rtmp://127.0.0.1:PORT/live/test" (rtmp_push.py streams an
# espeak-ng sentence and checks the bad outputs and an unreachable server;
# then a second stream, interrupted in the middle, to another key). Each
# recording must hold H.264 (constrained baseline) and AAC, exactly the
# frames the stream pushed (ffprobe -count_frames; all it produced, without
# an interrupt), and audio and video durations within one frame (40 ms) of
# each other. Exits 77 (ctest:
# skipped) without nginx or its RTMP module.
set -euo pipefail
lipsync=$1 model_dir=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
module=/usr/lib/nginx/modules/ngx_rtmp_module.so

nginx=$(command -v nginx || true)
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
if [ -z "$nginx" ] || [ ! -f "$module" ]; then
  echo "rtmp_push: SKIPPED: nginx or libnginx-mod-rtmp is not installed (scripts/install-deps.sh installs them)"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work/logs" "$work/tmp" "$work/rec" "$work/models"
ln -s "$(cd "$model_dir" && pwd)" "$work/models/demo"
server_pid="" nginx_pid=""
cleanup() {
  rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for f in "$work"/*.log "$work"/logs/*.log; do
      [ -s "$f" ] && { echo "---- $f"; tail -n 40 "$f"; }
    done
  fi
  [ -n "$server_pid" ] && { kill -KILL "$server_pid" 2>/dev/null || true; }
  if [ -n "$nginx_pid" ]; then
    # SIGTERM: the master stops its worker and exits. A master killed outright
    # would leave the worker behind, still listening.
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$nginx_pid" 2>/dev/null; then
      for w in $(ps -o pid= --ppid "$nginx_pid" || true); do kill -KILL "$w" 2>/dev/null || true; done
      kill -KILL "$nginx_pid" 2>/dev/null || true
    fi
  fi
  wait 2>/dev/null || true
  exit $rc
}
trap cleanup EXIT
fail() { echo "rtmp_push: FAIL: $*"; exit 1; }
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# nginx in the foreground with its own prefix: an RTMP application that
# records every stream published to it into rec/.
rtmp_port=$(free_port)
{
  echo "load_module $module;"
  # As root, nginx's workers would run as nobody, who may not write here.
  [ "$(id -u)" -eq 0 ] && echo "user root root;"
  cat <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log notice;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:$rtmp_port;
    application live {
      live on;
      record all;
      record_path $work/rec;
    }
  }
}
EOF
} >"$work/nginx.conf"
"$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" -t >"$work/nginx-t.log" 2>&1 ||
  fail "nginx -t refused the configuration: $(cat "$work/nginx-t.log")"
"$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" -g 'daemon off;' \
  >"$work/nginx.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 1 100); do
  (: </dev/tcp/127.0.0.1/"$rtmp_port") 2>/dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited at start"
  sleep 0.1
done

"$lipsync" serve --models-root "$work/models" --preload demo --port 0 --web-root "" \
  --idle-timeout-s 600 --verbose 1 >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 3000); do  # up to 5 min: the model loads before the port is printed
  port=$(grep -o '127\.0\.0\.1:[0-9]\+/' "$work/server.log" | head -1 | sed 's/.*:\([0-9]*\)\//\1/' || true)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
  sleep 0.1
done
[ -n "$port" ] || fail "the server did not start"

# Speech: an espeak-ng sentence (22.05 kHz: the server resamples it).
espeak-ng -w "$work/speech.wav" \
  "Seven jolly foxes waved at the brown bear by the quiet lake, then walked home." ||
  fail "espeak-ng could not synthesise the speech"

closed_port=$(free_port)  # nothing listens there
/usr/bin/python3 "$here/rtmp_push.py" "$port" demo "$work/speech.wav" \
  "rtmp://127.0.0.1:$rtmp_port/live/test" "rtmp://127.0.0.1:$closed_port/live/test" \
  "$work/frames.txt"
# "done" came after the push's trailer and unpublish were sent, in order on
# one connection: a recording is whole once nginx has written what it
# read, i.e. once its size stops changing.
check_recording() {
  local rec="$work/rec/$1.flv" frames=$2 last=-1 same=0 size vinfo ainfo got
  for _ in $(seq 1 100); do
    size=$(stat -c %s "$rec" 2>/dev/null || echo 0)
    if [ "$size" -gt 0 ] && [ "$size" = "$last" ]; then
      same=$((same + 1))
      [ $same -ge 3 ] && break
    else
      same=0
    fi
    last=$size
    sleep 0.2
  done
  [ -s "$rec" ] || fail "nginx recorded nothing for $1 (rec/: $(ls "$work/rec"))"
  vinfo=$(ffprobe -v error -select_streams v:0 -count_frames \
    -show_entries stream=codec_name,profile,width,height,nb_read_frames -of default=nw=1 "$rec")
  ainfo=$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name -of default=nw=1 "$rec")
  echo "rtmp_push: $1: video: $(echo $vinfo); audio: $(echo $ainfo)"
  echo "$vinfo" | grep -qx 'codec_name=h264' || fail "$1: video is not H.264"
  echo "$vinfo" | grep -qx 'profile=Constrained Baseline' || fail "$1: video is not constrained baseline"
  echo "$ainfo" | grep -qx 'codec_name=aac' || fail "$1: audio is not AAC"
  got=$(echo "$vinfo" | sed -n 's/^nb_read_frames=//p')
  [ "$got" = "$frames" ] || fail "$1: recorded $got video frames, the stream pushed $frames"
  # Durations from the packets (FLV keeps none per stream): first pts to
  # the end of the last packet; a video packet lasts 1/25 s.
  ffprobe -v error -show_entries packet=codec_type,pts_time,duration_time -of csv=p=0 "$rec" \
    >"$work/$1.csv"
  /usr/bin/python3 - "$work/$1.csv" "$frames" "$1" <<'EOF'
import sys
first, end = {}, {}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) < 2 or f[1] in ("", "N/A"):
        continue
    kind, pts = f[0], float(f[1])
    dur = float(f[2]) if len(f) > 2 and f[2] not in ("", "N/A") else 0.0
    if kind == "video":
        dur = 0.04
    first[kind] = min(first.get(kind, pts), pts)
    end[kind] = max(end.get(kind, pts + dur), pts + dur)
v = end["video"] - first["video"]
a = end["audio"] - first["audio"]
frames, name = int(sys.argv[2]), sys.argv[3]
print("rtmp_push: %s: video %.3f s (%d frames) from %.3f, audio %.3f s from %.3f"
      % (name, v, frames, first["video"], a, first["audio"]))
if abs(v - frames * 0.04) > 0.001:
    sys.exit("rtmp_push: FAIL: %s: video lasts %.3f s, %d frames are %.3f s"
             % (name, v, frames, frames * 0.04))
if abs(a - v) > 0.040:
    sys.exit("rtmp_push: FAIL: %s: audio %.3f s and video %.3f s differ by more than a frame"
             % (name, a, v))
EOF
}
check_recording test "$(cat "$work/frames.txt")"
check_recording test-interrupt "$(cat "$work/frames.txt-interrupt")"

kill -TERM "$server_pid"
for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$server_pid" 2>/dev/null && fail "the server did not exit on SIGTERM"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ $rc -eq 0 ] || fail "the server exited with $rc"
echo "rtmp_push: PASS"
