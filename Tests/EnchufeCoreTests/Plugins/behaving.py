#!/usr/bin/env python3
"""A test plugin (exec.transform or exec.sink) that behaves as told by its first argument:

ok       each message: emit it with payload.seen = true (and payload.pid), then ack;
         payload.bad = true is refused with retry false
crash    exits with status 3 on a message whose payload.crash is true (and on none other)
hang     never answers a message whose payload.hang is true
garbage  writes a line that is not JSON for a message whose payload.garbage is true
noack    emits but never acknowledges anything
old      says hello with protocol 99
The file named by the second argument, if any, gets one line per message received (its id and
payload), so a test can see what reached the program and how often.
"""
import json
import os
import sys

mode = sys.argv[1]
seen = open(sys.argv[2], "a") if len(sys.argv) > 2 else None


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


print(f"starting in mode {mode}", file=sys.stderr, flush=True)
send({"type": "hello", "protocol": 99 if mode == "old" else 1, "name": "behaving-" + mode})
for line in sys.stdin:
    request = json.loads(line)
    message = request["message"]
    payload = message.get("payload") or {}
    if seen:
        seen.write(json.dumps({"id": request["id"], "payload": payload}) + "\n")
        seen.flush()
    if mode == "crash" and payload.get("crash"):
        sys.exit(3)
    if mode == "hang" and payload.get("hang"):
        continue
    if mode == "garbage" and payload.get("garbage"):
        sys.stdout.write("this is not json\n")
        sys.stdout.flush()
        continue
    if payload.get("bad"):
        send({"type": "error", "id": request["id"], "error": "payload.bad is set", "retry": False})
        continue
    payload["seen"] = True
    payload["pid"] = os.getpid()
    message["payload"] = payload
    send({"type": "emit", "id": request["id"], "message": message})
    if mode != "noack":
        send({"type": "ack", "id": request["id"]})
