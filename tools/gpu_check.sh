#!/usr/bin/env bash
# The GPU check: `python -m engine bench train` on kerasio3d at 128 x 128 x 64 (the Keras.io CT example's
# volumes), batch 8: the plain float32 Keras script against the engine in float32 and in mixed precision
# (auto: mixed_float16 on a tensor-core GPU), each with XLA off and on. Prints one JSON line (the bench's
# stable keys).
#
#   tools/gpu_check.sh             on a GPU machine (about 10-20 minutes)
#   tools/gpu_check.sh --dry-run   the same arms on tiny CPU shapes (a minute or two; tested in the suite)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
  --dry-run)
    shape=(8 8 8 1); args=(--arch tutorial3d --dataset shapes3d --padding same --batch-size 4 --samples 24
                          --epochs 2 --repeats 1) ;;
  "")
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
      echo "gpu_check: no GPU here (nvidia-smi finds none); run it on a GPU machine, or use --dry-run." >&2
      exit 2
    fi
    shape=(128 128 64 1); args=(--arch kerasio3d --dataset phantom_lesions --batch-size 8 --samples 160
                               --epochs 3 --repeats 2) ;;
  *)
    echo "gpu_check: unknown option $mode; use --dry-run or nothing." >&2
    exit 2 ;;
esac
exec python -m engine bench train --json --input-shape "${shape[@]}" "${args[@]}" \
  --precision float32 auto --xla off on
