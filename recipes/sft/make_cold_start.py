#!/usr/bin/env python3
"""Makes r1-tiny's cold-start SFT set (DeepSeek-R1's stage 1, in miniature) from the
project's synthetic arithmetic generator: each problem's worked solution becomes the chain
of thought (reasoning_content) and its final amount the short answer (content).

    aha data generate --task arithmetic --n 300 --seed 21 --difficulty 2 --split train --out /tmp/a.jsonl
    python3 recipes/sft/make_cold_start.py /tmp/a.jsonl > recipes/sft/r1-tiny-cold-start.jsonl

Seed 21 of the train split: disjoint from r1-tiny's GRPO data (seed 11) and its held-out
evaluation (seed 12, heldout split).
"""
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        ex = json.loads(line)
        record = {"messages": [
            {"role": "user", "content": ex["prompt"]},
            {"role": "assistant", "content": ex["answer"], "reasoning_content": ex["metadata"]["solution"]},
        ]}
        print(json.dumps(record, ensure_ascii=False))
