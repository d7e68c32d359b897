#!/usr/bin/env python3
"""Checks that SFT JSON Lines written by `aha distill` or `aha export samples` load as trainers
read them: line by line with Python's json, and with Hugging Face datasets'
load_dataset("json", data_files=...). Not a test (CI has no `datasets`); run it by hand:

    python tools/check_sft_jsonl.py data.jsonl [more.jsonl ...]

Each record must be {"messages": [{"role": "user", "content": str},
{"role": "assistant", "content": str[, "reasoning_content": str]}], "provenance": {...}}.
Prints one line per file and exits 1 on the first problem.
"""
import json
import sys


def check_json(path):
    records = 0
    with open(path, encoding="utf-8") as f:  # strict UTF-8: a bad byte raises here
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            record = json.loads(line)
            assert isinstance(record, dict), f"{where}: not an object"
            assert set(record) == {"messages", "provenance"}, f"{where}: keys {sorted(record)}"
            messages = record["messages"]
            assert isinstance(messages, list) and len(messages) == 2, f"{where}: messages is not [user, assistant]"
            user, assistant = messages
            assert user.get("role") == "user" and isinstance(user.get("content"), str), f"{where}: bad user turn"
            assert assistant.get("role") == "assistant" and isinstance(assistant.get("content"), str), \
                f"{where}: bad assistant turn"
            if "reasoning_content" in assistant:
                assert isinstance(assistant["reasoning_content"], str), f"{where}: reasoning_content not a string"
                if "</think>" in assistant["content"]:
                    assert assistant["reasoning_content"].strip("\n") in assistant["content"], \
                        f"{where}: reasoning_content is not the content's reasoning"
            assert isinstance(record["provenance"], dict), f"{where}: provenance is not an object"
            records += 1
    return records


def check_datasets(path, records):
    import datasets  # Hugging Face datasets

    data = datasets.load_dataset("json", data_files=path, split="train")
    assert data.num_rows == records, f"{path}: datasets read {data.num_rows} rows, json {records}"
    assert "messages" in data.column_names and "provenance" in data.column_names, data.column_names
    if records:
        row = data[0]
        assert row["messages"][0]["role"] == "user" and row["messages"][1]["role"] == "assistant", row["messages"]
    return data.features


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    for path in sys.argv[1:]:
        try:
            records = check_json(path)
            if records == 0:  # datasets cannot build a table from an empty file (it raises)
                print(f"ok {path}: 0 records (json); datasets.load_dataset not tried on an empty file")
                continue
            features = check_datasets(path, records)
        except Exception as e:  # noqa: BLE001 - report whatever failed, with the file
            print(f"FAIL {path}: {type(e).__name__}: {e}")
            return 1
        print(f"ok {path}: {records} records; json and datasets.load_dataset agree; "
              f"messages features {features['messages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
