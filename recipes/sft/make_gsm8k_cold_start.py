#!/usr/bin/env python3
"""Makes recipes/r1.json's cold-start SFT set (DeepSeek-R1's stage 1) from GSM8K's training
split as shipped in data/gsm8k/ (MIT license, data/README.md): every 4th problem, its worked
solution (calculator annotations <<...>> removed) as the chain of thought (reasoning_content),
ending "The answer is N.", and the final number as the short answer (content).

    python3 recipes/sft/make_gsm8k_cold_start.py data/gsm8k/train.jsonl > recipes/sft/gsm8k-cold-start.jsonl

A stand-in for the report's few thousand long, readable chains of thought, which are not
published: replace it with your own with --set stages.0.data=FILE (recipes/README.md).
"""
import json
import re
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    for i, line in enumerate(f):
        if i % 4:
            continue
        ex = json.loads(line)
        solution, answer = ex["answer"].rsplit("####", 1)
        answer = answer.strip().replace(",", "")
        steps = re.sub(r"<<[^>]*>>", "", solution).strip()
        record = {"messages": [
            {"role": "user", "content": ex["question"]},
            {"role": "assistant", "content": answer, "reasoning_content": steps + "\nThe answer is " + answer + "."},
        ]}
        print(json.dumps(record, ensure_ascii=False))
