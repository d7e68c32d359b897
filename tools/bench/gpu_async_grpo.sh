#!/usr/bin/env bash
# On a GPU machine with 2 GPUs (nvidia-h200-x2): asynchronous GRPO in the split layout against
# on-policy GRPO, on one recipe (default recipes/r1-zero-gpu.json, whose base model is built on
# the first run; give a real one with SET="--set model.path=/models/Qwen2.5-1.5B --set
# model.build=null"):
#   colocated  on-policy, data parallel on both GPUs (aha train --nproc-per-node 2)
#   split k=0  on-policy, learner on cuda:0, 1 rollout worker on cuda:1 (the weight sync's cost
#              without overlap)
#   split k=1  asynchronous (algorithm.max_staleness 1): the worker samples the next batch while
#              the learner trains
# Prints, per run, the mean step time (steps after the first two), completion tokens/s per GPU,
# the mean weight-sync time and worker utilisation, then the speed-up of split k=1 over colocated.
# Logs and run directories go to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_async_grpo.sh [RECIPE] [STEPS]
set -uo pipefail
recipe=${1:-recipes/r1-zero-gpu.json}
steps=${2:-12}
out=${OUT:-gpu-out}
mkdir -p "$out"
bash .devdeps/build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
common="--set schedule.steps=$steps --set data.eval={} --set checkpoint.every=0 ${SET:-}"
# The base model (if the recipe builds one) once, before anything is timed.
build-gpu/aha train "$recipe" $common --set schedule.steps=1 --run-dir "$out/warmup" > "$out/warmup.log" 2>&1 \
  || { tail -20 "$out/warmup.log"; exit 1; }
run() {  # name, extra arguments
  local name=$1; shift
  echo "== $name"
  build-gpu/aha train "$recipe" $common --run-dir "$out/$name" "$@" > "$out/$name.log" 2>&1 \
    || { tail -20 "$out/$name.log"; return 1; }
}
run colocated --nproc-per-node 2
run split_k0 --set layout.mode=split --set layout.rollout_workers=1
run split_k1 --set layout.mode=split --set layout.rollout_workers=1 --set algorithm.max_staleness=1
python3 - "$out" <<'PY'
import sqlite3, sys
out = sys.argv[1]
def figures(name, gpus):
    db = sqlite3.connect(f"file:{out}/{name}/run.db?mode=ro", uri=True)
    def series(metric):
        return [v for (v,) in db.execute(
            "select value from metrics where name = ? order by step", (metric,))]
    step = series("perf/step_seconds")[2:]
    tokens = series("perf/tokens_per_s")[2:]
    sync = series("perf/sync_seconds")[2:]
    util = series("rollout/worker_utilisation")[2:]
    mean = lambda v: sum(v) / len(v) if v else float("nan")
    f = {"step_s": mean(step), "tokens_per_s_per_gpu": mean(tokens) / gpus,
         "sync_s": mean(sync), "worker_utilisation": mean(util)}
    print(f"async_grpo run={name} gpus={gpus} steps_timed={len(step)} step_s={f['step_s']:.3f} "
          f"tokens_per_s_per_gpu={f['tokens_per_s_per_gpu']:.0f} sync_s={f['sync_s']:.4f} "
          f"worker_utilisation={f['worker_utilisation']:.2f}")
    return f
c = figures("colocated", 2)
k0 = figures("split_k0", 2)
k1 = figures("split_k1", 2)
print(f"async_grpo speed-up split k=1 over colocated on-policy: {c['step_s'] / k1['step_s']:.2f}x "
      f"(split k=0: {c['step_s'] / k0['step_s']:.2f}x)")
PY
