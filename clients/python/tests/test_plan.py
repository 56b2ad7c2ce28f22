"""test_plan.py — Client.plan() and the planner's intent options against a real cairnd with lane
budgets configured."""

from __future__ import annotations

import json
import uuid

from support import ServerTestCase

from cairn import Client


class PlanRoutes(ServerTestCase):
    CONFIG = ("lanes:\n"
              "  llm/openai: {max_concurrency: 1}\n"
              "  llm/anthropic: {max_concurrency: 1, duration_ms: 4000}\n"
              "plan: {default_duration_ms: 500}\n")

    def setUp(self) -> None:
        self.c = Client(self.server.url, agent="a1", creator="alice")
        self.addCleanup(self.c.close)
        self.seed = self.c.add_fact("seed", uuid.uuid4().hex)["id"]

    def reasons(self) -> dict[str, str]:
        return {d["id"]: d["text"] for d in self.c.plan()["intents"]}

    def test_providers_budgets_and_reasons(self) -> None:
        tag = uuid.uuid4().hex[:8]
        first = self.c.create_intent("job", [self.seed], id=f"o1-{tag}", lane="llm",
                                     provider="openai", stale_after_ms=3_600_000)["id"]
        second = self.c.create_intent("job", [self.seed], id=f"o2-{tag}", lane="llm",
                                      provider="openai")["id"]
        heavy = self.c.create_intent("job", [self.seed], id=f"a1-{tag}", lane="llm",
                                     provider="anthropic", cost_units=2)["id"]
        got = self.c.get_intent(first)
        self.assertEqual((got["provider"], got["cost_units"], got["stale_after_ms"]),
                         ("openai", 1, 3_600_000))
        r = self.reasons()
        # Newest first within a budget of one: the second is admitted, the first queued.
        self.assertEqual(r[second], "admitted")
        self.assertEqual(r[first], "lane_full(llm/openai)")
        # Two cost units never fit a budget of one: a configuration error, not a queue.
        self.assertEqual(r[heavy], "no_budget(llm/anthropic)")
        claims = self.c.claim_next(max=5, lease_ttl_ms=60_000)
        self.assertEqual([c["intent"]["id"] for c in claims], [second])
        for c in claims:
            self.c.conclude(c["intent"]["id"], c["epoch"], "done", 1)
        self.assertEqual(self.reasons()[first], "admitted")
        self.c.cancel(first)
        self.c.cancel(heavy)

    def test_dependency_defers_until_the_fact(self) -> None:
        kind = "approval." + uuid.uuid4().hex[:8]
        made = self.c.create_intent("job", [self.seed], requires=[f"kind:{kind}"])
        self.assertEqual(made["state"], "deferred")
        self.assertEqual(self.reasons()[made["id"]], f"missing_dependency(kind:{kind})")
        self.c.add_fact(kind, {"ok": True})
        self.assertEqual(self.c.get_intent(made["id"])["state"], "open")
        self.assertEqual(self.reasons()[made["id"]], "admitted")
        self.c.cancel(made["id"])

    def test_coalesced_by_identity(self) -> None:
        ident = uuid.uuid4().hex
        old = self.c.create_intent("job", [self.seed], identity=ident)["id"]
        new = self.c.create_intent("job", [self.seed], identity=ident)["id"]
        got = self.c.get_intent(old)
        self.assertEqual((got["state"], got["coalesced_into"]), ("coalesced", new))
        self.assertNotIn(old, self.reasons())
        self.c.cancel(new)

    def test_raw_plan_is_the_canonical_text(self) -> None:
        text = self.c.plan(raw=True)
        self.assertIsInstance(text, str)
        plan = json.loads(text)
        self.assertEqual(json.dumps(plan, sort_keys=True, separators=(",", ":"),
                                    ensure_ascii=False), text)
        self.assertEqual(set(plan), {"now_ms", "admitted", "intents", "lanes", "estimates",
                                     "wake_at"})
        lanes = {lane["lane"]: lane for lane in plan["lanes"]}
        self.assertEqual(lanes["llm/openai"]["max_concurrency"], 1)
        self.assertTrue(lanes["default"]["configured"])
