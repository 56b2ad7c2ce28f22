#!/usr/bin/env python3
"""A sense that reads a peer's database through CAIRN_PEER_DBS and tries to
write it. Prints one JSON object: the peers it was given, the rows of
readings(x) in the peer named by argv[1], and the error an INSERT into it got
(null if the INSERT succeeded)."""
import json
import os
import sqlite3
import sys

peers = dict(p.split("=", 1) for p in os.environ.get("CAIRN_PEER_DBS", "").split(";") if p)
out = {"peers": sorted(peers), "own": os.environ.get("CAIRN_SENSE_DB")}
uri = peers[sys.argv[1]]
db = sqlite3.connect(uri, uri=True)
out["rows"] = [r[0] for r in db.execute("SELECT x FROM readings ORDER BY x")]
try:
    db.execute("INSERT INTO readings (x) VALUES (999)")
    db.commit()
    out["insert_error"] = None
except sqlite3.Error as e:
    out["insert_error"] = str(e)
db.close()
print(json.dumps(out))
