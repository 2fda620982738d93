#!/usr/bin/env bash
# Installs every Debian 12 package lipsync needs to build, test, benchmark and run its demo.
# Idempotent: packages already present are skipped by apt; `apt-get update` runs once per call.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

BUILD_PKGS=(
  build-essential cmake pkg-config git
  libdnnl-dev                                   # oneDNN: the CPU neural engine's primitives
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev  # ONNX model parsing (onnx.proto from libonnx-dev)
  libturbojpeg0-dev libjpeg62-turbo-dev libspng-dev libpng-dev   # images
  libsndfile1-dev libsoxr-dev libfftw3-dev      # audio decode, resample, STFT
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev  # video in/out
  libwebsockets-dev libcjson-dev libzip-dev     # server: HTTP + WebSocket, JSON, jpeg-zip output
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev  # WebRTC: webrtcbin
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad  # appsrc, rtp, opus, srtp, dtls
  gstreamer1.0-plugins-ugly gstreamer1.0-nice   # x264enc; ICE (libnice)
)
TEST_PKGS=(
  libcmocka-dev                                 # unit tests
  libclang-rt-14-dev clang libomp-dev           # sanitizer runtimes, libFuzzer; clang's OpenMP (fuzz build)
  python3 python3-numpy python3-torch python3-onnx python3-opencv python3-tqdm  # generators, demo training
  python3-skimage espeak-ng sox ffmpeg          # demo data: portrait, synthetic speech; media checks
  chromium nodejs                               # browser client end-to-end test (playwright-core from npm)
  nginx                                         # load balancer in front of two instances (lb_drain test)
  libnginx-mod-rtmp                             # RTMP media server for the stream push test (rtmp_push)
)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
# npm ships inside some nodejs builds (NodeSource); Debian packages it apart.
command -v npm >/dev/null 2>&1 || want+=(npm)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
