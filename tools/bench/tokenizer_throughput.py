#!/usr/bin/env python3
"""Tokenizer encode throughput: aha (build/bench/bench_tokenizer) vs Hugging Face tokenizers.

    python3 tools/bench/tokenizer_throughput.py [--bench build/bench/bench_tokenizer]
        [--model DIR ...] [--megabytes 4] [--repeat 3]

Both sides encode the same documents (half seeded synthetic mixed text: prose, code, digits, CJK,
Arabic, Cyrillic, emoji, from tests/fixtures/make_tokenizer_fixtures.py; half the Python standard
library's sources: real code and English docstrings) in the same run, with a warm-up
pass first (both keep a word cache). Single thread: HF encode_batch with RAYON_NUM_THREADS=1 (no
Python per-document overhead) vs aha encode in a loop; all threads: HF encode_batch with its
default pool vs aha encode_batch. Checks that both produced the same ids (count + checksum)
and prints one line per figure with the ratio aha / HF. Default models: the committed
Qwen2-style fixture plus shared/tokenizers/{gpt2,cl100k} beside or inside the checkout.
"""
import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_docs(megabytes, path):
    """Half seeded synthetic mixed text, half real code and English prose (the Python standard
    library's sources, in a seeded order), cut into documents of 1-8 kB."""
    spec = importlib.util.spec_from_file_location("fixtures", ROOT / "tests/fixtures/make_tokenizer_fixtures.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    rng = random.Random(424242)
    target = megabytes * 1e6
    docs, synthetic = [], 0
    while synthetic < target / 2:
        doc = fixtures.synthetic_text(rng, rng.randint(1000, 8000))
        docs.append(doc)
        synthetic += len(doc.encode("utf-8"))
    sources = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    rng.shuffle(sources)
    real = 0
    for source in sources:
        text = source.read_text(encoding="utf-8", errors="replace")
        for start in range(0, len(text), 6000):
            if real >= target / 2:
                break
            doc = text[start:start + 6000]
            docs.append(doc)
            real += len(doc.encode("utf-8"))
    rng.shuffle(docs)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    return docs


def hf_worker(model, docs_path, repeat):
    """Runs in a subprocess so that RAYON_NUM_THREADS takes effect before rayon starts."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    with open(docs_path, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f if line.strip()]
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    encodings = tok.encode_batch(docs)  # warm-up
    tokens, checksum = 0, 1469598103934665603
    for e in encodings:
        for i in e.ids:
            tokens += 1
            checksum = ((checksum ^ i) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        tok.encode_batch(docs)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"tokens": tokens, "checksum": f"{checksum:016x}", "mb_s": nbytes / 1e6 / best}))


def run_hf(model, docs_path, repeat, threads):
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true")
    if threads:
        env["RAYON_NUM_THREADS"] = env["RAYON_RS_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--hf-worker", str(model), str(docs_path), str(repeat)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--hf-worker":
        hf_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=ROOT / "build/bench/bench_tokenizer")
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shared = next((d for d in (ROOT.parent / "shared/tokenizers", ROOT / "shared/tokenizers") if d.exists()), None)
    models = args.model or [ROOT / "tests/fixtures/tokenizers/qwen2_style"] + (
        [shared / "gpt2", shared / "cl100k"] if shared else [])
    import tokenizers
    with tempfile.TemporaryDirectory() as tmp:
        docs_path = Path(tmp) / "docs.jsonl"
        docs = make_docs(args.megabytes, docs_path)
        nbytes = sum(len(d.encode("utf-8")) for d in docs)
        print(f"# {len(docs)} documents, {nbytes / 1e6:.2f} MB; tokenizers {tokenizers.__version__}; "
              f"{os.cpu_count()} CPUs")
        for model in models:
            aha = json.loads(subprocess.run([str(args.bench), "--model", str(model), "--docs", str(docs_path),
                                             "--repeat", str(args.repeat)],
                                            check=True, capture_output=True, text=True).stdout)
            hf1 = run_hf(model, docs_path, args.repeat, 1)
            hfn = run_hf(model, docs_path, args.repeat, None)
            same = (aha["tokens"], aha["checksum"]) == (hf1["tokens"], hf1["checksum"])
            name = model.name
            print(f"tokenizer encode {name} 1 thread: aha {aha['single_mb_s']:.2f} MB/s, HF tokenizers "
                  f"{hf1['mb_s']:.2f} MB/s, ratio {aha['single_mb_s'] / hf1['mb_s']:.2f}x"
                  f"{'' if same else '  (IDS DIFFER from HF!)'}")
            print(f"tokenizer encode {name} all threads ({aha['threads']}): aha {aha['multi_mb_s']:.2f} MB/s, "
                  f"HF tokenizers {hfn['mb_s']:.2f} MB/s, ratio {aha['multi_mb_s'] / hfn['mb_s']:.2f}x")
            if not same:
                sys.exit(f"{name}: aha produced {aha['tokens']} tokens ({aha['checksum']}), "
                         f"HF {hf1['tokens']} ({hf1['checksum']})")


if __name__ == "__main__":
    main()
