#!/usr/bin/env bash
# The demo job on built-in data: builds lipsync, makes the demo model
# directory (the SyncTalk_2D model trained on a synthetic talking face that
# the repository ships in models/demo/, with its avatar: the NASA astronaut
# portrait from Debian's python3-skimage, mouth closed, a little head
# motion), synthesises a sentence with espeak-ng and renders the lip-synced
# video with its timing summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out=out
mkdir -p "$out"
/usr/bin/python3 tools/make_demo.py --out "$out/demo-model"
build/lipsync model check "$out/demo-model"
# A models root for `lipsync serve --models-root out/models-root` (docs/server.md).
mkdir -p "$out/models-root"
ln -sfn ../demo-model "$out/models-root/demo"
espeak-ng -w "$out/demo_speech.wav" \
  "Hello. This is the lipsync demo, speaking so that the avatar's lips can follow."
build/lipsync render "$out/demo-model" "$out/demo_speech.wav" -o "$out/demo.mp4"
echo "demo: the video is $(pwd)/$out/demo.mp4"
echo "demo: the model is trained on synthetic data (README, \"The demo\"): the lips follow the"
echo "demo: speech and its timing; photorealism is what a real SyncTalk_2D training adds."
