#!/usr/bin/env python3
"""Agreement of aha's math verifier with Hugging Face Math-Verify's own test cases.

Usage:
  pip download math-verify --no-binary :all: --no-deps -d /tmp/mv   # or: git clone .../Math-Verify
  python3 tools/bench/math_verify_agreement.py --math-verify /tmp/mv/math_verify-0.9.0.tar.gz \
      [--cases-binary build/bench/math_verify_cases] [--extraction lenient] [--show-agreements]

Reads every `@pytest.mark.parametrize` list of (gold, pred, expected) cases in the checkout's
tests/*.py (an sdist .tar.gz or a folder), with the extraction targets and precision that the
test function passes to compare_strings, runs aha on the pairs (math_verify_cases, one JSON
line per pair) and prints the agreement in both directions (cases Math-Verify accepts, cases it
refuses), then each disagreement. Nothing of Math-Verify is imported or run: only its test
files are read, as data. Cases whose expectation we consider a Math-Verify quirk are listed in
reward/MATH_VERIFIER.md; they count as disagreements here all the same.
"""
import argparse
import ast
import io
import json
import math
import os
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_sources(path):
    """(file name, source text) of each tests/test_*.py in a folder or an sdist."""
    if os.path.isdir(path):
        folder = os.path.join(path, "tests")
        for name in sorted(os.listdir(folder)):
            if name.startswith("test_") and name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    yield name, f.read()
        return
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if len(parts) >= 2 and parts[-2] == "tests" and parts[-1].startswith("test_") and parts[-1].endswith(".py"):
                yield parts[-1], tar.extractfile(member).read().decode("utf-8")


def value_of(node):
    """A literal, or an f-string over math (test_float_precision): evaluated with math only."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        code = compile(ast.Expression(node), "<case>", "eval")
        return eval(code, {"__builtins__": {}, "math": math})  # noqa: S307 - test data, math only


def call_settings(function):
    """match_types / precision / strict keyword values of the compare_strings call in function."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            settings = {}
            for keyword in node.keywords:
                if isinstance(keyword.value, ast.Name):
                    settings[keyword.arg] = ("param", keyword.value.id)
                else:
                    settings[keyword.arg] = ("value", ast.literal_eval(keyword.value))
            return settings
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "verify":
            return {}  # parse()/verify() with their defaults
    return None


def cases_of(name, source):
    tree = ast.parse(source)
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        settings = call_settings(function)
        if settings is None:
            continue
        for decorator in function.decorator_list:
            if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
                continue
            names = [n.strip() for n in ast.literal_eval(decorator.args[0]).split(",")]
            if "gold" not in names or "pred" not in names:
                continue
            for index, element in enumerate(decorator.args[1].elts):
                row = dict(zip(names, value_of(element)))
                resolved = {k: (row[v] if kind == "param" else v) for k, (kind, v) in settings.items()}
                expected = row.get("expected", row.get("result"))
                yield {
                    "source": f"{name}::{function.name}[{index}]",
                    "gold": row["gold"],
                    "pred": row["pred"],
                    "expected": bool(expected),
                    "match_types": resolved.get("match_types", ["latex", "expr"]),
                    "precision": resolved.get("precision", 6),
                    "strict": resolved.get("strict", True),
                    "allow_set_relation_comp": resolved.get("allow_set_relation_comp", False),
                }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--math-verify", required=True, help="Math-Verify sdist (.tar.gz) or source folder")
    parser.add_argument("--cases-binary", default=os.path.join(ROOT, "build/bench/math_verify_cases"))
    parser.add_argument("--extraction", default="lenient", choices=["strict", "lenient"])
    parser.add_argument("--show-agreements", action="store_true")
    args = parser.parse_args()

    cases = [c for name, source in test_sources(args.math_verify) for c in cases_of(name, source)]
    if not cases:
        sys.exit(f"no parametrized (gold, pred, expected) cases found under {args.math_verify}")
    # Math-Verify's precision is a number of decimal places p (both sides rounded to p places, so
    # they may differ by up to 10^-p); aha's tolerance is relative: 2 * 10^-p. Its "latex"-only
    # extraction target reads no bare numbers: "numbers": false.
    lines = "".join(
        json.dumps({"pred": c["pred"], "gold": c["gold"], "extraction": args.extraction,
                    "relative_precision": 2 * 10.0 ** -c["precision"],
                    "numbers": "expr" in c["match_types"]}) + "\n"
        for c in cases)
    run = subprocess.run([args.cases_binary], input=lines, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"{args.cases_binary} failed ({run.returncode}): {run.stderr.strip()}")
    verdicts = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(verdicts) == len(cases), "one verdict per case"

    accepted = [(c, v) for c, v in zip(cases, verdicts) if c["expected"]]
    refused = [(c, v) for c, v in zip(cases, verdicts) if not c["expected"]]
    agree_accept = sum(v["equal"] for _, v in accepted)
    agree_refuse = sum(not v["equal"] for _, v in refused)
    total = agree_accept + agree_refuse
    print(f"Math-Verify test cases: {len(cases)} ({len(accepted)} expected equal, {len(refused)} expected unequal), "
          f"extraction {args.extraction}")
    print(f"agreement on cases Math-Verify accepts: {agree_accept}/{len(accepted)} "
          f"({100.0 * agree_accept / max(1, len(accepted)):.1f}%)")
    print(f"agreement on cases Math-Verify refuses: {agree_refuse}/{len(refused)} "
          f"({100.0 * agree_refuse / max(1, len(refused)):.1f}%); wrong answers aha accepts: "
          f"{len(refused) - agree_refuse}")
    print(f"overall agreement: {total}/{len(cases)} ({100.0 * total / len(cases):.1f}%; target 95%)")
    for c, v in zip(cases, verdicts):
        if v["equal"] != c["expected"] or args.show_agreements:
            mark = "agree" if v["equal"] == c["expected"] else "DISAGREE"
            print(f"\n{mark} {c['source']}: Math-Verify {int(c['expected'])}, aha {int(v['equal'])}"
                  f"{' (' + v['refusal'] + ')' if v.get('refusal') else ''}")
            print(f"  gold {c['gold'][-160:]!r}\n  pred {c['pred'][-160:]!r}")
            print(f"  aha read gold {v.get('gold_answer')!r}, pred {v.get('answer')!r}")


if __name__ == "__main__":
    main()
