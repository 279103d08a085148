#!/usr/bin/env bash
# The GPU checks in one go, for a GPU node: the GPU tests (LLaVA-1.5-7B stage 1 and stage 2, random
# weights), the 7B client benchmark with its roofline line (the GPU's copy bandwidth and float32/bf16
# GEMM measured in the same run, each row's fraction of them), and the aggregation benchmark with the GPU
# (K=5, and FedAvg against Fed-CMP at K=5..100) and with the node's CPUs.
# Usage: perf/gpu_checks.sh [--dry-run] OUT_DIR [PYTHON]
# Each step has its own time limit, so one slow step cannot starve the others. --dry-run (any machine)
# runs nothing heavy: it prints each step's command and checks that every step can start (the modules
# parse their arguments, pytest collects the GPU tests).
set -u
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
out=${1:?usage: perf/gpu_checks.sh [--dry-run] OUT_DIR [PYTHON]}
py=${2:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
failed=0
if [ $dry = 1 ]; then
  echo "dry run: nothing is measured"
else
  export DS_ACCELERATOR=cuda
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
"$py" -c "import torch, transformers, deepspeed; print('torch', torch.__version__, 'transformers', transformers.__version__, 'deepspeed', deepspeed.__version__)" 2>&1 | grep -v -i warn
step() { local limit=$1 name=$2; shift 2; local t0=$SECONDS
  echo "== $name (limit $limit s): $*"
  if [ $dry = 1 ]; then return; fi
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log" | grep -v -i warn | tail -n 30
  local rc=${PIPESTATUS[0]}; [ "$rc" = 0 ] || failed=1
  echo "== $name: rc=$rc in $((SECONDS - t0)) s"; }
step ${GPU_TEST_LIMIT:-240} gpu_tests "$py" -m pytest -x -q -p no:cacheprovider -m gpu tests/gpu
step ${GPU_BENCH_LIMIT:-200} gpu_bench "$py" -m perf.gpu --out "$out" --zero 2 ${GPU_BENCH_ARGS:-}
[ -n "${SKIP_AGG:-}" ] || step 90 agg_cuda "$py" -m perf.aggregation --ks 5 --only-fedcmp --device cuda --out "$out/agg_cuda" --timeout 80
[ -n "${SKIP_AGG:-}" ] || step 240 agg_cuda_k "$py" -m perf.aggregation --ks 5,20,50,100 --methods fedavg,fedcmp --device cuda --out "$out/agg_cuda_k" --timeout 120
[ -n "${SKIP_AGG:-}" ] || step 300 agg_cpu "$py" -m perf.aggregation --ks 5 --only-fedcmp --out "$out/agg_cpu" --timeout 280
if [ $dry = 1 ]; then   # every step can start: its module parses its arguments, pytest finds the GPU tests
  for m in perf.gpu perf.aggregation; do
    "$py" -m $m --help > /dev/null || { echo "dry run: $m cannot start"; failed=1; }
  done
  collected=$("$py" -m pytest --collect-only -q -p no:cacheprovider -m gpu tests/gpu 2>&1)
  echo "$collected" | grep -E "^tests/gpu|collected" \
    || { echo "$collected" | tail -n 5; echo "dry run: pytest cannot collect tests/gpu"; failed=1; }
  echo "dry run: rc=$failed"
fi
find "$out" -name "*.csv" -delete   # the .md tables hold the same rows (the device returns 8 files at most)
exit $failed
