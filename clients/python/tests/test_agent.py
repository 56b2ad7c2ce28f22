"""test_agent.py — the Agent helper end to end against a real cairnd: it concludes work,
keeps a short lease alive past its TTL by heartbeating, stops without concluding when the
lease is lost, fails intents whose handler raises, and shuts down cleanly."""

from __future__ import annotations

import threading
import time
import uuid

from support import Proxy, ServerTestCase

import cairn
from cairn import Agent, Client

HANDLER_WAIT_MAX_S = 20.0   # a handler waiting for the test gives up after this (never in a pass)


def uniq(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


class AgentTest(ServerTestCase):

    def setUp(self) -> None:
        self.c = Client(self.server.url, creator="producer")
        self.addCleanup(self.c.close)
        self.f = self.c.add_fact("seed", uuid.uuid4().hex)["id"]

    def intents(self, kind: str, n: int, **kw) -> list[str]:
        return [self.c.create_intent(kind, [self.f], spec={"n": i}, **kw)["id"] for i in range(n)]

    def test_concludes_every_intent_with_the_handlers_result(self) -> None:
        kind = uniq("square")
        ids = self.intents(kind, 6)
        seen: list[str] = []

        def handle(task: cairn.Task) -> dict:
            seen.append(task.id)
            return {"kind": "squared", "content": {"n": task.spec["n"] ** 2}}

        agent = Agent(Client(self.server.url), "sq-1", handle, kinds=[kind], concurrency=2,
                      wait_ms=200)
        agent.run(stop_when_idle=True)
        self.assertIsNone(agent.error)
        self.assertEqual((agent.concluded, agent.failed, agent.lost), (6, 0, 0))
        self.assertEqual(sorted(seen), sorted(ids))
        for iid in ids:
            it = self.c.get_intent(iid)
            self.assertEqual((it["state"], it["holder"]), ("concluded", "sq-1"))
            result = self.c.get_fact(it["result"])
            self.assertEqual(result["kind"], "squared")
            self.assertEqual(result["content"], {"n": it["spec"]["n"] ** 2})
            self.assertEqual(result["creator"], "sq-1")
            self.assertEqual(result["derived_from"][0], self.f)

    def test_heartbeats_keep_a_short_lease_past_its_ttl(self) -> None:
        kind = uniq("slow")
        [iid] = self.intents(kind, 1, lease_ttl_ms=600)
        rival = Client(self.server.url)
        self.addCleanup(rival.close)
        observed: dict = {}

        def handle(task: cairn.Task) -> dict:
            # Outlive the 600 ms lease several times over while a rival keeps trying to take it.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                got = rival.claim_next(agent="rival", kinds=[kind], wait_ms=0)
                observed.setdefault("rival_claims", 0)
                observed["rival_claims"] += len(got)
                time.sleep(0.1)
            observed["cancelled"] = task.cancelled.is_set()
            observed["heartbeats"] = task.heartbeats
            return {"kind": "done", "content": "slow"}

        agent = Agent(Client(self.server.url), "slowpoke", handle, kinds=[kind], wait_ms=200)
        agent.run(max_tasks=1)
        self.assertEqual(agent.concluded, 1)
        self.assertEqual(observed["rival_claims"], 0)
        self.assertFalse(observed["cancelled"])
        self.assertGreaterEqual(observed["heartbeats"], 3)  # every ~200 ms for 2 s
        it = self.c.get_intent(iid)
        self.assertEqual((it["state"], it["holder"], it["epoch"], it["attempts"]),
                         ("concluded", "slowpoke", 1, 1))

    def test_lost_lease_stops_the_agent_from_concluding(self) -> None:
        kind = uniq("doomed")
        [iid] = self.intents(kind, 1, lease_ttl_ms=600)
        started = threading.Event()
        observed: dict = {}

        def handle(task: cairn.Task) -> dict:
            started.set()
            observed["saw_cancel"] = task.cancelled.wait(HANDLER_WAIT_MAX_S)
            return {"kind": "done", "content": "too late"}

        proxy = Proxy(self.server.port)  # to see every request the agent sends
        self.addCleanup(proxy.close)
        agent = Agent(Client(proxy.url), "doomed-1", handle, kinds=[kind], wait_ms=200)
        agent.start(max_tasks=1)
        self.assertTrue(started.wait(HANDLER_WAIT_MAX_S))
        self.c.cancel(iid)
        self.assertTrue(agent.join(HANDLER_WAIT_MAX_S + 5))
        self.assertTrue(observed["saw_cancel"])
        self.assertEqual((agent.concluded, agent.failed, agent.lost), (0, 0, 1))
        it = self.c.get_intent(iid)
        self.assertEqual((it["state"], it["result"]), ("cancelled", None))
        types = [e["type"] for e in self.c.iter_events() if e["subject"] == iid]
        self.assertNotIn("intent.concluded", types)
        self.assertNotIn("intent.failed", types)
        # It knew the lease was gone: it did not even try to conclude or fail.
        self.assertGreaterEqual(len(proxy.requests(f"/v1/intents/{iid}/heartbeat")), 1)
        self.assertEqual(proxy.requests("/conclude") + proxy.requests("/fail"), [])

    def test_lease_taken_over_is_lost(self) -> None:
        # Another agent takes the intent over (here: the lease is forced open and re-claimed);
        # the first holder's next heartbeat carries a stale epoch, so it must not conclude.
        kind = uniq("stolen")
        [iid] = self.intents(kind, 1)
        started = threading.Event()
        observed: dict = {}

        def handle(task: cairn.Task) -> dict:
            started.set()
            observed["saw_cancel"] = task.cancelled.wait(HANDLER_WAIT_MAX_S)
            return {"kind": "done", "content": "stale"}

        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        agent = Agent(Client(proxy.url), "first", handle, kinds=[kind], wait_ms=200,
                      lease_ttl_ms=300)
        agent.start(max_tasks=1)
        self.assertTrue(started.wait(HANDLER_WAIT_MAX_S))
        other = Client(self.server.url)
        self.addCleanup(other.close)
        held = self.c.get_intent(iid)
        self.assertEqual(held["holder"], "first")
        other.release(iid, held["epoch"], agent="first")
        epoch = other.claim(iid, agent="second", lease_ttl_ms=60_000)["epoch"]
        self.assertEqual(epoch, held["epoch"] + 1)
        self.assertTrue(agent.join(HANDLER_WAIT_MAX_S + 5))
        self.assertTrue(observed["saw_cancel"])
        self.assertEqual((agent.concluded, agent.lost), (0, 1))
        self.assertEqual(proxy.requests("/conclude"), [])
        other.conclude(iid, epoch, "done", "fresh", agent="second")
        it = self.c.get_intent(iid)
        self.assertEqual((it["state"], it["holder"]), ("concluded", "second"))
        self.assertEqual(self.c.get_fact(it["result"])["content"], "fresh")

    def test_heartbeats_that_never_get_through_end_in_a_lost_lease(self) -> None:
        # Every heartbeat is refused with 503 (the client's retries included): once the lease's
        # TTL has passed without one, the agent gives the task up and sends no conclude.
        kind = uniq("unheard")
        [iid] = self.intents(kind, 1)
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        proxy.inject("/heartbeat", 10_000, 503, "overloaded", retry_after=0)
        observed: dict = {}

        def handle(task: cairn.Task) -> dict:
            observed["saw_cancel"] = task.cancelled.wait(HANDLER_WAIT_MAX_S)
            return {"kind": "done", "content": "unheard"}

        agent = Agent(Client(proxy.url), "unheard-1", handle, kinds=[kind], wait_ms=0,
                      lease_ttl_ms=300)
        agent.run(max_tasks=1)
        self.assertTrue(observed["saw_cancel"])
        self.assertEqual((agent.concluded, agent.lost), (0, 1))
        self.assertGreaterEqual(len(proxy.requests("/heartbeat")), 2)
        self.assertEqual(proxy.requests("/conclude"), [])
        it = self.c.get_intent(iid)
        self.assertNotEqual(it["state"], "concluded")

    def test_a_raising_handler_fails_the_intent(self) -> None:
        kind = uniq("broken")
        [retry, fatal] = [self.c.create_intent(kind, [self.f], spec=s, max_attempts=3)["id"]
                          for s in ("retry", "fatal")]

        def handle(task: cairn.Task) -> dict:
            if task.spec == "fatal":
                raise cairn.PermanentFailure("cannot ever work")
            raise ValueError("transient trouble")

        agent = Agent(Client(self.server.url), "breaker", handle, kinds=[kind], wait_ms=0)
        agent.run(max_tasks=2)
        self.assertEqual((agent.concluded, agent.failed), (0, 2))
        r = self.c.get_intent(retry)
        self.assertEqual(r["state"], "open")
        self.assertIn("ValueError: transient trouble", r["last_error"])
        self.assertIsNotNone(r["not_before"])
        d = self.c.get_intent(fatal)
        self.assertEqual(d["state"], "dead")
        self.assertIn("cannot ever work", d["last_error"])

    def test_a_handler_returning_no_result_fails_the_intent(self) -> None:
        kind = uniq("empty")
        [iid] = self.intents(kind, 1)
        agent = Agent(Client(self.server.url), "empty-1", lambda task: None, kinds=[kind],
                      wait_ms=0)
        agent.run(max_tasks=1)
        self.assertEqual(agent.failed, 1)
        self.assertIn("TypeError", self.c.get_intent(iid)["last_error"])

    def test_stop_ends_an_idle_agent_and_it_can_be_a_context_manager(self) -> None:
        kind = uniq("quiet")
        with Agent(Client(self.server.url), "quiet-1", lambda t: {"kind": "k", "content": 1},
                   kinds=[kind], wait_ms=300) as agent:
            [iid] = self.intents(kind, 1)
            deadline = time.monotonic() + HANDLER_WAIT_MAX_S
            while agent.concluded == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
        self.assertFalse(agent._thread.is_alive())
        self.assertEqual(agent.concluded, 1)
        self.assertEqual(self.c.get_intent(iid)["state"], "concluded")


    def test_claims_that_arrive_after_stop_are_released(self) -> None:
        kind = uniq("late")
        agent = Agent(Client(self.server.url), "late-1", lambda t: {"kind": "k", "content": 1},
                      kinds=[kind], wait_ms=20_000)
        agent.start()
        # Wait until its long-poll is parked in the server, then stop, then make work appear:
        # the parked poll claims it after stop(), and the agent must hand it back untouched.
        deadline = time.monotonic() + HANDLER_WAIT_MAX_S
        while "cairn_parked_long_polls 1" not in self.c.metrics():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        self.assertFalse(agent.stop(timeout=0))  # still in its long-poll
        [iid] = self.intents(kind, 1)
        self.assertTrue(agent.join(HANDLER_WAIT_MAX_S))
        self.assertEqual((agent.released, agent.concluded), (1, 0))
        it = self.c.get_intent(iid)
        self.assertEqual((it["state"], it["holder"], it["epoch"]), ("open", None, 1))

class AgentAuth(ServerTestCase):
    CONFIG = None  # set in setUpClass (token digests)

    @classmethod
    def setUpClass(cls) -> None:
        from support import sha256_hex
        cls.CONFIG = f"""
tokens:
  - {{name: worker, sha256: {sha256_hex("worker-secret")}, scopes: [agent]}}
  - {{name: reader, sha256: {sha256_hex("reader-secret")}, scopes: [read]}}
  - {{name: boss, sha256: {sha256_hex("boss-secret")}, scopes: [admin]}}
"""
        super().setUpClass()

    def test_auth_errors(self) -> None:
        anon = Client(self.server.url, retries_max=0)
        self.addCleanup(anon.close)
        self.assertEqual(anon.healthz()["status"], "ok")  # needs no token
        with self.assertRaises(cairn.Unauthenticated) as cm:
            anon.state()
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthenticated"))
        wrong = Client(self.server.url, token="not-a-token", retries_max=0)
        self.addCleanup(wrong.close)
        with self.assertRaises(cairn.Unauthenticated):
            wrong.add_fact("obs", 1)
        reader = Client(self.server.url, token="reader-secret", retries_max=0)
        self.addCleanup(reader.close)
        self.assertIn("intents", reader.state())
        with self.assertRaises(cairn.Forbidden) as cm:
            reader.add_fact("obs", 1)
        self.assertEqual((cm.exception.status, cm.exception.code), (403, "insufficient_scope"))
        worker = Client(self.server.url, token="worker-secret", retries_max=0)
        self.addCleanup(worker.close)
        with self.assertRaises(cairn.Forbidden) as cm:
            worker.add_fact("obs", 1, creator="someone-else")
        self.assertEqual(cm.exception.code, "impersonation")
        f = worker.add_fact("obs", "by worker")
        self.assertEqual(reader.get_fact(f["id"])["creator"], "worker")
        # An admin may revoke another caller's hint.
        h = worker.create_hint("policy", {"kind": "x"}, {"type": "deny"}, derived_from=[f["id"]])
        boss = Client(self.server.url, token="boss-secret", retries_max=0)
        self.addCleanup(boss.close)
        self.assertEqual(boss.revoke_hint(h["id"]), {"revoked": True})

    def test_agent_acts_as_its_token(self) -> None:
        worker = Client(self.server.url, token="worker-secret")
        self.addCleanup(worker.close)
        f = worker.add_fact("obs", "auth agent")["id"]
        kind = uniq("authwork")
        iid = worker.create_intent(kind, [f])["id"]
        agent = Agent(worker, "worker", lambda t: {"kind": "ok", "content": t.id}, kinds=[kind],
                      wait_ms=0)
        agent.run(max_tasks=1)
        it = worker.get_intent(iid)
        self.assertEqual((it["state"], it["holder"]), ("concluded", "worker"))

    def test_agent_with_a_foreign_name_stops_with_the_error(self) -> None:
        worker = Client(self.server.url, token="worker-secret")
        self.addCleanup(worker.close)
        agent = Agent(worker, "impostor", lambda t: {"kind": "k", "content": 1}, wait_ms=0)
        with self.assertRaises(cairn.Forbidden):
            agent.run()
        self.assertIsInstance(agent.error, cairn.Forbidden)
        self.assertEqual(agent.error.code, "impersonation")
