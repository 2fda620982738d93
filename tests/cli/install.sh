#!/usr/bin/env bash
# install.sh CMAKE BUILD_DIR WORK_DIR - `cmake --install` into a fresh prefix,
# then the installed binary as a user runs it: `lipsync serve` finds the
# browser client in PREFIX/share/lipsync/web (beside its bin/, not the source
# tree) and serves it at /, and a --web-root that is no client's folder fails
# at start with a message naming it.
set -euo pipefail
cmake=$1 build=$2 work=$3
rm -rf "$work"
mkdir -p "$work/models"  # an empty models root: the server starts without models
prefix="$work/prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"
lipsync="$prefix/bin/lipsync"
web="$(cd "$prefix/share/lipsync/web" && pwd -P)"
for f in "$lipsync" "$web/index.html" "$web/app.js" "$web/style.css" "$web/favicon.svg"; do
  [ -e "$f" ] || { echo "install: $f was not installed"; cat "$work/install.log"; exit 1; }
done
# The settings' environment variables would override the default under test.
unset LS_WEB_ROOT LS_MODELS_ROOT LS_PORT LS_TOKEN LS_PRELOAD

log="$work/serve.log"
"$lipsync" serve --port 0 --models-root "$work/models" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 600); do
  port=$(grep -o '127\.0\.0\.1:[0-9]\+/' "$log" | head -1 | sed 's/.*:\([0-9]*\)\//\1/' || true)
  [ -n "$port" ] && grep -q "browser client" "$log" && break
  kill -0 $pid 2>/dev/null || { echo "install: the installed server exited"; cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "install: the installed server did not start"; cat "$log"; exit 1; }
grep -qF "browser client at / from $web" "$log" ||
  { echo "install: the installed server does not serve $web:"; cat "$log"; exit 1; }
url="http://127.0.0.1:$port/"
if command -v curl >/dev/null; then
  curl -fsS -o "$work/index.html" "$url"
else
  /usr/bin/python3 -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=30).read())' \
    "$url" "$work/index.html"
fi
cmp "$work/index.html" "$web/index.html" ||
  { echo "install: GET / is not the installed index.html"; exit 1; }
# The icon browsers ask for on their own.
/usr/bin/python3 - "${url}favicon.ico" "$web/favicon.svg" <<'PY' || exit 1
import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1], timeout=30)
body = r.read()
if r.status != 200 or r.headers["Content-Type"] != "image/svg+xml" or body != open(sys.argv[2], "rb").read():
    sys.exit("install: /favicon.ico is %d %s, not the installed favicon.svg" % (r.status, r.headers["Content-Type"]))
PY
kill $pid
wait $pid || { echo "install: the server did not drain cleanly"; cat "$log"; exit 1; }
trap - EXIT

# A --web-root without the client fails at start (a bound on it: a server
# that started anyway would run until killed).
expect_refused() {  # DIR TEXT
  local rc=0
  timeout 60 "$lipsync" serve --port 0 --models-root "$work/models" --web-root "$1" \
    >"$work/refused.log" 2>&1 || rc=$?
  if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -qF "$2" "$work/refused.log"; then
    echo "install: --web-root $1: exit $rc, wanted a failure saying \"$2\":"
    cat "$work/refused.log"
    exit 1
  fi
}
expect_refused /nonexistent "web_root /nonexistent is not a directory"
expect_refused "$work/models" "web_root $work/models has no index.html"
echo "install: $prefix serves $web at / and refuses a --web-root without the client"
