#!/usr/bin/env bash
# On a machine with 2 or 4 GPUs (nvidia-h200-x2, -x4): the data-parallel learner under none,
# zero2 and zero3 (NCCL), on a randomly initialised model of the 0.5B shape
# (recipes/models/qwen2.5-0.5b.json; CONFIG=... for another), float32 master weights with bf16
# autocast, the same rows per GPU in every mode (tools/bench/bench_zero.cpp).
#   bash tools/bench/gpu_zero.sh [GPUS] [extra bench_zero options, e.g. --batch 16 --micro 4]
# Prints one line per mode: learner step time, zero3's gather of the rollout's bf16 copy, and the
# largest per-GPU peak and resident memory, each with its ratio to none. Logs go to $OUT (or
# ./gpu-out). SKIP_BUILD=1 uses an existing build (BUILD=build-gpu by default). Without a GPU, as a
# smoke test: SKIP_BUILD=1 BUILD=build CONFIG=recipes/models/tiny-qwen2.json bash tools/bench/gpu_zero.sh 2
#   --device cpu --backend gloo --batch 2 --micro 1 --prompt 8 --completion 8 --steps 1
set -uo pipefail
gpus=${1:-$(nvidia-smi -L 2>/dev/null | wc -l)}
shift || true
out=${OUT:-gpu-out}
config=${CONFIG:-recipes/models/qwen2.5-0.5b.json}
mkdir -p "$out"
if [ -z "${SKIP_BUILD:-}" ]; then
  bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
fi
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L 2>/dev/null
build=${BUILD:-build-gpu}
bench=$build/bench/bench_zero
[ -x "$bench" ] || cmake --build "$build" --target bench_zero > "$out/build_bench.log" 2>&1 || { tail -30 "$out/build_bench.log"; exit 1; }
port=$((29500 + RANDOM % 1000))
for mode in none zero2 zero3; do
  pids=()
  for ((r = 0; r < gpus; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$gpus LOCAL_WORLD_SIZE=$gpus MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$bench" --sharding $mode --config "$config" "$@" > "$out/zero_${mode}_rank$r.json" 2> "$out/zero_${mode}_rank$r.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "$mode: a rank failed"; cat "$out"/zero_${mode}_rank*.err | tail -20; exit 1; }; done
  port=$((port + 1))
done
python3 - "$out" "$gpus" "$config" <<'PY'
import json, sys, glob
out, gpus, config = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(mode):
    return [json.loads(open(f).read()) for f in sorted(glob.glob(f"{out}/zero_{mode}_rank*.json"))]
base = load("none")
b_step = max(r["step_s"] for r in base); b_peak = max(r["peak_bytes"] for r in base); b_res = max(r["resident_bytes"] for r in base)
print(f"{config}, {base[0]['parameters'] / 1e9:.3f}B parameters, {gpus} ranks, float32 masters")
for mode in ("none", "zero2", "zero3"):
    rs = load(mode)
    step = max(r["step_s"] for r in rs); gather = max(r["gather_s"] for r in rs)
    peak = max(r["peak_bytes"] for r in rs); res = max(r["resident_bytes"] for r in rs)
    print(f"{mode:6s} loss {rs[0]['loss']:.6f}  learner step {step:7.3f} s ({step / b_step:5.2f}x none)  rollout-copy gather {gather:6.3f} s  "
          f"peak/GPU {peak / 2**30:6.2f} GiB ({peak / b_peak:4.2f}x none)  resident/GPU {res / 2**30:6.2f} GiB "
          f"({res / b_res:4.2f}x none)")
PY
