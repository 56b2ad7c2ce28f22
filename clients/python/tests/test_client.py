"""test_client.py — every Client method against a real cairnd, every error class on its error,
and the retry policy through a fault-injecting proxy."""

from __future__ import annotations

import threading
import uuid

from support import Proxy, ServerTestCase

import cairn
from cairn import Client


def uniq(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


class ClientRoutes(ServerTestCase):
    """One method per route, each checked against what the server really did."""

    def setUp(self) -> None:
        self.c = Client(self.server.url, agent="a1", creator="alice")
        self.addCleanup(self.c.close)

    def fact(self, kind: str = "obs", content: object = None) -> str:
        return self.c.add_fact(kind, content if content is not None else uuid.uuid4().hex)["id"]

    def test_healthz_and_metrics(self) -> None:
        self.assertEqual(self.c.healthz(), {"status": "ok"})
        self.c.state()
        text = self.c.metrics()
        self.assertIn('cairn_http_requests_total{route="GET /v1/state",status="200"}', text)
        self.assertIn("cairn_intents{", text)

    def test_add_fact_is_content_addressed_and_readable(self) -> None:
        kind = uniq("page")
        first = self.c.add_fact(kind, {"url": "https://example.org"}, content_type="application/json")
        self.assertTrue(first["created"])
        again = self.c.add_fact(kind, {"url": "https://example.org"})
        self.assertFalse(again["created"])
        self.assertEqual((again["id"], again["seq"]), (first["id"], first["seq"]))
        got = self.c.get_fact(first["id"])
        self.assertEqual(got["kind"], kind)
        self.assertEqual(got["content"], {"url": "https://example.org"})
        self.assertEqual(got["creator"], "alice")
        self.assertEqual(got["seq"], first["seq"])
        child = self.c.add_fact(kind, "child", derived_from=[first["id"]])
        self.assertEqual(self.c.get_fact(child["id"])["derived_from"], [first["id"]])

    def test_list_facts_follows_the_cursor(self) -> None:
        kind = uniq("listed")
        ids = [self.c.add_fact(kind, i)["id"] for i in range(7)]
        page = self.c.list_facts(kind=kind, limit=3)
        self.assertEqual([f["id"] for f in page["facts"]], ids[:3])
        self.assertIsNotNone(page["next"])
        self.assertEqual([f["id"] for f in self.c.iter_facts(kind=kind, page_size=3)], ids)
        after = page["facts"][0]["seq"]
        self.assertEqual([f["id"] for f in self.c.iter_facts(kind=kind, after=after)], ids[1:])

    def test_intent_lifecycle_claim_heartbeat_conclude(self) -> None:
        f = self.fact()
        created = self.c.create_intent(uniq("work"), [f], spec={"n": 3}, lane="l1", priority=5,
                                       lease_ttl_ms=20_000, max_attempts=2)
        self.assertEqual(created["state"], "open")
        self.assertTrue(created["created"])
        iid = created["id"]
        got = self.c.get_intent(iid)
        self.assertEqual((got["spec"], got["lane"], got["priority"]), ({"n": 3}, "l1", 5))
        self.assertEqual(got["creator"], "alice")
        claim = self.c.claim(iid)
        self.assertEqual(claim["epoch"], 1)
        with self.assertRaises(cairn.AlreadyClaimed) as cm:
            self.c.claim(iid, agent="a2")
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(cm.exception.details["holder"], "a1")
        hb = self.c.heartbeat(iid, claim["epoch"], lease_ttl_ms=60_000)
        self.assertGreater(hb["lease_expires_at"], claim["lease_expires_at"])
        with self.assertRaises(cairn.StaleEpoch):
            self.c.heartbeat(iid, claim["epoch"] + 7)
        with self.assertRaises(cairn.Conflict) as cm:
            self.c.conclude(iid, claim["epoch"], "x", 1, agent="a2")
        self.assertEqual(cm.exception.code, "not_holder")
        done = self.c.conclude(iid, claim["epoch"], "answer", {"n": 9}, content_type="application/json")
        self.assertEqual(done["state"], "concluded")
        result = self.c.get_fact(done["result"])
        self.assertEqual((result["kind"], result["content"], result["creator"]),
                         ("answer", {"n": 9}, "a1"))
        self.assertEqual(result["derived_from"][0], f)
        after = self.c.get_intent(iid)
        self.assertEqual((after["state"], after["result"]), ("concluded", done["result"]))
        with self.assertRaises(cairn.InvalidState):
            self.c.cancel(iid)

    def test_client_chosen_id_with_slash_round_trips(self) -> None:
        iid = "job/" + uuid.uuid4().hex[:8] + "+x@y"
        self.assertEqual(self.c.create_intent("work", [self.fact()], id=iid)["id"], iid)
        self.assertEqual(self.c.get_intent(iid)["id"], iid)
        self.assertEqual(self.c.claim(iid)["id"], iid)

    def test_fail_release_cancel(self) -> None:
        kind = uniq("flaky")
        f = self.fact()
        iid = self.c.create_intent(kind, [f], max_attempts=2)["id"]
        e = self.c.claim(iid)["epoch"]
        r = self.c.fail(iid, e, "boom")
        self.assertEqual(r["state"], "open")
        self.assertIsInstance(r["not_before"], int)
        self.assertEqual(self.c.get_intent(iid)["last_error"], "boom")

        iid2 = self.c.create_intent(kind, [f], spec=2)["id"]
        e2 = self.c.claim(iid2)["epoch"]
        self.assertEqual(self.c.fail(iid2, e2, "fatal", retryable=False)["state"], "dead")

        iid3 = self.c.create_intent(kind, [f], spec=3)["id"]
        e3 = self.c.claim(iid3)["epoch"]
        with self.assertRaises(cairn.Forbidden) as cm:
            self.c.release(iid3, e3, agent="a2")
        self.assertEqual((cm.exception.status, cm.exception.code), (403, "not_holder"))
        self.assertEqual(self.c.release(iid3, e3)["state"], "open")
        with self.assertRaises(cairn.Forbidden) as cm:
            self.c.cancel(iid3, creator="mallory")
        self.assertEqual(cm.exception.code, "not_creator")
        self.assertEqual(self.c.cancel(iid3)["state"], "cancelled")
        self.assertEqual(self.c.get_intent(iid3)["state"], "cancelled")

    def test_list_intents_filters_and_cursor(self) -> None:
        kind = uniq("batch")
        f = self.fact()
        ids = sorted(self.c.create_intent(kind, [f], spec=i)["id"] for i in range(5))
        self.c.claim(ids[0])
        listed = [i["id"] for i in self.c.iter_intents(kind=kind, page_size=2)]
        self.assertEqual(listed, ids)
        open_ids = [i["id"] for i in self.c.iter_intents(state="open", kind=kind)]
        self.assertEqual(open_ids, ids[1:])
        claimed = self.c.list_intents(state="claimed", kind=kind)["intents"]
        self.assertEqual([i["id"] for i in claimed], ids[:1])
        with self.assertRaises(cairn.InvalidRequest) as cm:
            self.c.list_intents(state="sleeping")
        self.assertEqual(cm.exception.code, "invalid_query")

    def test_claim_next_returns_nothing_or_the_work(self) -> None:
        kind = uniq("idle")
        self.assertEqual(self.c.claim_next(kinds=[kind], wait_ms=0), [])
        f = self.fact()
        ids = {self.c.create_intent(kind, [f], spec=i)["id"] for i in range(3)}
        got = self.c.claim_next(kinds=[kind], max=5, lease_ttl_ms=5000)
        self.assertEqual({c["intent"]["id"] for c in got}, ids)
        for c in got:
            self.assertEqual(c["intent"]["holder"], "a1")
            self.assertEqual(c["epoch"], 1)

    def test_claim_next_long_poll_wakes_on_new_work(self) -> None:
        kind = uniq("later")
        out: list = []
        waiting = Client(self.server.url, agent="poller")
        self.addCleanup(waiting.close)
        t = threading.Thread(target=lambda: out.append(
            waiting.claim_next(kinds=[kind], wait_ms=20_000)))
        t.start()
        iid = self.c.create_intent(kind, [self.fact()])["id"]
        t.join(25)
        self.assertFalse(t.is_alive())
        self.assertEqual([c["intent"]["id"] for c in out[0]], [iid])
        self.assertEqual(self.c.get_intent(iid)["holder"], "poller")

    def test_admission_fields_deferred_coalesced(self) -> None:
        kind = uniq("adm")
        f = self.fact()
        gate = uniq("gate")
        waiting = self.c.create_intent(kind, [f], requires=["kind:" + gate], provider="p1",
                                       cost_units=2, stale_after_ms=600_000)
        self.assertEqual(waiting["state"], "deferred")
        got = self.c.get_intent(waiting["id"])
        self.assertEqual((got["provider"], got["cost_units"], got["stale_after_ms"]),
                         ("p1", 2, 600_000))
        self.assertEqual(self.c.claim_next(kinds=[kind], wait_ms=0), [])
        self.c.add_fact(gate, {"ok": True})
        self.assertEqual(self.c.get_intent(waiting["id"])["state"], "open")
        ident = uniq("same")
        old = self.c.create_intent(kind, [f], identity=ident, spec=1)["id"]
        new = self.c.create_intent(kind, [f], identity=ident, spec=2)
        self.assertEqual(new["state"], "open")
        old_now = self.c.get_intent(old)
        self.assertEqual((old_now["state"], old_now["coalesced_into"]), ("coalesced", new["id"]))

    def test_hints_create_get_list_revoke(self) -> None:
        kind = uniq("gated")
        f = self.fact()
        hint = self.c.create_hint("policy", {"kind": kind}, {"type": "deny"}, reason="test",
                                  derived_from=[f])
        self.assertTrue(hint["created"])
        hid = hint["id"]
        self.assertEqual(self.c.get_hint(hid)["id"], hid)
        self.assertIn(hid, [h["id"] for h in self.c.iter_hints(live=True, page_size=1)])
        iid = self.c.create_intent(kind, [f])["id"]
        with self.assertRaises(cairn.Conflict) as cm:
            self.c.claim(iid)
        self.assertEqual(cm.exception.code, "denied_by_hint")
        self.assertEqual(self.c.claim_next(kinds=[kind]), [])
        with self.assertRaises(cairn.Forbidden):
            self.c.revoke_hint(hid, creator="mallory")
        self.assertEqual(self.c.revoke_hint(hid), {"revoked": True})
        self.assertNotIn(hid, [h["id"] for h in self.c.iter_hints(live=True)])
        self.assertIn(hid, [h["id"] for h in self.c.iter_hints()])
        self.assertEqual(self.c.claim(iid)["epoch"], 1)
        with self.assertRaises(cairn.NotFound):
            self.c.get_hint("no-such-hint")

    def test_state_and_events(self) -> None:
        before = self.c.state()
        kind = uniq("counted")
        f = self.fact()
        iid = self.c.create_intent(kind, [f])["id"]
        after = self.c.state()
        self.assertEqual(after["intents"]["open"], before["intents"]["open"] + 1)
        self.assertEqual(after["facts"], before["facts"] + 1)
        self.assertEqual(after["last_seq"], before["last_seq"] + 2)
        evs = list(self.c.iter_events(after=before["last_seq"], page_size=1))
        self.assertEqual([(e["type"], e["subject"]) for e in evs],
                         [("fact.recorded", f), ("intent.created", iid)])
        self.assertEqual([e["seq"] for e in evs],
                         [before["last_seq"] + 1, before["last_seq"] + 2])
        page = self.c.events(after=before["last_seq"], limit=1)
        self.assertEqual(page["next"], before["last_seq"] + 1)


class ClientErrors(ServerTestCase):
    """Each exception class on the server error that produces it."""

    def setUp(self) -> None:
        self.c = Client(self.server.url, agent="a1", retries_max=0)
        self.addCleanup(self.c.close)

    def check(self, cls: type, status: int, code: str, fn, *args, **kwargs) -> cairn.CairnError:
        with self.assertRaises(cls) as cm:
            fn(*args, **kwargs)
        e = cm.exception
        self.assertIsInstance(e, cairn.CairnError)
        self.assertEqual((e.status, e.code), (status, code), e)
        self.assertIsInstance(e.details, dict)
        self.assertTrue(e.message)
        return e

    def test_invalid_request(self) -> None:
        e = self.check(cairn.InvalidRequest, 400, "invalid_field", self.c.add_fact, "bad kind!", 1)
        self.assertEqual(e.details.get("field"), "kind")
        self.check(cairn.InvalidRequest, 400, "invalid_query", self.c.list_facts, limit=0)
        e = self.check(cairn.InvalidRequest, 400, "invalid_json", self.c.request, "POST",
                       "/v1/facts", None, mutating=True, headers={"Content-Length": "0"})
        self.assertIn("offset", e.details)

    def test_method_not_allowed(self) -> None:
        e = self.check(cairn.MethodNotAllowed, 405, "method_not_allowed", self.c.request, "PUT",
                       "/v1/state")
        self.assertIsInstance(e, cairn.InvalidRequest)

    def test_unknown_reference_and_not_grounded(self) -> None:
        missing = "0" * 64
        self.check(cairn.UnknownReference, 422, "unknown_reference", self.c.add_fact, "obs", 1,
                   derived_from=[missing])
        self.check(cairn.UnknownReference, 422, "unknown_reference", self.c.create_intent,
                   "work", [missing])
        e = self.check(cairn.NotGrounded, 422, "not_grounded", self.c.create_intent, "work", [])
        self.assertIsInstance(e, cairn.Unprocessable)

    def test_not_found(self) -> None:
        self.check(cairn.NotFound, 404, "not_found", self.c.get_fact, "f" * 64)
        self.check(cairn.NotFound, 404, "not_found", self.c.get_intent, "nope")
        self.check(cairn.NotFound, 404, "not_found", self.c.claim, "nope")
        self.check(cairn.NotFound, 404, "no_route", self.c.request, "GET", "/v2/x")

    def test_too_large_then_the_client_reconnects(self) -> None:
        self.check(cairn.TooLarge, 413, "too_large", self.c.add_fact, "obs", "x" * (2 << 20))
        # The server closed that connection; the next call opens a new one.
        self.assertEqual(self.c.healthz()["status"], "ok")

    def test_conflicts(self) -> None:
        f = self.c.add_fact("obs", "conflicts")["id"]
        iid = self.c.create_intent("work", [f], spec="conflicts")["id"]
        e = self.c.claim(iid)["epoch"]
        self.check(cairn.AlreadyClaimed, 409, "already_claimed", self.c.claim, iid, agent="b")
        self.check(cairn.StaleEpoch, 409, "stale_epoch", self.c.heartbeat, iid, e + 1)
        self.c.conclude(iid, e, "r", 1)
        err = self.check(cairn.Conflict, 409, "already_concluded", self.c.conclude, iid, e, "r", 2)
        self.assertEqual(err.details["epoch"], e)
        self.check(cairn.InvalidState, 409, "invalid_state", self.c.heartbeat, iid, e)

    def test_error_class_table(self) -> None:
        # The mapping itself, for the replies a healthy test server cannot be made to send.
        table = {
            (400, "duplicate_key"): cairn.InvalidRequest,
            (401, "unauthenticated"): cairn.Unauthenticated,
            (403, "not_holder"): cairn.Forbidden,
            (409, "not_holder"): cairn.Conflict,
            (409, "stale_epoch"): cairn.StaleEpoch,
            (429, "rate_limited"): cairn.RateLimited,
            (503, "overloaded"): cairn.Overloaded,
            (503, "agent_backoff"): cairn.AgentBackoff,
            (503, "shutting_down"): cairn.ShuttingDown,
            (503, "outcome_unknown"): cairn.OutcomeUnknown,
            (503, "storage"): cairn.Unavailable,
            (500, "internal"): cairn.InternalError,
            (500, "corrupt_record"): cairn.InternalError,
            (418, "teapot"): cairn.InvalidRequest,
        }
        for (status, code), cls in table.items():
            self.assertIs(cairn.error_class(status, code), cls, (status, code))
        self.assertTrue(issubclass(cairn.OutcomeUnknown, cairn.Unavailable))
        self.assertTrue(issubclass(cairn.StaleEpoch, cairn.Conflict))
        e = cairn.error_from_reply(502, "<html>bad gateway</html>")
        self.assertIsInstance(e, cairn.ProtocolError)

    def test_connection_refused_is_a_connection_error(self) -> None:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        c = Client(f"http://127.0.0.1:{port}", retries_max=1)
        with self.assertRaises(cairn.CairnConnectionError) as cm:
            c.add_fact("obs", 1, idempotency_key="k-refused")
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.idempotency_key, "k-refused")
        self.assertEqual(cm.exception.details["attempts"], 2)


