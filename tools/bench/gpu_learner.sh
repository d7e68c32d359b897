#!/usr/bin/env bash
# On the GPU machine: build with CUDA, run the policy and e2e test suites (the CUDA variants
# run there) and the learner benchmark (aha GrpoTrainer vs PyTorch + transformers).
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
