#!/usr/bin/env bash
# The GPU checks in one run: the CUDA tests (each CUDA path against the CPU's) and the GPU benchmark rows.
#
#   benchmarks/gpu_check.sh prepare   # here, with the dev install and ../shared: writes .gpu/ (about 55 MB, ignored)
#   benchmarks/gpu_check.sh run       # on the GPU machine, from the repository root, with .gpu/ carried along;
#                                     # results (test log, benchmark.json, nvidia-smi) in $OUT, else ./gpu-results
#
# `prepare` packs what that machine lacks (it has Python 3.12, torch, OpenCV, scikit-learn, SciPy, pytest): wheels of
# this project, ultralytics and lap (installed with --no-deps), the three real clips the tests read, the person
# detector and the Kinetics-400 I3D weights stored as fp16 (half the size, to fit the 64 MB a call carries; `run`
# widens them back to fp32, so the CPU and CUDA sides of every parity check use the same weights). `run` uses the
# clips' decoders that need no extra package (OpenCV); torchcodec's NVDEC rows need a torchcodec wheel built for that
# machine's torch and FFmpeg's libraries there (add them to .gpu/wheels and LD_LIBRARY_PATH), else they say skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64"

case "${1:-}" in
prepare)
  PY=${PYTHON:-.venv/bin/python}
  rm -rf .gpu && mkdir -p .gpu/wheels .gpu/shared/data/real-clips .gpu/cache/weights
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS \
    -d .gpu/wheels "ultralytics==$(version ultralytics)" "ultralytics-thop==$(version ultralytics-thop)" \
    "lap==$(version lap)"
  "$PY" -m pip wheel -q --no-deps . -w .gpu/wheels
  mkdir -p .gpu/shared/data/ucsd-ped2-h264/testing
  cp "${VAD_SHARED:-../shared}"/data/real-clips/{bikes.mp4,carphone_pristine.mp4} .gpu/shared/data/real-clips/
  cp "${VAD_SHARED:-../shared}"/data/ucsd-ped2-h264/testing/04.mkv .gpu/shared/data/ucsd-ped2-h264/testing/
  "$PY" - <<'PYEOF'
import shutil
import torch
from vad_pipeline.detectors.yolo import resolve_detector
from vad_pipeline.extractors.weights import install_i3d

weights = install_i3d()
state = torch.load(weights, map_location="cpu", weights_only=True)
torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, ".gpu/i3d-fp16.pt")
shutil.copy(resolve_detector(None), ".gpu/cache/weights/detector.pt")
PYEOF
  du -sh .gpu
  ;;
run)
  OUT=${OUT:-gpu-results}
  mkdir -p "$OUT"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
  export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 VAD_SHARED="$PWD/.gpu/shared" VAD_PIPELINE_CACHE="$PWD/.gpu/cache" \
         VAD_DETECTOR_WEIGHTS="$PWD/.gpu/cache/weights/detector.pt"
  python3 - <<'PYEOF'
import torch
from vad_pipeline.extractors.weights import I3D_CACHE_FILE, weights_dir

target = weights_dir() / I3D_CACHE_FILE
target.parent.mkdir(parents=True, exist_ok=True)
state = torch.load(".gpu/i3d-fp16.pt", map_location="cpu", weights_only=True)
torch.save({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, target)
print("I3D weights (fp16-rounded Kinetics-400) at", target)
PYEOF
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
  set +e
  python3 -m pytest -q -n 0 -p no:cacheprovider -k "cuda or gpu or batched" tests/test_input_path.py \
    tests/test_methods.py tests/test_objects.py tests/test_decode.py tests/test_tracks.py 2>&1 | tee "$OUT/cuda-tests.log"
  python3 benchmarks/run.py --quick --device "${DEVICE:-cuda}" --only decode,extract,parallel,tracks,score \
    --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
  cp "$OUT/bench/benchmark.json" "$OUT/benchmark.json" 2>/dev/null
  rm -rf "$OUT/bench"
  ;;
*)
  echo "usage: benchmarks/gpu_check.sh prepare|run" >&2
  exit 2
  ;;
esac