class ClientRetries(ServerTestCase):
    """The retry policy, through a proxy that drops replies or injects 503s."""

    def setUp(self) -> None:
        self.proxy = Proxy(self.server.port)
        self.addCleanup(self.proxy.close)
        self.c = Client(self.proxy.url, agent="a1")
        self.addCleanup(self.c.close)
        self.direct = Client(self.server.url, agent="a1")
        self.addCleanup(self.direct.close)
        self.f = self.direct.add_fact("obs", uuid.uuid4().hex)["id"]

    def count(self, kind: str) -> int:
        return sum(1 for _ in self.direct.iter_intents(kind=kind))

    def test_same_key_gets_the_first_reply(self) -> None:
        kind = uniq("keyed")
        a = self.direct.create_intent(kind, [self.f], idempotency_key="k1")
        b = self.direct.create_intent(kind, [self.f], idempotency_key="k1")
        self.assertEqual(a, b)
        self.assertTrue(b["created"])  # the first reply, replayed
        self.assertEqual(self.count(kind), 1)
        c = self.direct.create_intent(kind, [self.f], idempotency_key="k2")
        self.assertNotEqual(c["id"], a["id"])
        self.assertEqual(self.count(kind), 2)

    def test_dropped_reply_is_retried_with_the_same_key(self) -> None:
        kind = uniq("dropped")
        self.proxy.drop_reply("/v1/intents", 1)
        r = self.c.create_intent(kind, [self.f])
        self.assertTrue(r["created"])
        self.assertEqual(self.count(kind), 1)  # applied once although sent twice
        sent = self.proxy.requests("/v1/intents")
        self.assertEqual(len(sent), 2)
        self.assertEqual(sent[0][2]["idempotency-key"], sent[1][2]["idempotency-key"])

    def test_dropped_conclude_is_not_applied_twice(self) -> None:
        iid = self.direct.create_intent(uniq("c"), [self.f])["id"]
        e = self.direct.claim(iid)["epoch"]
        self.proxy.drop_reply("/conclude", 1)
        r = self.c.conclude(iid, e, "answer", 42)
        self.assertEqual(r["state"], "concluded")
        self.assertEqual(self.direct.get_intent(iid)["result"], r["result"])

    def test_outcome_unknown_keeps_the_key(self) -> None:
        kind = uniq("unknown")
        self.proxy.inject("/v1/intents", 2, 503, "outcome_unknown", retry_after=0,
                          after_forward=True)
        r = self.c.create_intent(kind, [self.f])
        self.assertEqual(self.count(kind), 1)
        sent = self.proxy.requests("/v1/intents")
        self.assertEqual(len(sent), 3)
        self.assertEqual(len({h["idempotency-key"] for _, _, h in sent}), 1)
        self.assertEqual(self.direct.get_intent(r["id"])["kind"], kind)

    def test_refused_503_is_retried_with_a_fresh_key(self) -> None:
        kind = uniq("refused")
        self.proxy.inject("/v1/intents", 2, 503, "overloaded", retry_after=0)
        self.c.create_intent(kind, [self.f])
        sent = self.proxy.requests("/v1/intents")
        self.assertEqual(len(sent), 3)
        self.assertEqual(len({h["idempotency-key"] for _, _, h in sent}), 3)
        self.assertEqual(self.count(kind), 1)

    def test_lost_race_409_is_retried_and_applies_once(self) -> None:
        # What a cluster node answers after losing too many races: nothing applied.
        kind = uniq("race")
        self.proxy.inject("/v1/intents", 2, 409, "lost_race")
        self.c.create_intent(kind, [self.f])
        self.assertEqual(len(self.proxy.requests("/v1/intents")), 3)
        self.assertEqual(self.count(kind), 1)
        strict = Client(self.proxy.url, retries_max=0)
        self.addCleanup(strict.close)
        self.proxy.inject("/v1/intents", 1, 409, "lost_race")
        with self.assertRaises(cairn.LostRace) as cm:
            strict.create_intent(uniq("race"), [self.f])
        self.assertIsInstance(cm.exception, cairn.Conflict)

    def test_a_callers_key_is_never_replaced(self) -> None:
        kind = uniq("mine")
        self.proxy.inject("/v1/intents", 1, 503, "overloaded", retry_after=0)
        self.c.create_intent(kind, [self.f], idempotency_key="caller-key-1")
        keys = [h["idempotency-key"] for _, _, h in self.proxy.requests("/v1/intents")]
        self.assertEqual(keys, ["caller-key-1", "caller-key-1"])

    def test_retries_are_bounded(self) -> None:
        c = Client(self.proxy.url, retries_max=2)
        self.addCleanup(c.close)
        self.proxy.inject("/v1/state", 10, 503, "overloaded", retry_after=0)
        with self.assertRaises(cairn.Overloaded) as cm:
            c.state()
        self.assertEqual(cm.exception.retry_after, 0.0)
        self.assertEqual(len(self.proxy.requests("/v1/state")), 3)

    def test_gets_are_retried_after_a_drop(self) -> None:
        self.proxy.drop_reply("/v1/state", 2)
        self.assertIn("intents", self.c.state())
        self.assertEqual(len(self.proxy.requests("/v1/state")), 3)

    def test_no_retry_on_client_errors(self) -> None:
        with self.assertRaises(cairn.NotFound):
            self.c.get_intent("missing")
        self.assertEqual(len(self.proxy.requests("/v1/intents/missing")), 1)

    def test_keep_alive_reuses_one_connection_per_thread(self) -> None:
        for _ in range(5):
            self.c.healthz()
        conn = self.c._local.conn
        self.assertIsNotNone(conn.sock)
        self.c.state()
        self.assertIs(self.c._local.conn, conn)
        other: list = []
        t = threading.Thread(target=lambda: (self.c.healthz(), other.append(self.c._local.conn)))
        t.start()
        t.join()
        self.assertIsNot(other[0], conn)


