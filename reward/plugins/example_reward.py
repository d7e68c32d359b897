#!/usr/bin/env python3
"""An example reward plug-in in Python, speaking aha's JSON Lines protocol on stdin/stdout
(see reward/plugin_rewards.h). It rewards completions that mention given keywords.

    value       share of the option "keywords" found in the completion (case-insensitive)
    components  "found" (how many) and "words" (the completion's word count)
    diagnostic  the keywords that are missing

Use it from a reward list (JSON):
    [{"name": "keywords", "kind": "process",
      "options": {"command": ["python3", "reward/plugins/example_reward.py"],
                  "options": {"keywords": ["therefore", "check"]}}}]

Contract a plug-in keeps: one JSON object per line each way, flushed; the first line is the
handshake with the options; every request carries an "id" that the reply repeats; a problem
with one sample is reported as {"id": ..., "error": "..."} rather than by exiting. Nothing
else may be written to stdout (use stderr for logging).
"""
import json
import sys


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    handshake = json.loads(sys.stdin.readline())
    options = handshake.get("options", {})
    unknown = set(options) - {"keywords"}
    keywords = options.get("keywords")
    if unknown or not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        reply({"error": "options must be {\"keywords\": [non-empty strings]}; unknown: %s" % sorted(unknown)})
        return
    reply({"aha_reward_plugin": 1})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            text = request["completion"].lower()
            found = [k for k in keywords if k.lower() in text]
            missing = [k for k in keywords if k.lower() not in text]
            reply({
                "id": request["id"],
                "value": len(found) / len(keywords) if keywords else 0.0,
                "components": {"found": len(found), "words": len(text.split())},
                "diagnostic": "missing: " + ", ".join(missing) if missing else "all found",
            })
        except Exception as error:  # one bad sample must not end the plug-in
            reply({"id": request.get("id"), "error": repr(error)})


if __name__ == "__main__":
    main()
