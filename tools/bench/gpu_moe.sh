#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): the model families of issue 18 on CUDA.
#   bash tools/bench/gpu_moe.sh test         build; CUDA tests of policy, rollout, reward_model
#   bash tools/bench/gpu_moe.sh bench MODEL  build; rollout and learner benchmarks against
#                                            transformers for tools/bench/models/MODEL.json
# Each part fits in one 10-minute device call. Logs go to $OUT (or ./gpu-out).
set -uo pipefail
what=${1:-test}
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
if [ "$what" = test ]; then
  echo "== CUDA tests (policy, rollout, reward_model)"
  ctest --test-dir build-gpu -j 4 -L "policy|rollout|reward_model" --output-on-failure > "$out/ctest.log" 2>&1
  tail -5 "$out/ctest.log"
  grep -E "\*\*\*Failed|Not Run|SEGFAULT|Exception" "$out/ctest.log" | head -30
  exit 0
fi
model=${2:?usage: gpu_moe.sh bench MODEL}
config=tools/bench/models/$model.json
build-gpu/aha model init --config "$config" --out /tmp/info-model --dtype bfloat16 > /dev/null && build-gpu/aha model info /tmp/info-model
echo "== rollout: $config"
PYTHONUNBUFFERED=1 python3 tools/bench/rollout_throughput.py --build build-gpu --config "$config" --iters 1 2>&1 \
  | grep -v "Loading weights" | tee "$out/bench_rollout_$model.txt"
echo "== learner: $config"
PYTHONUNBUFFERED=1 python3 tools/bench/learner_throughput.py --build build-gpu --config "$config" --batch 16 \
  --micro 4 --steps 2 2>&1 | grep -v "Loading weights" | tee "$out/bench_learner_$model.txt"
