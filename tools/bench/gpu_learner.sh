#!/usr/bin/env bash
# On the GPU machine: build with CUDA, run the policy and e2e test suites (the CUDA variants
# run there), the learner benchmark (aha GrpoTrainer vs PyTorch + transformers), and the
# long-tailed comparison of padded and packed micro-batches (bench_learner --longtail: bf16 and
# autocast, real-token MFU) at the 0.5B and 1.5B shapes.
# Logs go to $OUT (or ./gpu-out).
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
echo "== tests (policy, e2e)"
ctest --test-dir build-gpu -j 8 -L "policy|e2e" --output-on-failure > "$out/ctest.log" 2>&1; tail -5 "$out/ctest.log"
grep -E "\*\*\*Failed|Not Run" "$out/ctest.log" | head -20
echo "== benchmark"
PYTHONUNBUFFERED=1 python3 tools/bench/learner_throughput.py --build build-gpu 2>&1 | grep -v "Loading weights" \
  | tee "$out/bench_learner.txt"
echo "== long-tailed lengths: padded vs packed micro-batches, bf16 and autocast (real-token MFU)"
work=$(mktemp -d)
for shape in qwen2.5-0.5b qwen2.5-1.5b; do
  build-gpu/aha model init --config "recipes/models/$shape.json" --out "$work/$shape" --dtype bfloat16 > /dev/null
  echo "-- $shape"
  build-gpu/bench/bench_learner --model "$work/$shape" --longtail --batch 64 --prompt 256 --completion 2048 \
    --median 256 --sigma 0.9 --micro 8 --micro-tokens ${MICRO_TOKENS:-16384} --steps 3 \
    | tee -a "$out/bench_learner_longtail.txt"
done
