#!/usr/bin/env bash
# The GPU checks in one go, for a GPU node: the GPU tests, the 7B client benchmark and the aggregation
# benchmark with the GPU (K=5, and FedAvg against Fed-CMP at K=5..100) and with the node's CPUs. Usage: benchmarks/gpu_checks.sh OUT_DIR [PYTHON]
# Each step has its own time limit, so one slow step cannot starve the others.
set -u
out=${1:?usage: benchmarks/gpu_checks.sh OUT_DIR [PYTHON]}
py=${2:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 DS_ACCELERATOR=cuda
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, transformers, deepspeed; print('torch', torch.__version__, 'transformers', transformers.__version__, 'deepspeed', deepspeed.__version__)"
step() { local limit=$1 name=$2; shift 2; local t0=$SECONDS
  echo "== $name (limit $limit s)"; timeout "$limit" "$@" 2>&1 | tee "$out/$name.log" | grep -v -i warn | tail -n 30
  echo "== $name: rc=${PIPESTATUS[0]} in $((SECONDS - t0)) s"; }
step ${GPU_TEST_LIMIT:-240} gpu_tests "$py" -m pytest -x -q -p no:cacheprovider -m gpu tests/gpu
step ${GPU_BENCH_LIMIT:-200} gpu_bench "$py" -m benchmarks.gpu --out "$out" --zero 2 ${GPU_BENCH_ARGS:-}
[ -n "${SKIP_AGG:-}" ] || step 90 agg_cuda "$py" -m benchmarks.aggregation --ks 5 --only-fedcmp --device cuda --out "$out/agg_cuda" --timeout 80
[ -n "${SKIP_AGG:-}" ] || step 240 agg_cuda_k "$py" -m benchmarks.aggregation --ks 5,20,50,100 --methods fedavg,fedcmp --device cuda --out "$out/agg_cuda_k" --timeout 120
[ -n "${SKIP_AGG:-}" ] || step 300 agg_cpu "$py" -m benchmarks.aggregation --ks 5 --only-fedcmp --out "$out/agg_cpu" --timeout 280
find "$out" -name "*.csv" -delete   # the .md tables hold the same rows (the device returns 8 files at most)
