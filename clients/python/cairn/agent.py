"""agent.py — a worker loop over a Client: claim, heartbeat in the background, conclude or fail.

    def handle(task):
        if task.cancelled.is_set(): ...          # the lease was lost: stop early
        return {"kind": "summary", "content": {...}}

    with Agent(client, "summariser-1", handle, kinds=["summarise"]):
        ...                                      # runs in a background thread until the block ends

or ``Agent(...).run()`` in the foreground (until ``stop()``, ``max_tasks`` or idle).

Semantics (docs/python.md, "Agent"):

- The loop long-polls ``POST /v1/claims`` (``wait_ms``) for up to ``concurrency`` intents of
  ``kinds`` / ``lanes`` at a time; each claimed intent runs ``handler(task)`` on its own thread.
- While the handler runs, a heartbeat thread extends the lease every third of its TTL.
- The handler's return value (a dict ``{kind, content, content_type?, derived_from?}``) becomes
  the result fact of ``conclude``. An exception fails the intent with its message
  (``retryable=False`` for ``PermanentFailure``; the server retries the others with backoff
  until ``max_attempts``).
- A heartbeat answered with a conflict (``stale_epoch``, ``not_holder``, ``invalid_state``:
  the lease expired, another agent holds it, or the intent was cancelled) or ``not_found``
  means the lease is lost: ``task.cancelled`` is set, and whatever the handler returns is
  dropped — the agent neither concludes nor fails a lease it no longer holds. The same holds
  when heartbeats keep failing until the lease's own expiry passes.
- ``stop()`` ends claiming (after the current long-poll, at most ``wait_ms``), releases claims
  not started, waits for running handlers (bounded by ``timeout``) and concludes them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .client import WAIT_MS_MAX, Client
from .errors import CairnError, Conflict, Forbidden, InvalidRequest, NotFound, Unauthenticated

log = logging.getLogger("cairn.agent")

# ---- named bounds -------------------------------------------------------------------------

CONCURRENCY_MAX = 256             # the server's claims-per-call bound
ERROR_TEXT_BYTES_MAX = 4096       # a failure's message is truncated to this (server's bound)
LOOP_BACKOFF_MAX_S = 5.0          # the claim loop's backoff cap after an error
HEARTBEAT_MIN_S = 0.03            # never heartbeat more often than this


class PermanentFailure(Exception):
    """Raise from a handler to fail the intent without retries (``retryable=False``)."""


@dataclass
class Task:
    """One claimed intent handed to the handler.

    ``intent`` is the intent as the claim returned it (``id``, ``kind``, ``spec``,
    ``from_facts``, ...), ``epoch`` the fencing epoch, ``lease_ttl_ms`` the lease the agent keeps
    extending. ``cancelled`` is set when the lease is lost; a long handler should check it (or
    ``cancelled.wait(...)`` instead of sleeping) and return early: its result is dropped.
    """
    intent: dict[str, Any]
    epoch: int
    lease_expires_at: int
    lease_ttl_ms: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    lost: bool = False
    heartbeats: int = 0

    @property
    def id(self) -> str:
        return self.intent["id"]

    @property
    def spec(self) -> Any:
        return self.intent.get("spec")


Handler = Callable[[Task], Mapping[str, Any]]


class _Worker:
    """One worker thread and its heartbeat companion, alive as long as the agent's loop. The
    worker runs handlers; the companion heartbeats whatever task the worker holds. Both keep
    their own keep-alive connection (the Client's per-thread connection)."""

    def __init__(self, agent: "Agent", index: int) -> None:
        self.agent = agent
        self.cond = threading.Condition()
        self.task: Task | None = None      # the task being heartbeaten, under cond
        self.hb_busy = False               # a heartbeat request is in flight, under cond
        self.closing = False
        self.thread = threading.Thread(target=self._run, name=f"cairn-worker-{index}",
                                       daemon=True)
        self.hb_thread = threading.Thread(target=self._heartbeats,
                                          name=f"cairn-heartbeat-{index}", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.hb_thread.start()

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()

    def join(self, timeout: float | None) -> None:
        self.thread.join(timeout)
        self.hb_thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                task = self.agent._queue_get()
                if task is None:
                    return
                try:
                    self._handle(task)
                finally:
                    self.agent._slots.release()
        finally:
            self.close()
            self.agent.client.close_thread_connection()

    def _handle(self, task: Task) -> None:
        agent = self.agent
        with self.cond:
            self.task = task
            self.cond.notify_all()
        result: Mapping[str, Any] | None = None
        failure: BaseException | None = None
        try:
            result = agent.handler(task)
        except BaseException as e:  # the handler's failure is the intent's failure
            failure = e
        finally:
            with self.cond:
                self.task = None
                self.cond.notify_all()
                while self.hb_busy:  # let an in-flight heartbeat settle before deciding
                    self.cond.wait()
        agent._finish(task, result, failure)

    def _heartbeats(self) -> None:
        try:
            while True:
                with self.cond:
                    while self.task is None and not self.closing:
                        self.cond.wait()
                    if self.closing:
                        return
                    task = self.task
                self._keep_alive(task)
        finally:
            self.agent.client.close_thread_connection()

    def _keep_alive(self, task: Task) -> None:
        """Heartbeats ``task`` every third of its TTL until the worker lets go of it or the
        lease is lost."""
        agent = self.agent
        interval = max(HEARTBEAT_MIN_S, task.lease_ttl_ms / 3000.0)
        # The lease as this agent last knew it, on the local monotonic clock.
        expires = time.monotonic() + task.lease_ttl_ms / 1000.0
        while True:
            with self.cond:
                deadline = time.monotonic() + interval
                while self.task is task and not self.closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(left)
                if self.task is not task or self.closing:
                    return
                self.hb_busy = True
            lost_reason: str | None = None
            try:
                r = agent.client.heartbeat(task.id, task.epoch, agent=agent.name,
                                           lease_ttl_ms=task.lease_ttl_ms)
                task.lease_expires_at = int(r["lease_expires_at"])
                task.heartbeats += 1
                expires = time.monotonic() + task.lease_ttl_ms / 1000.0
            except (Conflict, NotFound) as e:
                lost_reason = str(e)
            except Exception as e:  # transient (503s, connection): retry until the lease ends
                if time.monotonic() >= expires:
                    lost_reason = f"no heartbeat succeeded before the lease ended ({e})"
                else:
                    log.warning("agent %s: heartbeat on %s failed (%s); retrying", agent.name,
                                task.id, e)
            finally:
                with self.cond:
                    self.hb_busy = False
                    self.cond.notify_all()
            if lost_reason is not None:
                log.warning("agent %s: lease on %s lost: %s", agent.name, task.id, lost_reason)
                task.lost = True
                task.cancelled.set()
                return


class Agent:
    """Claims intents and runs ``handler`` on each (see the module's docstring).

    ``name`` is the agent name sent with every lifecycle call (with auth on it must be the
    token's name). ``lease_ttl_ms`` overrides the intents' own TTL; ``wait_ms`` is the claim
    long-poll (0..30000); ``concurrency`` bounds intents in hand at once (1..256), each run on
    one of ``concurrency`` worker threads.

    Counters (read any time): ``concluded``, ``failed``, ``lost``, ``released``; ``error``
    holds the exception that stopped the loop, if any (a 401/403/400 on claims is fatal;
    other errors are retried with backoff).
    """

    def __init__(self, client: Client, name: str, handler: Handler, *,
                 kinds: Sequence[str] | None = None, lanes: Sequence[str] | None = None,
                 lease_ttl_ms: int | None = None, wait_ms: int = 5000, concurrency: int = 1,
                 on_result: Callable[[Task, Mapping[str, Any]], None] | None = None) -> None:
        if not 1 <= concurrency <= CONCURRENCY_MAX:
            raise ValueError(f"concurrency must be within 1..{CONCURRENCY_MAX}")
        if not 0 <= wait_ms <= WAIT_MS_MAX:
            raise ValueError(f"wait_ms must be within 0..{WAIT_MS_MAX}")
        self.client = client
        self.name = name
        self.handler = handler
        self.kinds = list(kinds) if kinds is not None else None
        self.lanes = list(lanes) if lanes is not None else None
        self.lease_ttl_ms = lease_ttl_ms
        self.wait_ms = wait_ms
        self.concurrency = concurrency
        self.on_result = on_result
        self.concluded = 0
        self.failed = 0
        self.lost = 0
        self.released = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._queue: queue.Queue[Task | None] = queue.Queue(maxsize=concurrency * 2)
        self._busy = 0                      # tasks handed to workers and not finished
        self._thread: threading.Thread | None = None

    # ---- running --------------------------------------------------------------------------

    def run(self, *, max_tasks: int | None = None, stop_when_idle: bool = False) -> None:
        """Runs the loop in this thread until ``stop()``, until ``max_tasks`` intents were
        taken (and then handled), or — with ``stop_when_idle`` — until a long-poll returns
        nothing while no handler runs. Waits for running handlers before returning. Raises
        the fatal error that stopped it, if any."""
        workers = [_Worker(self, i) for i in range(self.concurrency)]
        for w in workers:
            w.start()
        started = 0
        backoff = 0.0
        try:
            while not self._stop.is_set():
                if max_tasks is not None and started >= max_tasks:
                    break
                free = self._acquire_slots(max_tasks, started)
                if free == 0:
                    continue
                try:
                    claims = self.client.claim_next(
                        agent=self.name, kinds=self.kinds, lanes=self.lanes, max=free,
                        wait_ms=self.wait_ms, lease_ttl_ms=self.lease_ttl_ms)
                    backoff = 0.0
                except (Unauthenticated, Forbidden, InvalidRequest) as e:
                    self._release_slots(free)
                    self.error = e
                    log.error("agent %s: claims refused: %s", self.name, e)
                    raise
                except CairnError as e:
                    self._release_slots(free)
                    backoff = min(LOOP_BACKOFF_MAX_S, max(0.05, backoff * 2))
                    wait = max(backoff, e.retry_after or 0.0)
                    log.warning("agent %s: claim failed (%s); retrying in %.2f s", self.name, e,
                                wait)
                    self._stop.wait(wait)
                    continue
                self._release_slots(free - len(claims))
                if not claims:
                    with self._lock:
                        idle = self._busy == 0
                    if stop_when_idle and idle:
                        break
                    continue
                for c in claims:
                    started += 1
                    task = self._task(c)
                    if self._stop.is_set():
                        self._release(task)  # taken after stop(): hand it back at once
                        self._slots.release()
                        continue
                    with self._lock:
                        self._busy += 1
                    self._queue.put(task)
        finally:
            for _ in workers:
                self._queue.put(None)
            for w in workers:
                w.join(None)
            self.client.close_thread_connection()

    def start(self, **run_kwargs: Any) -> "Agent":
        """Runs ``run(**run_kwargs)`` on a background thread."""
        if self._thread is not None:
            raise RuntimeError("the agent is already started")

        def body() -> None:
            try:
                self.run(**run_kwargs)
            except BaseException as e:  # kept in self.error; stop()/join() report it
                if self.error is None:
                    self.error = e

        self._thread = threading.Thread(target=body, name=f"cairn-agent-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stops claiming and waits (up to ``timeout`` seconds; ``None`` = until done) for the
        loop — at most its current long-poll — and the running handlers to finish. True when
        everything has finished."""
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Waits for a ``start()``-ed loop to end (by ``stop()``, ``max_tasks`` or idle).
        True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> "Agent":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals -------------------------------------------------------------------------

    def _queue_get(self) -> Task | None:
        return self._queue.get()

    def _acquire_slots(self, max_tasks: int | None, started: int) -> int:
        """Blocks for one free slot (waking for stop), then takes every other free one."""
        while not self._slots.acquire(timeout=0.1):
            if self._stop.is_set():
                return 0
        n = 1
        want = self.concurrency if max_tasks is None else min(self.concurrency,
                                                              max_tasks - started)
        while n < want and self._slots.acquire(blocking=False):
            n += 1
        return n

    def _release_slots(self, n: int) -> None:
        for _ in range(n):
            self._slots.release()

    def _task(self, claim: Mapping[str, Any]) -> Task:
        intent = claim["intent"]
        ttl = self.lease_ttl_ms or int(intent.get("lease_ttl_ms") or 30_000)
        return Task(intent=intent, epoch=int(claim["epoch"]),
                    lease_expires_at=int(claim["lease_expires_at"]), lease_ttl_ms=ttl)

    def _release(self, task: Task) -> None:
        try:
            self.client.release(task.id, task.epoch, agent=self.name)
            with self._lock:
                self.released += 1
        except CairnError as e:
            log.warning("agent %s: release of %s failed: %s", self.name, task.id, e)

    def _finish(self, task: Task, result: Mapping[str, Any] | None,
                failure: BaseException | None) -> None:
        """Records the handler's outcome unless the lease was lost (worker thread)."""
        try:
            if task.lost:
                with self._lock:
                    self.lost += 1
                log.info("agent %s: dropped the outcome of %s (lease lost)", self.name, task.id)
                return
            try:
                if failure is None and not _is_result(result):
                    failure = TypeError("the handler must return a mapping with 'kind' and "
                                        f"'content', not {type(result).__name__}")
                if failure is None:
                    assert result is not None
                    self._conclude(task, result)
                else:
                    self._fail(task, failure)
            except Conflict as e:
                # The lease ended between the last heartbeat and now: fenced off.
                task.lost = True
                task.cancelled.set()
                with self._lock:
                    self.lost += 1
                log.warning("agent %s: %s was fenced off: %s", self.name, task.id, e)
            except CairnError as e:
                log.error("agent %s: could not record the outcome of %s: %s", self.name,
                          task.id, e)
        finally:
            with self._lock:
                self._busy -= 1

    def _conclude(self, task: Task, result: Mapping[str, Any]) -> None:
        extra = {k: v for k, v in result.items() if k in ("content_type", "derived_from")}
        r = self.client.conclude(task.id, task.epoch, result["kind"], result["content"],
                                 agent=self.name, **extra)
        with self._lock:
            self.concluded += 1
        if self.on_result is not None:
            self.on_result(task, r)

    def _fail(self, task: Task, e: BaseException) -> None:
        text = f"{type(e).__name__}: {e}"
        text = text.encode("utf-8")[:ERROR_TEXT_BYTES_MAX].decode("utf-8", errors="ignore")
        self.client.fail(task.id, task.epoch, text, agent=self.name,
                         retryable=not isinstance(e, PermanentFailure))
        with self._lock:
            self.failed += 1


def _is_result(r: Any) -> bool:
    return isinstance(r, Mapping) and "kind" in r and "content" in r
