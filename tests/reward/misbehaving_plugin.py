#!/usr/bin/env python3
"""A reward plug-in for the tests that misbehaves on request: the completion decides.

    "crash"     exits with status 3 without answering
    "hang"      never answers
    "garbage"   answers with a line that is not JSON
    "wrong_id"  answers with another request's id
    "nan"       answers with a value that is not a number
    "error"     answers with a well-formed error
    "slow"      answers 1 after 0.3 s
    "print"     writes two lines at once
    otherwise   answers {"value": len(completion)}
Option {"refuse": true} makes the handshake fail.
"""
import json
import sys
import time


def send(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


handshake = json.loads(sys.stdin.readline())
if handshake.get("options", {}).get("refuse"):
    send(json.dumps({"error": "refusing as asked"}))
    sys.exit(0)
send(json.dumps({"aha_reward_plugin": 1}))
for line in sys.stdin:
    request = json.loads(line)
    completion = request["completion"]
    if completion == "crash":
        sys.exit(3)
    elif completion == "hang":
        time.sleep(3600)
    elif completion == "garbage":
        send("this is not json")
    elif completion == "wrong_id":
        send(json.dumps({"id": request["id"] + 1000, "value": 1}))
    elif completion == "nan":
        send('{"id": %d, "value": "many"}' % request["id"])
    elif completion == "slow":
        time.sleep(0.3)
        send(json.dumps({"id": request["id"], "value": 1}))
    elif completion == "error":
        send(json.dumps({"id": request["id"], "error": "cannot score this"}))
    elif completion == "print":
        send(json.dumps({"id": request["id"], "value": 1}) + "\n" + json.dumps({"id": request["id"], "value": 2}))
    else:
        send(json.dumps({"id": request["id"], "value": len(completion), "components": {"pid": 0}}))
