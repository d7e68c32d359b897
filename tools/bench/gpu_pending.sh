#!/usr/bin/env bash
# The GPU measurements still owed to issues #19 and #21, each part sized for one 10-minute device
# call (see ../shared/device/README.md; carry .devdeps). Logs go to $OUT (or ./gpu-out).
#   bash tools/bench/gpu_pending.sh learner   #19: the 1.5B long-tailed learner at micro-batch
#                                             budgets of 16k, 32k and 64k tokens (bf16 packed;
#                                             does a larger budget raise MFU toward 50%?)
#   bash tools/bench/gpu_pending.sh refill    #19: continuous batching at 1.5B, refill fraction
#                                             1/16, 1/8, 1/4 beside the fixed-length steady state
#                                             (which default to keep: 1/16 today)
#   bash tools/bench/gpu_pending.sh profile   #19/#18: kernel profiles (bench_learner --profile) of
#                                             the 1.5B long-tailed bf16 packed step and of the
#                                             equal-length Qwen3-MoE bench step, then the 1.5B
#                                             step at 32k and 64k micro-batch tokens
#   bash tools/bench/gpu_pending.sh check     #19/#18 after a learner change: the CUDA tests of the
#                                             model, learner and rollout that it touches, the
#                                             1.5B profile, then learner_throughput.py on the
#                                             Qwen3-MoE bench (equal lengths) and the 1.5B
#                                             long-tailed batch, each beside transformers
#   bash tools/bench/gpu_pending.sh seeds     #21: seeds 4 and 5 of recipes/r1-zero-depth-gpu.json
#                                             as committed (seeds 1-3 are in recipes/README.md)
set -uo pipefail
what=${1:?usage: gpu_pending.sh learner|refill|profile|check|seeds}
out=${OUT:-gpu-out}
mkdir -p "$out"
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
case "$what" in
  learner) targets="aha bench_learner" ;;
  refill) targets="aha bench_rollout_longtail" ;;
  profile) targets="aha bench_learner" ;;
  check) targets="aha bench_learner test_policy_model test_policy_learner test_rollout" ;;
  seeds) targets="aha" ;;
  *) echo "unknown part '$what': learner, refill, profile, check or seeds" >&2; exit 2 ;;
