#!/usr/bin/env python3
"""Makes r1-tiny's non-reasoning data (DeepSeek-R1's stage 3 adds it to the rejection-sampled
reasoning data) and the general prompts of its all-scenario RL stage (stage 4): short
instruction-following requests about the things the arithmetic problems talk about, each of
one of four kinds that a built-in verifiable instruction reward checks (reward/README.md):

    lowercase   "... Reply in lower case only."                   -> reward lowercase
    short       "... Answer in at most 8 words."                  -> reward max_words (8)
    keyword     "... Use the word \"because\" in your answer."     -> reward include_keywords
    json        "... Reply as a JSON object with the key \"answer\"." -> reward json_keys

    python3 recipes/sft/make_instructions.py recipes

writes, under the given recipes folder,
    sft/r1-tiny-instructions.jsonl   160 chat examples (messages; a one-line thought as
                                     reasoning_content, the reply as content), seed 41
    prompts/r1-tiny-<kind>.jsonl     240 prompts for GRPO, about 60 of each kind (plain format, kind
                                     custom, empty answer), seed 42, none of them a prompt of
                                     the SFT set
Deterministic: the same files every time (Python's random with fixed seeds).
"""
import json
import os
import random
import sys

NAMES = ["Tom", "Anna", "Ravi", "Mei", "Omar", "Lucia", "Sam", "Zoe", "Ben", "Nora"]
ITEMS = {
    "apples": ("a round fruit", "it grows on trees and is good to eat"),
    "marbles": ("small glass balls", "children roll them in games"),
    "stickers": ("small pictures that stick", "people put them on books and boxes"),
    "books": ("pages bound together", "people read them to learn and to enjoy stories"),
    "cookies": ("small sweet baked treats", "they are made from flour, sugar and butter"),
    "pencils": ("thin sticks for writing", "they leave a grey mark on paper"),
    "coins": ("small pieces of metal money", "people use them to pay for things"),
    "cards": ("flat pieces of stiff paper", "people play games with them"),
}
ASKS = [
    ("What are {item}?", "{item} are {what}."),
    ("Tell {name} what {item} are.", "{item} are {what}, {name}."),
    ("Why does {name} like {item}?", "{name} likes {item} because {why}."),
    ("Describe {item} for {name}.", "{item} are {what}; {why}."),
]
KINDS = {
    "lowercase": " Reply in lower case only.",
    "short": " Answer in at most 8 words.",
    "keyword": " Use the word \"because\" in your answer.",
    "json": " Reply as a JSON object with the key \"answer\".",
}
THOUGHTS = {
    "lowercase": "The reply must use lower case letters only.",
    "short": "The reply must be short: at most 8 words.",
    "keyword": "The reply must use the word because.",
    "json": "The reply must be a JSON object with the key answer.",
}


def reply(kind, item, name, what, why):
    if kind == "lowercase":
        return f"{item} are {what}; {why}.".lower()
    if kind == "short":
        return f"{item.capitalize()} are {what}."  # at most 8 words: the descriptions are short
    if kind == "keyword":
        return f"{name} likes {item} because {why}."
    return json.dumps({"answer": f"{item.capitalize()} are {what}."})


def prompts(seed, count, exclude=()):
    rng = random.Random(seed)
    out, seen = [], set(exclude)
    while len(out) < count:
        kind = rng.choice(sorted(KINDS))
        item = rng.choice(sorted(ITEMS))
        name = rng.choice(NAMES)
        ask = rng.choice(ASKS)[0].format(item=item, name=name)
        prompt = ask + KINDS[kind]
        if prompt in seen:
            continue
        seen.add(prompt)
        out.append((kind, item, name, prompt))
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "recipes"
    sft = prompts(41, 160)
    with open(os.path.join(root, "sft", "r1-tiny-instructions.jsonl"), "w", encoding="utf-8") as f:
        for kind, item, name, prompt in sft:
            what, why = ITEMS[item]
            text = reply(kind, item, name, what, why)
            assert kind != "short" or len(text.split()) <= 8, text
            record = {"messages": [{"role": "user", "content": prompt},
                                   {"role": "assistant", "content": text, "reasoning_content": THOUGHTS[kind]}]}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.makedirs(os.path.join(root, "prompts"), exist_ok=True)
    rl = prompts(42, 240, exclude={p for _, _, _, p in sft})
    for kind in sorted(KINDS):
        with open(os.path.join(root, "prompts", f"r1-tiny-{kind}.jsonl"), "w", encoding="utf-8") as f:
            n = 0
            for k, item, name, prompt in rl:
                if k != kind:
                    continue
                n += 1
                f.write(json.dumps({"id": f"{kind}-{n}", "prompt": prompt, "answer": "", "kind": "custom"}) + "\n")


if __name__ == "__main__":
    main()
