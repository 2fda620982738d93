#!/usr/bin/env bash
# lb_drain.sh LIPSYNC MODELS_ROOT MODEL_ID WORK_DIR - graceful drain behind a
# load balancer: two `lipsync serve` instances behind Debian's nginx, run
# with the shipped docs/nginx-lipsync.conf (only its ports changed), all on
# loopback. lb_drain.py drains the instance holding a running stream with
# SIGTERM and checks that new sessions go through nginx to the other one
# and that the running stream gets all its frames; then the drained
# instance must exit 0 by itself, long before its drain_timeout_s, and the
# other one too on its own SIGTERM. Exits 77 (ctest: skipped) without nginx.
set -euo pipefail
lipsync=$1 root=$2 model=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
conf_src="$here/../../docs/nginx-lipsync.conf"

nginx=$(command -v nginx || true)
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
if [ -z "$nginx" ]; then
  echo "lb_drain: SKIPPED: nginx is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work/logs" "$work/tmp"
pids=()
nginx_pid=""
show_logs() {
  for f in "$work"/*.log "$work"/logs/*.log; do
    [ -s "$f" ] && { echo "---- $f"; tail -n 40 "$f"; }
  done
  return 0
}
cleanup() {
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 77 ] && show_logs
  for p in "${pids[@]}" $nginx_pid; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit $rc
}
trap cleanup EXIT
fail() { echo "lb_drain: FAIL: $*"; exit 1; }

# Waits (bounded) for a child to exit; returns its exit status.
wait_exit() {
  local pid=$1 secs=$2
  for _ in $(seq 1 $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "pid $pid still running after $secs s"
  local rc=0
  wait "$pid" || rc=$?
  return $rc
}

# The instances: a drain deadline far beyond the test, so an exit before it
# shows the drain ended because its sessions did; streams never closed as
# idle (the client pauses between messages, for long on loaded machines).
start_instance() {
  "$lipsync" serve --models-root "$root" --preload "$model" --port 0 --web-root "" \
    --drain-timeout-s 900 --idle-timeout-s 3600 >"$work/$1.log" 2>&1 &
  pids+=($!)
}
port_of() {
  local log="$work/$1.log" pid=$2 port=""
  for _ in $(seq 1 3000); do  # up to 5 min: the model loads before the port is printed
    port=$(grep -o '127\.0\.0\.1:[0-9]\+/' "$log" | head -1 | sed 's/.*:\([0-9]*\)\//\1/' || true)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "instance $1 exited at start"
    sleep 0.1
  done
  [ -n "$port" ] || fail "instance $1 did not start"
  echo "$port"
}
start_instance a
start_instance b
pid_a=${pids[0]} pid_b=${pids[1]}
port_a=$(port_of a "$pid_a")
port_b=$(port_of b "$pid_b")

# nginx on a free loopback port, with its own prefix, logs and temp files
# here, in the foreground (daemon off).
lb_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$port_a/" -e "s/127\.0\.0\.1:8082/127.0.0.1:$port_b/" \
    -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$lb_port;/" "$conf_src" >"$work/lipsync.conf"
for want in "127.0.0.1:$port_a " "127.0.0.1:$port_b " "listen 127.0.0.1:$lb_port;"; do
  grep -qF "$want" "$work/lipsync.conf" || fail "docs/nginx-lipsync.conf: no '$want' after substitution"
done
{
  # As root, nginx's workers would run as nobody, who may not reach the
  # temp files under this build tree.
  [ "$(id -u)" -eq 0 ] && echo "user root root;"
  cat <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log notice;
events { worker_connections 256; }
http {
  access_log $work/logs/access.log;
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
  include $work/lipsync.conf;
}
EOF
} >"$work/nginx.conf"
"$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" -t >"$work/nginx-t.log" 2>&1 ||
  fail "nginx -t refused the configuration: $(cat "$work/nginx-t.log")"
"$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" -g 'daemon off;' \
  >"$work/nginx.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 1 100); do
  (: </dev/tcp/127.0.0.1/"$lb_port") 2>/dev/null && break
  kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited at start"
  sleep 0.1
done
echo "lb_drain: instances on $port_a (pid $pid_a) and $port_b (pid $pid_b), nginx on $lb_port"

client_rc=0
/usr/bin/python3 "$here/lb_drain.py" "$lb_port" "$port_a" "$pid_a" "$port_b" "$pid_b" "$model" \
  >"$work/client.out" 2>&1 || client_rc=$?
cat "$work/client.out"
[ $client_rc -eq 0 ] || fail "client (exit $client_rc)"
drained=$(tail -n 1 "$work/client.out")
[ "$drained" = "$pid_a" ] || [ "$drained" = "$pid_b" ] || fail "client named no instance"
survivor=$pid_b drained_log=a
[ "$drained" = "$pid_b" ] && survivor=$pid_a drained_log=b

# Its last session over, the drained instance exits 0 by itself.
rc=0
wait_exit "$drained" 120 || rc=$?
[ $rc -eq 0 ] || fail "the drained instance exited $rc"
grep -q "drained, exiting" "$work/$drained_log.log" || fail "no 'drained, exiting' in the drained instance's log"
echo "lb_drain: the drained instance exited 0"

# nginx still serves, from the other instance.
code=$(/usr/bin/python3 -c '
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=60).status)' "$lb_port")
[ "$code" = 200 ] || fail "/health through nginx after the drain: $code"

kill -TERM "$survivor"
rc=0
wait_exit "$survivor" 120 || rc=$?
[ $rc -eq 0 ] || fail "the other instance exited $rc on SIGTERM with no session"
kill -QUIT "$nginx_pid"
wait_exit "$nginx_pid" 30 || true
nginx_pid=""
pids=()
echo "lb_drain: OK"
