#!/usr/bin/env bash
# The TensorRT plugin's real CUDA path (device memory, copies, streams, tensor addresses through
# cuda-bindings) under the tensorrt test double, every task, compared with onnxruntime on the CPU.
#
#   scripts/gpu-check.sh [--dry-run] [--task headpose ...] [--shared DIR] [--out report.json]
#
# Needs: Python 3.10+ with facelib installed (pip install -e .), onnxruntime (CPU), cuda-bindings
# on a machine with an NVIDIA GPU; torch for the motion and audio2face checkpoints.  TensorRT is
# NOT needed (the double stands in for it).  --dry-run uses simulated device memory (CPU only).
# Writes $OUT/gpu-check.json too when OUT is set.  Runs in well under 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
extra=()
if [ -n "${OUT:-}" ]; then extra=(--out "$OUT/gpu-check.json"); fi
exec "$PY" scripts/gpu_check.py "${extra[@]}" "$@"
