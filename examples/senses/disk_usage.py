#!/usr/bin/env python3
"""A cairn sense: disk usage of one path (docs/senses.md).

stdin:  {"state": ..., "last_signal": {"id", "value"} | null, "trigger": {...}}
stdout: {"signal": {...}, "state": {...}}, or null when nothing changed.

A disk.check fact may name the path and the threshold:
  {"path": "/", "threshold_pct": 90}
Every measurement is also kept in the sense's own database (CAIRN_SENSE_DB,
table `samples` from disk-migrations/).
"""
import json
import os
import sqlite3
import sys
import time

inp = json.load(sys.stdin)
state = inp.get("state") or {"path": "/", "threshold_pct": 90}
trigger = inp.get("trigger") or {}
request = (trigger.get("fact") or {}).get("content") or {}
if isinstance(request, dict):
    state["path"] = request.get("path", state["path"])
    state["threshold_pct"] = request.get("threshold_pct", state["threshold_pct"])

st = os.statvfs(state["path"])
total = st.f_blocks * st.f_frsize
free = st.f_bavail * st.f_frsize
used_pct = round(100.0 * (total - free) / total, 1) if total else 0.0
level = "full" if used_pct >= state["threshold_pct"] else "ok"

db = sqlite3.connect(os.environ["CAIRN_SENSE_DB"])
db.execute("INSERT INTO samples(at_ms, path, used_pct) VALUES (?, ?, ?)",
           (int(time.time() * 1000), state["path"], used_pct))
db.commit()

signal = {"path": state["path"], "used_pct": used_pct, "free_mb": free // 2**20,
          "threshold_pct": state["threshold_pct"], "level": level}
last = (inp.get("last_signal") or {}).get("value")
if last is not None and trigger.get("type") == "interval" and \
        last.get("level") == level and abs(last.get("used_pct", 0) - used_pct) < 1:
    print("null")  # nothing worth a signal: no fact, no reflex
else:
    print(json.dumps({"signal": signal, "state": state}))
