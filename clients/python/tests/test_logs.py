"""test_logs.py — log records through the Python client against a real cairnd: append, list
with a source filter and pages, typed refusals that write nothing, and archival of old days
(old rows are put straight into the node's logs.db, which archival reads)."""

from __future__ import annotations

import json
import os
import sqlite3
import time

from support import ServerTestCase

import cairn
from cairn import Client

DAY_MS = 86_400_000


class Logs(ServerTestCase):

    def setUp(self) -> None:
        self.c = Client(self.server.url)
        self.addCleanup(self.c.close)

    def test_append_list_filter_and_pages(self) -> None:
        a = self.c.append_log("py:one", "run.failed", ref="r-1", payload={"exit": 3})
        b = self.c.append_log("py:two", "run.dropped")
        c = self.c.append_log("py:one", "run.failed", payload=[1, 2])
        self.assertLess(a["id"], b["id"])
        self.assertLess(b["id"], c["id"])
        self.assertLessEqual(a["ts"], c["ts"])
        one = self.c.logs(source="py:one")["logs"]
        self.assertEqual([r["id"] for r in one], [a["id"], c["id"]])
        self.assertEqual(one[0], {"id": a["id"], "ts": a["ts"], "source": "py:one",
                                  "type": "run.failed", "ref": "r-1", "payload": {"exit": 3}})
        self.assertEqual(one[1]["payload"], [1, 2])
        first = self.c.logs(after=a["id"] - 1, limit=2)
        self.assertEqual([r["id"] for r in first["logs"]], [a["id"], b["id"]])
        self.assertEqual(first["next"], str(b["id"]))
        rest = self.c.logs(after=first["next"])
        self.assertEqual([r["id"] for r in rest["logs"]], [c["id"]])
        self.assertIsNone(rest["next"])

    def test_refusals_are_typed_and_write_nothing(self) -> None:
        before = self.c.logs(source="py:bad")["logs"]
        with self.assertRaises(cairn.CairnError) as e:
            self.c.append_log("py:bad", "has space")
        self.assertEqual(e.exception.status, 400)
        self.assertEqual(e.exception.code, "invalid_field")
        with self.assertRaises(cairn.CairnError) as e:
            self.c.append_log("py:bad", "t", payload="x" * 70_000)
        self.assertEqual(e.exception.status, 413)
        self.assertEqual(e.exception.code, "too_large")
        self.assertEqual(self.c.logs(source="py:bad")["logs"], before)

    def test_archive_logs(self) -> None:
        # Once this returns, the archival cairnd ran at start is done too.
        self.c.archive_logs()
        today = int(time.time() * 1000) // DAY_MS
        db = sqlite3.connect(os.path.join(self.server.dir, "data", "logs.db"), timeout=10)
        ids = []
        for d in (today - 50, today - 50, today - 48):
            cur = db.execute("INSERT INTO logs(ts, source, type, ref, payload) "
                             "VALUES (?, 'py:old', 't', '', 'null')", (d * DAY_MS + 5,))
            ids.append(cur.lastrowid)
        db.commit()
        db.close()
        day = lambda d: time.strftime("%Y-%m-%d", time.gmtime(d * 86_400))
        r = self.c.archive_logs()
        self.assertEqual(r, {"days": [day(today - 50), day(today - 48)], "records": 3,
                             "watermark": day(today - 31)})
        path = os.path.join(self.server.dir, "data", "archive", "logs", day(today - 50) + ".jsonl")
        with open(path) as f:
            self.assertEqual([json.loads(line)["id"] for line in f], ids[:2])
        self.assertEqual(self.c.logs(source="py:old")["logs"], [])
        self.assertEqual(self.c.archive_logs()["days"], [])
