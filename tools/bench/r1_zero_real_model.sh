#!/usr/bin/env bash
# recipes/r1-zero.json exercised on a GPU as the README tells a user to run it, on a model of
# Qwen2.5-1.5B's shape (random weights; no model hub is reachable from the test machines) with a
# Qwen2-style tokenizer built here and a vocabulary padded past the tokenizer (151936 embedding
# rows, as Qwen2.5's, for far fewer tokens), so that sampled padding ids occur.
#
#   tools/bench/r1_zero_real_model.sh [WORK_DIR]      (AHA=path/to/aha; default build/aha)
#
# 1. `aha tokenizer train` a Qwen2-style BPE (<|endoftext|>, <|im_start|>, <|im_end|>) on the
#    shipped GSM8K text; `aha model init` the 1.5B shape with it.
# 2. `aha train recipes/r1-zero.json --set model.path=DIR --check`: the full recipe's plan and
#    memory on this device.
# 3. `aha train recipes/r1-zero.json --set model.path=DIR --stop-after 1` with the rollout and
#    evaluation shortened by --set (a random model never stops, so every completion runs to
#    max_new_tokens): the evaluation and one GRPO step, then --resume for a second step (the
#    checkpoint's 11.5 GiB of AdamW state read back).
set -euo pipefail
cd "$(dirname "$0")/../.."
AHA=${AHA:-build/aha}
WORK=${1:-/tmp/aha-r1-zero-real}
mkdir -p "$WORK"
MODEL=$WORK/Qwen2.5-1.5B-shape

if [ ! -f "$MODEL/config.json" ]; then
  "$AHA" tokenizer train data/gsm8k/train.jsonl data/math500/test.jsonl --vocab-size 16000 \
    --special-tokens '<|endoftext|>,<|im_start|>,<|im_end|>' --out "$WORK/tokenizer" --overwrite
  "$AHA" model init --config recipes/models/qwen2.5-1.5b.json --tokenizer "$WORK/tokenizer" \
    --out "$MODEL" --seed 1 --overwrite
fi
"$AHA" model info "$MODEL"

echo "== aha train recipes/r1-zero.json --check (the full recipe)"
"$AHA" train recipes/r1-zero.json --set model.path="$MODEL" --run-dir "$WORK/run" --check || echo "(--check found a problem)"

SHORT=(--set rollout.prompts_per_step=16 --set rollout.max_new_tokens=512
       --set algorithm.mini_batch_size=128 --set eval.max_new_tokens=512
       --set data.eval.math500.limit=32 --set data.eval.gsm8k.limit=32)
echo "== aha train recipes/r1-zero.json --stop-after 1 ${SHORT[*]}"
/usr/bin/time -v "$AHA" train recipes/r1-zero.json --set model.path="$MODEL" --run-dir "$WORK/run" \
  --stop-after 1 "${SHORT[@]}" 2> >(grep -v "^\s*\(Page\|Minor\|Major\|Voluntary\|Involuntary\|Swaps\|File system\|Socket\|Signals\|Average\|Exit\)" >&2)
echo "== --resume for a second step"
"$AHA" train recipes/r1-zero.json --set model.path="$MODEL" --run-dir "$WORK/run" --resume --stop-after 1 "${SHORT[@]}" --quiet
python3 - "$WORK/run/run.db" <<'PY' || true
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for name in ["reward/total", "train/loss", "train/kl", "train/grad_norm", "train/entropy", "perf/step_seconds",
             "perf/rollout_seconds", "perf/learn_seconds",
             "response/length_mean", "response/truncated_frac", "perf/rollout_tokens_per_s"]:
    rows = db.execute("select step, value from metrics where name = ? order by step", (name,)).fetchall()
    if rows: print(f"{name:28s}", " ".join(f"{s}:{v:.4g}" for s, v in rows))
print("stages:", db.execute("select name, status from stages").fetchall())
print("samples stored:", db.execute("select count(*) from samples").fetchone()[0])
PY