esac
bash tools/bench/gpu_build.sh $targets > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
nvidia-smi -L
stamp built
work=$(mktemp -d)
case "$what" in
  learner)
    build-gpu/aha model init --config recipes/models/qwen2.5-1.5b.json --out "$work/model" --dtype bfloat16 > /dev/null || exit 1
    for tokens in 16384 32768 65536; do
      stamp "bench_learner --longtail --micro-tokens $tokens"
      timeout 170 build-gpu/bench/bench_learner --model "$work/model" --longtail --batch 64 --prompt 256 \
        --completion 2048 --median 256 --sigma 0.9 --micro-tokens "$tokens" --configs bf16-packed --steps 3 2>&1 \
        | tee -a "$out/learner_micro_tokens.txt"
    done ;;
  profile)
    build-gpu/aha model init --config recipes/models/qwen2.5-1.5b.json --out "$work/model" --dtype bfloat16 > /dev/null || exit 1
    stamp "1.5B long-tailed bf16 packed, 16k tokens, profiled"
    timeout 150 build-gpu/bench/bench_learner --model "$work/model" --longtail --configs bf16-packed --steps 2 \
      --micro-tokens 16384 --profile > "$out/profile_1.5b.txt" 2>&1; tail -45 "$out/profile_1.5b.txt"
    for tokens in 32768 65536; do
      stamp "1.5B long-tailed bf16 packed, $tokens tokens"
      timeout 100 build-gpu/bench/bench_learner --model "$work/model" --longtail --configs bf16-packed --steps 2 \
        --micro-tokens "$tokens" 2>&1 | grep '^{' | tee -a "$out/learner_micro_tokens.txt"
    done
    build-gpu/aha model init --config tools/bench/models/qwen3-moe-bench.json --out "$work/moe" --dtype bfloat16 > /dev/null || exit 1
    stamp "Qwen3-MoE bench, equal lengths, batch 16, micro 16, profiled"
    timeout 150 build-gpu/bench/bench_learner --model "$work/moe" --batch 16 --micro 16 --steps 2 --profile \
      > "$out/profile_moe.txt" 2>&1; tail -45 "$out/profile_moe.txt" ;;
  check)
    stamp "CUDA tests"
    build-gpu/tests/policy/model/test_policy_model --gtest_filter='Rotary*:*Cuda*:*Moe*:*MoE*:*Deepseek*' \
      --gtest_brief=1 > "$out/tests_model.txt" 2>&1; tail -3 "$out/tests_model.txt"
    build-gpu/tests/policy/learner/test_policy_learner --gtest_filter='*Cuda*:GrpoPacking*' --gtest_brief=1 \
      > "$out/tests_learner.txt" 2>&1; tail -3 "$out/tests_learner.txt"
    build-gpu/tests/rollout/test_rollout --gtest_filter='*Cuda*:DeepseekV3Rollout*:*Moe*' --gtest_brief=1 \
      > "$out/tests_rollout.txt" 2>&1; tail -3 "$out/tests_rollout.txt"
    grep -h -B2 -A12 "Failure" "$out"/tests_*.txt | head -60
    build-gpu/aha model init --config recipes/models/qwen2.5-1.5b.json --out "$work/model" --dtype bfloat16 > /dev/null || exit 1
    stamp "1.5B long-tailed bf16 packed, profiled"
    timeout 100 build-gpu/bench/bench_learner --model "$work/model" --longtail --configs bf16-packed --steps 2 \
      --profile > "$out/profile_1.5b.txt" 2>&1; head -22 "$out/profile_1.5b.txt"; grep '^{"config' "$out/profile_1.5b.txt"
    stamp "Qwen3-MoE bench against transformers, equal lengths"
    timeout 150 python3 tools/bench/learner_throughput.py --config tools/bench/models/qwen3-moe-bench.json --batch 16 \
      --micro 16 --steps 2 2>&1 | grep -v Loading | tee "$out/learner_moe.txt" | tail -6
    stamp "1.5B long-tailed against transformers"
    timeout 200 python3 tools/bench/learner_throughput.py --longtail --build build-gpu \
      --config recipes/models/qwen2.5-1.5b.json --steps 2 2>&1 | grep -v Loading | tee "$out/learner_1.5b.txt" | tail -7 ;;
  refill)
    build-gpu/aha model init --config recipes/models/qwen2.5-1.5b.json --out "$work/model" --dtype bfloat16 > /dev/null || exit 1
    stamp "fixed length"
    timeout 150 build-gpu/bench/bench_rollout_longtail --model "$work/model" --prompts 512 --group 8 --rows 512 \
      --modes fixed_length 2>&1 | tee -a "$out/refill_fraction.txt"
    for fraction in 0.0625 0.125 0.25; do
      stamp "continuous, refill fraction $fraction"
      timeout 130 build-gpu/bench/bench_rollout_longtail --model "$work/model" --prompts 512 --group 8 --rows 512 \
        --modes continuous --refill-fraction "$fraction" 2>&1 | tee -a "$out/refill_fraction.txt"
    done ;;
  seeds)
    for seed in 4 5; do
      stamp "seed $seed"
      # Each seed's logs and run.db under /tmp (at most 8 files come back from $OUT): its summary here.
      OUT=/tmp/depth-s$seed RUN_DIR=runs/depth-count-s$seed timeout 280 bash tools/bench/gpu_r1_zero_depth.sh \
        --set schedule.seed=$seed > "/tmp/depth-s$seed.log" 2>&1
      cp /tmp/depth-s$seed/summary.txt "$out/depth-s$seed-summary.txt" 2>/dev/null || tail -20 "/tmp/depth-s$seed.log"
      cat "$out/depth-s$seed-summary.txt" 2>/dev/null
    done ;;
esac
stamp done
