#!/usr/bin/env python3
"""Makes r1-tiny's cold-start SFT set (DeepSeek-R1's stage 1, in miniature) from the
project's synthetic arithmetic generator: each problem's worked solution becomes the chain
of thought (reasoning_content) and its final amount the short answer (content).

    aha data generate --task arithmetic --n 300 --seed 21 --difficulty 2 --split train --out /tmp/a.jsonl
    python3 recipes/sft/make_cold_start.py /tmp/a.jsonl > recipes/sft/r1-tiny-cold-start.jsonl

Seed 21 of the train split: disjoint from r1-tiny's GRPO data (seed 11) and its held-out
evaluation (seed 12, heldout split).

The problems about Mei are left out (40 of the 300, so 260 remain). The tiny base is bilingual:
it writes the reasoning of Mei's problems in Chinese (datasets/base_corpus.cpp). Were they in the
cold start, its English chains of thought would fix their language at once, and the language
reward of the RL stages would have nothing left to do, with or without it (the ablation would
measure nothing). Without them the cold start teaches the readable format and English for
everyone else, and Mei's problems reach RL still mixing languages, as in the report's R1-Zero.
"""
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        ex = json.loads(line)
        if ex["prompt"].startswith("Mei "):
            continue  # left to the RL stages' language reward (above)
        record = {"messages": [
            {"role": "user", "content": ex["prompt"]},
            {"role": "assistant", "content": ex["answer"], "reasoning_content": ex["metadata"]["solution"]},
        ]}
        print(json.dumps(record, ensure_ascii=False))
