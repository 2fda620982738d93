#!/usr/bin/env bash
# Reproduces the demo model of models/demo/: generates the synthetic
# talking-face training set (tools/talking_face.py), trains SyncTalk_2D at
# 1/4 width on it (tools/train_demo.py: torch on the CPU, fixed seed, 2,000
# steps; on 2 cores of an AVX-512 BF16 EPYC 1.0-1.6 s per step when nothing
# else runs, 35-55 minutes, 2-3 s beside other builds; pass --precision fp32
# where the CPU has no bf16, about 5x slower), leaves the model directory in
# WORK_DIR/model and measures its lip-sync on the held-out sentences
# (tools/lipsync_check.py). To ship the result, copy WORK_DIR/model's
# unet.onnx, audio_encoder.onnx and training.json into models/demo/.
#   scripts/train-demo.sh [WORK_DIR] [extra train_demo.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/train-demo}"
shift || true
scripts/build.sh
if [ ! -f "$work/data/.generated" ]; then
  rm -rf "$work/data"
  /usr/bin/python3 tools/talking_face.py dataset "$work/data" --clips 160
  touch "$work/data/.generated"
fi
# Idle OpenMP threads spin: the training owns the cores while it runs.
OMP_WAIT_POLICY=ACTIVE /usr/bin/python3 tools/train_demo.py --lipsync build/lipsync \
  --data "$work/data" --out "$work/model" --steps-a 2000 --steps-b 0 "$@"
/usr/bin/python3 tools/lipsync_check.py --lipsync build/lipsync --model "$work/model" \
  --work "$work/check" --report "$work/check/report.json" --sheet "$work/check/sheet.png"
