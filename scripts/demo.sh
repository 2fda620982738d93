#!/usr/bin/env bash
# The demo job on built-in data: builds lipsync, makes the demo model
# directory (the NASA astronaut portrait from Debian's python3-skimage with
# a little head motion; the UNet and audio encoder of the test-model
# generator, with seeded random UNTRAINED weights, so the mouth area shows
# the model's raw output), synthesises a sentence with espeak-ng and renders
# the lip-synced video with its timing summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out=out
mkdir -p "$out"
if [ ! -f "$out/models/.generated" ]; then
  echo "demo: generating the test models (seeded random weights) ..."
  rm -rf "$out/models"
  /usr/bin/python3 tools/gen_test_models.py "$out/models" >/dev/null
  touch "$out/models/.generated"
fi
/usr/bin/python3 tools/make_demo.py --models "$out/models" --out "$out/demo-model"
build/lipsync model check "$out/demo-model"
# A models root for `lipsync serve --models-root out/models-root` (docs/server.md).
mkdir -p "$out/models-root"
ln -sfn ../demo-model "$out/models-root/demo"
espeak-ng -w "$out/demo_speech.wav" \
  "Hello. This is the lipsync demo, speaking so that the avatar's lips can follow."
build/lipsync render "$out/demo-model" "$out/demo_speech.wav" -o "$out/demo.mp4"
echo "demo: the video is $(pwd)/$out/demo.mp4"
echo "demo: the weights are untrained test weights: the mouth area shows the UNet's raw output."
