#!/usr/bin/env python3
"""An Enchufe exec.source plugin: the rows of a meter's CSV export as consumption readings.

Usage: csv_source.py FILE.csv [STATE_FILE]

The CSV has a header `cups,ts,kwh` (ts an ISO-8601 instant). Each row becomes one message with one
reading. The plugin speaks the exec protocol (version 1) on stdin/stdout: a hello line, then an
`emit` per row; the hub answers `ack` once the reading is stored. Progress (how many rows from the
start are acknowledged) is kept in STATE_FILE (default FILE.csv.state), so a restarted plugin goes
on after the last stored row and a row is never lost: at worst sent twice, which the store's
upserts make harmless. At most 50 rows wait for their ack at a time. When every row is
acknowledged it exits with status 0.
"""
import csv
import json
import os
import sys
import threading

MAX_IN_FLIGHT = 50


def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(level, message):
    send({"type": "log", "level": level, "message": message})


def main():
    if len(sys.argv) < 2:
        print("usage: csv_source.py FILE.csv [STATE_FILE]", file=sys.stderr)
        return 2
    path = sys.argv[1]
    state_path = sys.argv[2] if len(sys.argv) > 2 else path + ".state"
    done = 0
    if os.path.exists(state_path):
        with open(state_path) as f:
            done = int(f.read().strip() or 0)

    send({"type": "hello", "protocol": 1, "kind": "source", "name": "csv-source"})
    print(f"csv-source: reading {path}, {done} row(s) stored before", file=sys.stderr, flush=True)

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if done:
        log("info", f"resuming after row {done} of {len(rows)}")

    lock = threading.Condition()
    acked = set()
    failed = {}
    state = {"contiguous": done}

    def read_answers():
        for line in sys.stdin:
            answer = json.loads(line)
            with lock:
                row = int(answer["id"])
                if answer["type"] == "ack":
                    acked.add(row)
                    while state["contiguous"] in acked:
                        acked.discard(state["contiguous"])
                        state["contiguous"] += 1
                    with open(state_path + ".tmp", "w") as out:
                        out.write(str(state["contiguous"]))
                    os.replace(state_path + ".tmp", state_path)
                else:
                    failed[row] = answer.get("error", "nack")
                lock.notify_all()
        with lock:
            state["closed"] = True
            lock.notify_all()

    threading.Thread(target=read_answers, daemon=True).start()

    for index in range(done, len(rows)):
        row = rows[index]
        try:
            reading = {
                "series": row["cups"], "quantity": "consumption", "ts": row["ts"],
                "resolution": "PT1H", "value": float(row["kwh"]), "unit": "kWh",
            }
        except (KeyError, ValueError) as error:
            print(f"row {index + 2}: {error!r}: skipped", file=sys.stderr)
            reading = None
        with lock:
            lock.wait_for(lambda: index - state["contiguous"] < MAX_IN_FLIGHT or state.get("closed"))
            if state.get("closed"):
                return 1
        if reading is None:
            # Nothing to send for a bad row; count it as done so the progress can pass it.
            with lock:
                acked.add(index)
                while state["contiguous"] in acked:
                    acked.discard(state["contiguous"])
                    state["contiguous"] += 1
            continue
        send({"type": "emit", "id": str(index), "message": {"payload": row, "readings": [reading]}})

    with lock:
        lock.wait_for(lambda: state["contiguous"] >= len(rows) or failed or state.get("closed"))
    if failed:
        print(f"{len(failed)} row(s) not stored: {sorted(failed.items())[:3]}", file=sys.stderr)
        return 1
    log("info", f"all {len(rows)} rows stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
