#!/usr/bin/env bash
# On the GPU machine (see ../shared/device/README.md): build `aha` with CUDA and run
# recipes/r1-zero-depth-gpu.json (the variable-depth base model's pretraining + GRPO + held-out
# evaluations on all depths and on the hard, 6-8 step, split), then print the R1-Zero signature
# from run.db: hard-split accuracy, mean response length and reflection rate, in the evaluations
# and per GRPO step. Outputs to $OUT: build.log, train.log, run.db (metrics and samples), summary.txt.
#   bash tools/bench/gpu_r1_zero_depth.sh [extra `aha train` arguments, e.g. --stop-after 50 or --resume]
# A run that must span two device calls (each at most 10 minutes): the first with
# TRAIN_TIMEOUT=seconds (or --stop-after N), the next with --resume on the same (still warm) machine.
# CALL_SECONDS=570 instead sets the train timeout to what is left of 570 s after the build (less
# 20 s for the summary). --resume before GRPO has started (no run.db yet: the first call ended in
# the base model's pretraining) starts the run afresh; a finished base model is reused either way.
#   CALL_SECONDS=570 bash tools/bench/gpu_r1_zero_depth.sh            # call 1: build, base, first GRPO steps
#   CALL_SECONDS=570 bash tools/bench/gpu_r1_zero_depth.sh --resume   # call 2: the rest, then the summary
# The recipe's base is recipes/base/gpu-depth-count-base.json (checked chains that count their
# steps). The base before it, without the step counts (reflection rose, then fell on 4 of 6 seeds:
# recipes/README.md), one seed:
#   BASE_DIR=runs/models/gpu-depth-base RUN_DIR=runs/depth-plain-s1 bash tools/bench/gpu_r1_zero_depth.sh \
#     --set model.build=base/gpu-depth-base.json --set model.path=runs/models/gpu-depth-base
set -uo pipefail
out=${OUT:-gpu-out}; mkdir -p "$out"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
mkdir -p /opt/deps
for f in .devdeps/*.deb; do dpkg -x "$f" /opt/deps; done
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_SYSROOT_DIR=/opt/deps PKG_CONFIG_PATH=/opt/deps/usr/lib/x86_64-linux-gnu/pkgconfig:/opt/deps/usr/share/pkgconfig
tp=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tp;/opt/deps/usr" > "$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target aha >> "$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
stamp built; nvidia-smi -L
run_dir=${RUN_DIR:-runs/r1-zero-depth-gpu}  # RUN_DIR: another run (e.g. a second seed)
args=("$@")
if [[ " $* " == *" --resume "* && ! -f "$run_dir/run.db" ]]; then
  echo "no run in $run_dir yet (the last call ended before GRPO began): starting it afresh"
  args=(); for a in "$@"; do [[ $a == --resume ]] || args+=("$a"); done
  case $run_dir in runs/*) rm -rf "$run_dir" ;; *) echo "not removing $run_dir (outside runs/)"; exit 1 ;; esac  # ours, no run in it
fi
train_timeout=${TRAIN_TIMEOUT:-100000}
if [[ -n ${CALL_SECONDS:-} && -z ${TRAIN_TIMEOUT:-} ]]; then train_timeout=$(( CALL_SECONDS - ($(date +%s) - t0) - 20 )); fi
stamp "training for at most ${train_timeout}s"
timeout "$train_timeout" build-gpu/aha train recipes/r1-zero-depth-gpu.json --run-dir "$run_dir" "${args[@]}" > "$out/train.log" 2>&1
echo "aha train exit $?"; stamp trained
tail -c 3000 "$out/train.log" | tr '\r' '\n' | tail -25
cp "$run_dir/run.db" "$out/run.db" 2>/dev/null
base_dir=${BASE_DIR:-runs/models/gpu-depth-count-base}  # BASE_DIR: the base of --set model.path=... (its report)
cp "$base_dir/pretrain_report.json" "$out/" 2>/dev/null
python3 - "$run_dir/run.db" "$base_dir/pretrain_report.json" <<'PY' | tee "$out/summary.txt"
import json, os, sqlite3, sys
if os.path.exists(sys.argv[2]):
    r = json.load(open(sys.argv[2]))
    print("base:", {k: r.get(k) for k in ["parameters", "tokens", "epochs", "wall_seconds", "train_seconds",
                                         "tokens_per_second", "final_loss"]},
          "held-out accuracy (plain style, greedy):", (r.get("heldout_plain") or {}).get("accuracy"))
if not os.path.exists(sys.argv[1]): sys.exit("no run.db yet")
db = sqlite3.connect(sys.argv[1])
def series(name):
    return db.execute("select step, value from metrics where name = ? order by step", (name,)).fetchall()
print("== evaluations (greedy): the signature is hard accuracy, response tokens and reflection rising together")
for name in ["eval/hard/accuracy", "eval/hard/mean_response_tokens", "eval/hard/reflection_rate",
             "eval/all/accuracy", "eval/all/mean_response_tokens", "eval/all/reflection_rate", "eval/format_rate"]:
    print(name, " ".join(f"{s}:{v:.3f}" for s, v in series(name)))
for steps in range(1, 9):
    points = series(f"eval/all/steps_{steps}/accuracy")
    if points: print(f"eval/all/steps_{steps}/accuracy", " ".join(f"{s}:{v:.3f}" for s, v in points))
print("== GRPO steps (sampled at temperature 1)")
for name in ["train/accuracy", "reward/format", "response/length_mean", "response/reflection_rate",
             "response/truncated_frac", "perf/step_seconds"]:
    points = series(name)
    if not points: continue
    every = max(1, len(points) // 12)
    print(name, " ".join(f"{s}:{v:.3f}" for s, v in points[::every]), f"last {points[-1][0]}:{points[-1][1]:.3f}")
accuracy, tokens = series("eval/hard/accuracy"), series("eval/hard/mean_response_tokens")
reflection = series("eval/hard/reflection_rate")
if accuracy and tokens and reflection:
    print(f"hard: accuracy {accuracy[0][1]:.3f} -> {accuracy[-1][1]:.3f}; response tokens {tokens[0][1]:.1f} -> "
          f"{tokens[-1][1]:.1f} ({tokens[-1][1] / max(tokens[0][1], 1e-9):.2f}x); reflection rate "
          f"{reflection[0][1]:.3f} -> {reflection[-1][1]:.3f}")
print("stage", db.execute("select name, status, finished_at - started_at from stages").fetchall())
PY
stamp done
