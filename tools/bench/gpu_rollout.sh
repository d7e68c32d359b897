#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): build with CUDA, run the rollout tests
# (and the policy tests they build on), then the rollout benchmark against transformers for the
# Qwen2.5-0.5B and 1.5B shapes. Logs go to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_rollout.sh [all|test|bench]   (test: build + tests; bench: build + benchmark)
# Each part fits in one 10-minute device call; `all` may not.
set -uo pipefail
what=${1:-all}
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
if [ "$what" != bench ]; then
  echo "== tests (rollout, policy)"
  ctest --test-dir build-gpu -j 8 -L "rollout|policy" --output-on-failure > "$out/ctest.log" 2>&1; tail -5 "$out/ctest.log"
  grep -E "\*\*\*Failed|Not Run|SEGFAULT|Exception" "$out/ctest.log" | head -20
  grep -E "RolloutCuda.*(Passed|Skipped|Failed)" "$out/ctest.log" | head -3
  echo "== aha generate (CUDA graphs, fp32) on a fixture model"
  build-gpu/aha generate --model tests/fixtures/models/qwen2_gqa_tied --prompt-ids 1,17,99,4,200 -n 2 \
    --temperature 0 --max-new-tokens 16 --ignore-eos --dtype float32 2>/dev/null
  echo "expected (transformers, greedy): 200,200,200,124,124,124,124,124,124,124,124,124,124,124,124,223"
fi
if [ "$what" != test ]; then
  for config in recipes/models/qwen2.5-0.5b.json recipes/models/qwen2.5-1.5b.json; do
    echo "== benchmark $config"
    python3 tools/bench/rollout_throughput.py --build build-gpu --config "$config" 2>&1 \
      | grep -v "Loading weights" | tee -a "$out/bench_rollout.txt"
  done
fi
