#!/usr/bin/env bash
# Compares lipsync's engine with ONNX Runtime's CPU provider (npm package
# onnxruntime-node, pinned in package.json and installed here, only here: it
# is never a build or test dependency) on the same models, same threads,
# runs interleaved.
#
#   bench/run.sh [UNET.onnx [ENCODER.onnx]]
#
# Defaults: the test models of build/ (build/models/unet_op11.onnx and
# encoder_op11.onnx, the dynamic-batch exports). Environment: THREADS (2),
# RUNS (10 timed runs per side and case, after WARMUP=3), LIPSYNC
# (build/lipsync), SPIN (0: ONNX Runtime's worker threads block at once, the
# engine's libgomp threads wait as lipsync does by default, a brief spin then
# sleep; 1: both spin without bound; ort: ONNX Runtime spins, the engine as in
# 0; see ort_vs_engine.mjs). Cases: UNet fp32, bf16 and int8 (calibrated on
# the first item of its seeded input) at batch 1 and 8, audio
# encoder fp32 at batch 1 and 8; each prints both medians and ORT ms / engine ms.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
unet="$(realpath "${1:-$root/build/models/unet_op11.onnx}")"
encoder="$(realpath "${2:-$root/build/models/encoder_op11.onnx}")"
lipsync="$(realpath "${LIPSYNC:-$root/build/lipsync}")"
threads="${THREADS:-2}"
runs="${RUNS:-10}"
warmup="${WARMUP:-3}"
spin="${SPIN:-0}"
for f in "$unet" "$encoder" "$lipsync"; do
  [ -e "$f" ] || { echo "bench/run.sh: $f not found (build first: scripts/build.sh or scripts/test.sh)" >&2; exit 1; }
done
cd "$here"
want="$(node -p "require('./package.json').dependencies['onnxruntime-node']")"
have="$(node -p "try { require('./node_modules/onnxruntime-node/package.json').version } catch { '' }")"
if [ "$want" != "$have" ]; then
  # The CPU provider ships in the npm package; skip the CUDA download.
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-audit --no-fund --loglevel=error
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; onnxruntime-node $want; threads $threads; spin $spin; load $(cut -d' ' -f1-3 /proc/loadavg)"
run() { node ort_vs_engine.mjs --lipsync "$lipsync" --threads "$threads" --runs "$runs" --warmup "$warmup" --spin "$spin" "$@"; }
run --label unet --model "$unet" --batch 1 --precision fp32
run --label unet --model "$unet" --batch 8 --precision fp32
run --label unet --model "$unet" --batch 1 --precision bf16
run --label unet --model "$unet" --batch 8 --precision bf16
run --label unet --model "$unet" --batch 1 --precision int8
run --label unet --model "$unet" --batch 8 --precision int8
run --label encoder --model "$encoder" --batch 1 --precision fp32
run --label encoder --model "$encoder" --batch 8 --precision fp32
