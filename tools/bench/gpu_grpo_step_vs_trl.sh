#!/usr/bin/env bash
# On the GPU machine (one H200): a whole GRPO step of aha against TRL's GRPOTrainer without vLLM
# (issue #19), side by side in one run: the Qwen2.5-1.5B shape (random weights), 32 prompts x
# G = 16, long-tailed completion lengths up to 2,048 forced on both sides, seconds per step split
# into rollout / reward / learn (tools/bench/grpo_step_vs_trl.py says how each side is timed).
# Installs TRL and datasets from the wheels in .whl into /tmp/site (every call but SIDE=plain), builds only `aha` and
# bench_grpo_step into build-gpu (tools/bench/gpu_build.sh), then runs
# grpo_step_vs_trl.py. Its last line is the figure: TRL's seconds per step over aha's, and both splits.
# Logs and grpo_step_vs_trl.json go to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_grpo_step_vs_trl.sh [all|build|bench]
# (build: the wheels and the build only; bench: the benchmark only, on an earlier build.)
# Steps (never the shape) can be changed: AHA_WARMUP (1), AHA_STEPS (3), TRL_WARMUP (0: a light
# warm-up only; a whole TRL step at 1.5B takes minutes), TRL_STEPS (1);
# TRL_GENERATION=continuous times TRL with transformers' continuous batching instead of `generate`;
# SHAPE=tiny runs the tiny model instead (a check of the script, not a figure); SIDE=all also times
# the same step as a plain PyTorch loop around transformers' generate (PLAIN_WARMUP 0, PLAIN_STEPS 1);
# at 1.5B a TRL step and a plain step take minutes each, so SIDE=plain times it beside aha alone
# within one 10-minute call.
set -uo pipefail
what=${1:-all}
case "$what" in all|build|bench) ;; *) echo "usage: $0 [all|build|bench]" >&2; exit 2 ;; esac
out=${OUT:-gpu-out}
mkdir -p "$out"
start=$SECONDS
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
# The wheels go in on every call, bench included: /tmp/site does not outlive the machine, and a
# bench on an earlier build may land on a fresh one.
# SIDE=plain times aha and the plain loop only: it needs neither TRL nor datasets.
if [ "${SIDE:-both}" != plain ] && ! python3 -c 'import trl, datasets' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl \
    > "$out/pip.log" 2>&1 || { tail -20 "$out/pip.log"; exit 1; }
  python3 -c 'import trl, datasets' || { echo "TRL or datasets not importable from .whl" >&2; exit 1; }
fi
if [ "$what" != bench ]; then
  bash tools/bench/gpu_build.sh aha bench_grpo_step > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
  echo "setup (wheels, build): $((SECONDS - start)) s"
fi
[ "$what" = build ] && exit 0
nvidia-smi -L

PYTHONUNBUFFERED=1 python3 tools/bench/grpo_step_vs_trl.py --build build-gpu --shape "${SHAPE:-1.5b}" --out "$out" \
  --aha-warmup "${AHA_WARMUP:-1}" --aha-steps "${AHA_STEPS:-3}" \
  --trl-warmup "${TRL_WARMUP:-0}" --trl-steps "${TRL_STEPS:-1}" --trl-generation "${TRL_GENERATION:-generate}" \
  --side "${SIDE:-both}" --plain-warmup "${PLAIN_WARMUP:-0}" --plain-steps "${PLAIN_STEPS:-1}" 2>&1 \
  | grep --line-buffered -v "Loading weights" | tee "$out/grpo_step_vs_trl.txt"
status=${PIPESTATUS[0]}
echo "total: $((SECONDS - start)) s"
exit "$status"
