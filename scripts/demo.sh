#!/usr/bin/env bash
# The demo job on built-in data: builds lipsync, synthesises a sentence with
# espeak-ng and runs the audio front-end on it (decode, resample to 16 kHz,
# mel spectrogram, per-frame windows), printing a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p out
espeak-ng -w out/demo_speech.wav "Hello. This is the lipsync demo, speaking so that the avatar's lips can follow."
build/lipsync mel out/demo_speech.wav -o out/demo_mel.npy --windows out/demo_windows.npy
echo "demo: outputs are in $(pwd)/out"
