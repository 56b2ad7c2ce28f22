"""test_watch.py — the SSE watch generator against a real cairnd: history, live events,
resuming with Last-Event-ID, and reconnecting after a dropped stream without gaps or
duplicates."""

from __future__ import annotations

import threading

from support import Proxy, ServerTestCase

import cairn
from cairn import Client

READ_TIMEOUT_S = 10.0  # a stream that stays silent this long fails the test instead of hanging


def take(gen, n: int) -> list[cairn.WatchEvent]:
    out = []
    for ev in gen:
        out.append(ev)
        if len(out) == n:
            break
    return out


class Watch(ServerTestCase):

    def setUp(self) -> None:
        self.c = Client(self.server.url, agent="w1")
        self.addCleanup(self.c.close)

    def test_history_then_resume_from_last_event_id(self) -> None:
        start = self.c.state()["last_seq"]
        ids = [self.c.add_fact("obs", {"i": i})["id"] for i in range(6)]
        gen = self.c.watch(after=start, read_timeout=READ_TIMEOUT_S)
        first = take(gen, 3)
        gen.close()
        self.assertEqual([e.id for e in first], [start + 1, start + 2, start + 3])
        self.assertEqual([e.event for e in first], ["fact.recorded"] * 3)
        self.assertEqual([e.data["subject"] for e in first], ids[:3])
        self.assertEqual(first[0].data["seq"], start + 1)
        gen = self.c.watch(last_event_id=first[-1].id, read_timeout=READ_TIMEOUT_S)
        rest = take(gen, 3)
        gen.close()
        self.assertEqual([e.id for e in rest], [start + 4, start + 5, start + 6])
        self.assertEqual([e.data["subject"] for e in rest], ids[3:])

    def test_from_now_sees_only_new_events(self) -> None:
        self.c.add_fact("obs", "old")
        got: list = []
        ready = threading.Event()
        gen = self.c.watch(read_timeout=READ_TIMEOUT_S)

        def consume() -> None:
            ready.set()
            got.extend(take(gen, 2))

        t = threading.Thread(target=consume)
        t.start()
        ready.wait()
        # The stream may not be connected yet; a fact is only visible once it is, so keep
        # adding until two arrive, then check they were the new ones, in order.
        sent = []
        for i in range(200):
            sent.append(self.c.add_fact("obs", {"new": i})["id"])
            t.join(0.05)
            if not t.is_alive():
                break
        t.join(READ_TIMEOUT_S)
        gen.close()
        self.assertEqual(len(got), 2)
        subjects = [e.data["subject"] for e in got]
        i = sent.index(subjects[0])
        self.assertEqual(subjects, sent[i:i + 2])
        self.assertEqual(got[1].id, got[0].id + 1)

    def test_reconnects_after_a_dropped_stream_without_gaps(self) -> None:
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        pc = Client(proxy.url)
        self.addCleanup(pc.close)
        start = self.c.state()["last_seq"]
        for i in range(20):
            self.c.add_fact("obs", {"drop": i})
        # Cut the first stream part-way through an event; the generator resumes by itself.
        proxy.cut_stream("/v1/watch", after_bytes=1500)
        gen = pc.watch(after=start, read_timeout=READ_TIMEOUT_S)
        evs = take(gen, 20)
        gen.close()
        self.assertEqual([e.id for e in evs], list(range(start + 1, start + 21)))
        heads = proxy.requests("/v1/watch")
        self.assertGreaterEqual(len(heads), 2)
        resumed = int(heads[1][2]["last-event-id"])
        self.assertGreater(resumed, start)
        self.assertLess(resumed, start + 20)

    def test_without_reconnect_a_drop_raises(self) -> None:
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        pc = Client(proxy.url)
        self.addCleanup(pc.close)
        for i in range(20):
            self.c.add_fact("obs", {"cut": i})
        proxy.cut_stream("/v1/watch", after_bytes=1500)
        with self.assertRaises(cairn.CairnConnectionError):
            for _ in pc.watch(after=0, reconnect=False, read_timeout=READ_TIMEOUT_S):
                pass