class RateLimits(ServerTestCase):
    CONFIG = """
limits:
  caller_rate_per_s: 2
  caller_burst: 2
  watchers_max: 1
"""

    def test_rate_limited_then_retried_after_retry_after(self) -> None:
        strict = Client(self.server.url, creator="busy", retries_max=0)
        self.addCleanup(strict.close)
        strict.add_fact("obs", 1)
        strict.add_fact("obs", 2)
        with self.assertRaises(cairn.RateLimited) as cm:
            strict.add_fact("obs", 3)
        self.assertEqual((cm.exception.status, cm.exception.code), (429, "rate_limited"))
        self.assertGreaterEqual(cm.exception.retry_after, 1)
        patient = Client(self.server.url, creator="busy")
        self.addCleanup(patient.close)
        self.assertTrue(patient.add_fact("obs", 3)["created"])  # waited Retry-After, then ok

    def test_too_many_watchers_is_overloaded(self) -> None:
        c = Client(self.server.url)
        self.addCleanup(c.close)
        first = c.watch(after=0, read_timeout=10)
        # Another caller writes: reads and writes by one caller share its rate bucket.
        writer = Client(self.server.url, creator="watch-writer")
        self.addCleanup(writer.close)
        writer.add_fact("obs", "w")
        next(first)  # the one allowed stream is open
        try:
            with self.assertRaises(cairn.Overloaded) as cm:
                next(c.watch(after=0, reconnect=False, read_timeout=10))
            self.assertEqual(cm.exception.status, 503)
            self.assertIsNotNone(cm.exception.retry_after)
        finally:
            first.close()
