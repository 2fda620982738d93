#!/usr/bin/env bash
# Trains the demo model: generates the synthetic talking-face training set
# (tools/talking_face.py), trains SyncTalk_2D at 1/4 width on it
# (tools/train_demo.py, torch on the CPU, fixed seed), leaves a model
# directory in WORK_DIR/model and measures its lip-sync on the held-out
# sentences (tools/lipsync_check.py). Steps run at about 0.6-1 s each on 2
# cores of an AVX-512 BF16 CPU (bf16 autocast; pass --precision fp32
# elsewhere, about 5x slower).
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
  --data "$work/data" --out "$work/model" --steps 2400 --batch 4 --lr 1.5e-3 "$@"
/usr/bin/python3 tools/lipsync_check.py --lipsync build/lipsync --model "$work/model" \
  --work "$work/check" --report "$work/check/report.json"
