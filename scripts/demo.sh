#!/usr/bin/env bash
# Sets up and builds aha if needed, then runs the current demo: make a small random
# Qwen2-architecture model in Hugging Face format, inspect it, score a token sequence with it,
# and round-trip it through bfloat16. (The R1-Zero demo replaces this once it lands.)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
aha="${AHA_BUILD_DIR:-$root/build}/aha"
out="$root/runs/demo"
mkdir -p "$out"
echo
echo "== aha model init: a random Qwen2 model in Hugging Face format"
"$aha" model init --config "$root/recipes/models/tiny-qwen2.json" --out "$out/model" --seed 1
echo
echo "== aha model info"
"$aha" model info "$out/model"
echo
echo "== aha model logprobs: log p(token | tokens before it)"
"$aha" model logprobs "$out/model" --ids 1,17,99,4,200,31
echo
echo "== aha model convert: save as bfloat16, score again"
"$aha" model convert "$out/model" --out "$out/model-bf16" --dtype bfloat16
"$aha" model logprobs "$out/model-bf16" --ids 1,17,99,4,200,31 --dtype bfloat16
echo
echo "The model directories under $out load in Hugging Face transformers as they are."
