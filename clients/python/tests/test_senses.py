"""test_senses.py — Client.senses() and Client.workflow_runs() against a real cairnd running the
observation runtime: a sense posts a signal, a reflex starts a workflow run, the agent concludes
its intent and the run completes."""

from __future__ import annotations

import time
import uuid

from support import ServerTestCase

from cairn import Client, NotFound


def eventually(check, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


class SensesRoutes(ServerTestCase):
    CONFIG = ("senses:\n"
              "  probe:\n"
              "    command: \"echo '{\\\"level\\\": \\\"high\\\"}'\"\n"
              "    on: [probe.request]\n"
              "workflows:\n"
              "  respond: {kind: respond, lane: default, concurrency: 1, overflow: drop}\n"
              "reflexes:\n"
              "  - {name: high, on: signal.probe, match: [{path: \"$.level\", op: eq, "
              "value: high}], start: respond}\n")

    def setUp(self) -> None:
        self.c = Client(self.server.url, agent="responder", creator="tester")
        self.addCleanup(self.c.close)

    def test_signal_reflex_run_completes(self) -> None:
        self.c.add_fact("probe.request", {"n": uuid.uuid4().hex})
        runs = eventually(lambda: [r for r in self.c.workflow_runs(workflow="respond")["runs"]
                                   if r["status"] == "started"])
        self.assertTrue(runs, self.c.workflow_runs())
        run = runs[0]
        signal = self.c.get_fact(run["trigger_fact"])
        self.assertEqual((signal["kind"], signal["content"]), ("signal.probe", {"level": "high"}))
        claim = self.c.claim(run["intent"])
        self.c.conclude(run["intent"], claim["epoch"], "respond.done", {"ok": True},
                        derived_from=[run["trigger_fact"]])
        self.assertTrue(eventually(lambda: self.c.workflow_runs(workflow="respond")["runs"][0]
                                   ["status"] == "completed"))
        probe = [s for s in self.c.senses()["senses"] if s["name"] == "probe"][0]
        self.assertEqual(probe["health"], "ok")
        self.assertEqual(probe["last_signal"], signal["id"])


class NoRuntime(ServerTestCase):
    def test_not_found_without_senses(self) -> None:
        with Client(self.server.url) as c:
            with self.assertRaises(NotFound) as ctx:
                c.senses()
            self.assertEqual(ctx.exception.code, "no_runtime")
