#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): build with CUDA, run the rollout tests
# (continuous batching and the decode attention's per-row first slots included) and the KV cache
# tests, then the long-tailed rollout benchmark (bench_rollout_longtail: continuous batching vs
# batch by batch vs every completion at the mean length, in one run on the same prompts, 1,024
# prompts x G = 8, log-normal completion lengths) for the Qwen2.5-0.5B and 1.5B shapes. Logs go
# to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_rollout_longtail.sh [all|test|bench]
set -uo pipefail
what=${1:-all}
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
if [ "$what" != bench ]; then
  echo "== tests (rollout)"
  ctest --test-dir build-gpu -j 8 -L rollout --output-on-failure > "$out/ctest_rollout.log" 2>&1; tail -5 "$out/ctest_rollout.log"
  ctest --test-dir build-gpu -j 8 -R "KvCache" --output-on-failure >> "$out/ctest_rollout.log" 2>&1; tail -3 "$out/ctest_rollout.log"
  grep -E "\*\*\*Failed|Not Run|SEGFAULT|Exception" "$out/ctest_rollout.log" | head -20
fi
if [ "$what" != test ]; then
  for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json; do
    model=$(mktemp -d)/model
    build-gpu/aha model init --config "$config" --out "$model" --dtype bfloat16 > /dev/null || exit 1
    echo "== long-tailed rollout benchmark $config"
    build-gpu/bench/bench_rollout_longtail --model "$model" --prompts 1024 --group 8 --rows 512 2>&1 \
      | tee -a "$out/bench_rollout_longtail.txt"
  done
fi
