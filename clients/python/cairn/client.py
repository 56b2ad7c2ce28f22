"""client.py — a blocking HTTP client for cairnd's API v1 (docs/api.md), standard library only.

One method per route. Replies are the server's JSON as plain dicts/lists; errors are the typed
exceptions of ``cairn.errors``.

Connections: HTTP/1.1 keep-alive through ``http.client``, one connection per Client *per
thread* (a ``threading.local``), so a Client may be shared by threads — a long-poll on one
thread never blocks a heartbeat on another. A connection the server closed is reopened on the
next request. ``watch()`` opens its own connection for the stream.

Retries (bounded by ``retries_max``): a reply of 503 (any reason, honouring ``Retry-After``),
429 or 409 ``lost_race`` (a cluster node lost to other nodes' commits; nothing was applied),
and a connection that fails or drops, are retried with exponential backoff. Every request
is safe to retry: GETs change nothing, and every mutation carries an ``Idempotency-Key``
(generated per call unless the caller gives one), so the server answers a retry with the first
reply and applies the change at most once. When every earlier attempt of a call was *refused*
(429, or a 503 other than ``outcome_unknown``: nothing was applied) a generated key is replaced
by a fresh one, because the engine remembers refusals it decided itself (``agent_backoff``)
under their key; after an attempt whose outcome is unknown (a dropped connection,
``outcome_unknown``) the key is kept, so the change cannot be applied twice.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .errors import (CairnConnectionError, CairnError, LostRace, OutcomeUnknown, ProtocolError,
                     RateLimited, Unavailable, WatchOverflow, error_from_reply)

# ---- named bounds -------------------------------------------------------------------------

TIMEOUT_S_DEFAULT = 30.0          # socket timeout per request (a long-poll adds its wait_ms)
RETRIES_MAX_DEFAULT = 4           # retries after the first attempt (so at most 5 attempts)
BACKOFF_BASE_S = 0.05             # first backoff without Retry-After; doubles per retry
BACKOFF_MAX_S = 2.0               # cap of one computed backoff
RETRY_AFTER_MAX_S = 30.0          # cap on a server's Retry-After
REPLY_BYTES_MAX = 64 << 20        # a larger reply is refused (a page is at most 1000 records)
WATCH_LINE_BYTES_MAX = 4 << 20    # one SSE line (an event's JSON)
WATCH_READ_TIMEOUT_S = 45.0       # the server pings every 15 s; silence this long = dead stream
WATCH_RECONNECTS_MAX = 5          # consecutive reconnects without receiving an event
WAIT_MS_MAX = 30_000              # the server's long-poll bound
CLAIM_MAX = 256                   # the server's claims-per-call bound

_RETRYABLE_TRANSPORT = (ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException,
                        OSError)


def new_idempotency_key() -> str:
    """A fresh random key (UUID4 hex)."""
    return uuid.uuid4().hex


def _quote(segment: str) -> str:
    """Percent-encodes one path segment (a ``/`` inside an id becomes ``%2F``)."""
    return urllib.parse.quote(str(segment), safe="")


def _query(params: Mapping[str, Any]) -> str:
    items = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        items.append((k, str(v)))
    return ("?" + urllib.parse.urlencode(items)) if items else ""


def _drop_none(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class WatchEvent:
    """One Server-Sent Event of ``GET /v1/watch``: ``id`` is the event's sequence number,
    ``event`` its type (``intent.claimed``, ...), ``data`` the event object
    ``{seq, type, subject, data, at}``."""
    id: int | None
    event: str
    data: Any


class Client:
    """A client of one cairnd server.

    ``url`` is the server's base URL (``http://127.0.0.1:7400``); ``token`` a bearer token
    (``Authorization: Bearer``); ``agent`` / ``creator`` default the ``agent`` of lifecycle
    calls and the ``creator`` of records (with auth on the server takes both from the token,
    so they may be left out). ``timeout`` is the socket timeout in seconds per request;
    ``retries_max`` bounds the retries of one call.
    """

    def __init__(self, url: str = "http://127.0.0.1:7400", token: str | None = None, *,
                 timeout: float = TIMEOUT_S_DEFAULT, retries_max: int = RETRIES_MAX_DEFAULT,
                 agent: str | None = None, creator: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url must be http://host[:port], got {url!r}")
        if retries_max < 0:
            raise ValueError("retries_max must be >= 0")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.token = token
        self.timeout = timeout
        self.retries_max = retries_max
        self.agent = agent
        self.creator = creator
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: set[http.client.HTTPConnection] = set()
        self._closed = False

    # ---- lifecycle of the client ----------------------------------------------------------

    def close(self) -> None:
        """Closes every connection this client opened (on any thread)."""
        with self._lock:
            conns, self._conns = self._conns, set()
            self._closed = True
        for c in conns:
            c.close()

    def close_thread_connection(self) -> None:
        """Closes the calling thread's connection (call it before a thread that used this
        client ends, so long-lived clients do not keep sockets of dead threads)."""
        self._drop_conn()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport -----------------------------------------------------------------------

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            with self._lock:
                if self._closed:
                    raise CairnConnectionError(None, "closed", "the client is closed")
                self._conns.add(c)
            self._local.conn = c
        return c

    def _drop_conn(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            with self._lock:
                self._conns.discard(c)
            self._local.conn = None

    def _headers(self, key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if key:
            h["Idempotency-Key"] = key
        if extra:
            h.update(extra)
        return h

    def _once(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
              timeout: float) -> tuple[int, bytes, http.client.HTTPMessage]:
        """One request on this thread's connection. Raises OSError/HTTPException on transport
        failure (the connection is dropped then)."""
        conn = self._conn()
        reused = conn.sock is not None
        try:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            if body is not None:
                headers = dict(headers, **{"Content-Type": "application/json"})
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read(REPLY_BYTES_MAX + 1)
            if len(data) > REPLY_BYTES_MAX:
                raise ProtocolError(resp.status, "reply_too_large",
                                    f"reply over {REPLY_BYTES_MAX} bytes")
            if resp.will_close:
                self._drop_conn()
            return resp.status, data, resp.headers
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            self._drop_conn()
            if reused:
                # A kept-alive connection the server had closed while idle: the request never
                # reached it. Mark it so the caller retries at once, without backoff.
                e.stale_connection = True  # type: ignore[attr-defined]
            raise
        except BaseException:
            self._drop_conn()
            raise

    def request(self, method: str, path: str, body: Any = None, *, mutating: bool = False,
                idempotency_key: str | None = None, extra_timeout: float = 0.0,
                headers: Mapping[str, str] | None = None, raw: bool = False,
                once: bool = False) -> Any:
        """Sends one API request with the retry policy above and returns the decoded JSON
        reply (the text with ``raw=True``). ``path`` includes the query string. ``once``:
        a mutation without idempotency (a log append) is not sent again after it may have
        reached the server."""
        key = idempotency_key
        retries_max = 0 if once else self.retries_max
        generated = False
        if mutating and not key:
            key = new_idempotency_key()
            generated = True
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False).encode("utf-8")
        timeout = self.timeout + extra_timeout
        outcome_unknown = False   # some attempt may have been applied: keep the key
        attempt = 0
        stale_retried = False
        while True:
            try:
                status, data, hdrs = self._once(method, path, payload,
                                                self._headers(key, headers), timeout)
            except ProtocolError:
                raise
            except _RETRYABLE_TRANSPORT as e:
                if getattr(e, "stale_connection", False) and not stale_retried:
                    stale_retried = True
                    continue
                outcome_unknown = outcome_unknown or mutating
                if attempt >= retries_max:
                    raise CairnConnectionError(
                        None, "connection_error",
                        f"{method} {path}: {type(e).__name__}: {e}", {"attempts": attempt + 1},
                        idempotency_key=key) from e
                attempt += 1
                time.sleep(self._backoff(attempt, None))
                continue
            if 200 <= status < 300:
                if raw:
                    return data.decode("utf-8", errors="replace")
                return self._decode(status, data, key)
            retry_after = _retry_after(hdrs)
            err = error_from_reply(status, self._decode_any(data), retry_after=retry_after,
                                   idempotency_key=key)
            if (isinstance(err, (Unavailable, RateLimited, LostRace))
                    and attempt < retries_max):
                if isinstance(err, OutcomeUnknown):
                    outcome_unknown = True
                elif generated and not outcome_unknown:
                    key = new_idempotency_key()  # refused: nothing applied under the old key
                attempt += 1
                time.sleep(self._backoff(attempt, retry_after))
                continue
            raise err

    @staticmethod
    def _backoff(attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_MAX_S) * (1.0 + 0.1 * random.random())
        d = min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** (attempt - 1)))
        return d * (0.5 + 0.5 * random.random())

    @staticmethod
    def _decode_any(data: bytes) -> Any:
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return data.decode("utf-8", errors="replace")

    @staticmethod
    def _decode(status: int, data: bytes, key: str | None) -> Any:
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError(status, "bad_response", f"reply is not JSON: {e}",
                                idempotency_key=key) from e

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path + _query(params))

    def _post(self, path: str, body: Any, key: str | None, *, extra_timeout: float = 0.0) -> Any:
        return self.request("POST", path, body, mutating=True, idempotency_key=key,
                            extra_timeout=extra_timeout)

    def _agent(self, agent: str | None) -> str | None:
        return agent if agent is not None else self.agent

    def _creator(self, creator: str | None) -> str | None:
        return creator if creator is not None else self.creator

    # ---- operations ------------------------------------------------------------------------

    def healthz(self) -> dict[str, Any]:
        """``GET /healthz`` → ``{"status": "ok"}``."""
        return self._get("/healthz")

    def metrics(self) -> str:
        """``GET /metrics`` → the Prometheus text."""
        return self.request("GET", "/metrics", raw=True)

    # ---- facts -----------------------------------------------------------------------------

    def add_fact(self, kind: str, content: Any, *, content_type: str | None = None,
                 derived_from: Sequence[str] | None = None, creator: str | None = None,
                 idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/facts`` → ``{id, seq, recorded_at, created}`` (``created`` is False when
        the same fact already existed)."""
        body = _drop_none({"kind": kind, "content": content, "content_type": content_type,
                           "derived_from": list(derived_from) if derived_from is not None
                           else None, "creator": self._creator(creator)})
        return self._post("/v1/facts", body, idempotency_key)

    def get_fact(self, fact_id: str) -> dict[str, Any]:
        """``GET /v1/facts/{id}``."""
        return self._get("/v1/facts/" + _quote(fact_id))

    def list_facts(self, *, kind: str | None = None, after: int | None = None,
                   limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/facts`` → one page ``{"facts": [...], "next": seq | None}``."""
        return self._get("/v1/facts", kind=kind, after=after, limit=limit)

    def iter_facts(self, *, kind: str | None = None, after: int | None = None,
                   page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every fact (of ``kind``) after ``after``, following the ``next`` cursor."""
        while True:
            page = self.list_facts(kind=kind, after=after, limit=page_size)
            yield from page["facts"]
            if page.get("next") is None:
                return
            after = page["next"]

    # ---- intents ---------------------------------------------------------------------------

    def create_intent(self, kind: str, from_facts: Sequence[str], *, spec: Any = None,
                      id: str | None = None, lane: str | None = None,
                      provider: str | None = None, cost_units: int | None = None,
                      priority: int | None = None, identity: str | None = None,
                      requires: Sequence[str] | None = None,
                      stale_after_ms: int | None = None, lease_ttl_ms: int | None = None,
                      max_attempts: int | None = None, creator: str | None = None,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents`` → ``{id, state, created}`` (``state`` is ``deferred`` while a
        dependency in ``requires`` is missing, ``coalesced`` with ``coalesced_into`` when an
        intent of the same lane and ``identity`` wins). ``provider`` charges it to the budget
        ``lane/provider`` when configured; ``cost_units`` (default 1) count against the
        budget's ``max_cost_units``; ``stale_after_ms`` (0: never) makes it ``stale`` when not
        claimed in time (docs/planner.md)."""
        body = _drop_none({"id": id, "kind": kind, "spec": spec, "from_facts": list(from_facts),
                           "lane": lane, "provider": provider, "cost_units": cost_units,
                           "priority": priority, "identity": identity,
                           "requires": list(requires) if requires is not None else None,
                           "stale_after_ms": stale_after_ms,
                           "lease_ttl_ms": lease_ttl_ms, "max_attempts": max_attempts,
                           "creator": self._creator(creator)})
        return self._post("/v1/intents", body, idempotency_key)

    def get_intent(self, intent_id: str) -> dict[str, Any]:
        """``GET /v1/intents/{id}`` → the intent (definition and status)."""
        return self._get("/v1/intents/" + _quote(intent_id))

    def list_intents(self, *, state: str | None = None, kind: str | None = None,
                     lane: str | None = None, after: str | None = None,
                     limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/intents`` → one page ``{"intents": [...], "next": id | None}``."""
        return self._get("/v1/intents", state=state, kind=kind, lane=lane, after=after,
                         limit=limit)

    def iter_intents(self, *, state: str | None = None, kind: str | None = None,
                     lane: str | None = None, after: str | None = None,
                     page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every matching intent in id order, following the ``next`` cursor (a page may be
        short or empty while ``next`` is set: the server bounds the entries it scans)."""
        while True:
            page = self.list_intents(state=state, kind=kind, lane=lane, after=after,
                                     limit=page_size)
            yield from page["intents"]
            if page.get("next") is None:
                return
            after = page["next"]

    def claim(self, intent_id: str, *, agent: str | None = None,
              lease_ttl_ms: int | None = None,
              idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents/{id}/claim`` → ``{id, epoch, lease_expires_at}``."""
        body = _drop_none({"agent": self._agent(agent), "lease_ttl_ms": lease_ttl_ms})
        return self._post(f"/v1/intents/{_quote(intent_id)}/claim", body, idempotency_key)

    def claim_next(self, *, agent: str | None = None, kinds: Sequence[str] | None = None,
                   lanes: Sequence[str] | None = None, max: int = 1, wait_ms: int = 0,
                   lease_ttl_ms: int | None = None,
                   idempotency_key: str | None = None) -> list[dict[str, Any]]:
        """``POST /v1/claims``: the best open work, long-polling up to ``wait_ms`` (0..30000)
        when there is none. Returns the list of claims ``{"intent", "epoch",
        "lease_expires_at"}`` (empty when nothing came in time)."""
        body = _drop_none({"agent": self._agent(agent),
                           "kinds": list(kinds) if kinds is not None else None,
                           "lanes": list(lanes) if lanes is not None else None,
                           "max": max, "wait_ms": wait_ms, "lease_ttl_ms": lease_ttl_ms})
        extra = (min(wait_ms, WAIT_MS_MAX) / 1000.0
                 if isinstance(wait_ms, (int, float)) and wait_ms > 0 else 0.0)
        return self._post("/v1/claims", body, idempotency_key, extra_timeout=extra)["claims"]

    def heartbeat(self, intent_id: str, epoch: int, *, agent: str | None = None,
                  lease_ttl_ms: int | None = None,
                  idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents/{id}/heartbeat`` → ``{id, epoch, lease_expires_at}``."""
        body = _drop_none({"agent": self._agent(agent), "epoch": epoch,
                           "lease_ttl_ms": lease_ttl_ms})
        return self._post(f"/v1/intents/{_quote(intent_id)}/heartbeat", body, idempotency_key)

    def conclude(self, intent_id: str, epoch: int, kind: str, content: Any, *,
                 content_type: str | None = None, derived_from: Sequence[str] | None = None,
                 agent: str | None = None,
                 idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents/{id}/conclude`` with the result fact ``{kind, content, ...}`` →
        ``{"result": fact id, "state": "concluded"}``."""
        result = _drop_none({"kind": kind, "content": content, "content_type": content_type,
                             "derived_from": list(derived_from) if derived_from is not None
                             else None})
        body = _drop_none({"agent": self._agent(agent), "epoch": epoch, "result": result})
        return self._post(f"/v1/intents/{_quote(intent_id)}/conclude", body, idempotency_key)

    def fail(self, intent_id: str, epoch: int, error: str | None = None, *,
             retryable: bool | None = None, agent: str | None = None,
             idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents/{id}/fail`` → ``{"state": "open", "not_before"}`` or
        ``{"state": "dead"}``."""
        body = _drop_none({"agent": self._agent(agent), "epoch": epoch, "error": error,
                           "retryable": retryable})
        return self._post(f"/v1/intents/{_quote(intent_id)}/fail", body, idempotency_key)

    def release(self, intent_id: str, epoch: int, *, agent: str | None = None,
                idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents/{id}/release`` → ``{"state": "open"}``."""
        body = _drop_none({"agent": self._agent(agent), "epoch": epoch})
        return self._post(f"/v1/intents/{_quote(intent_id)}/release", body, idempotency_key)

    def cancel(self, intent_id: str, *, creator: str | None = None,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/intents/{id}/cancel`` (by the intent's creator) →
        ``{"state": "cancelled"}``."""
        body = _drop_none({"creator": self._creator(creator)})
        return self._post(f"/v1/intents/{_quote(intent_id)}/cancel", body, idempotency_key)

    # ---- hints -----------------------------------------------------------------------------

    def create_hint(self, kind: str, selector: Mapping[str, Any], effect: Mapping[str, Any], *,
                    id: str | None = None, expires_at: int | None = None,
                    reason: str | None = None, derived_from: Sequence[str] | None = None,
                    creator: str | None = None,
                    idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/hints`` → ``{id, seq, created}``. ``selector`` is ``{kind?, lane?,
        identity?, creator?}``; ``effect`` is ``{type: deny|cap|defer|priority|require, ...}``."""
        body = _drop_none({"id": id, "kind": kind, "selector": dict(selector),
                           "effect": dict(effect), "expires_at": expires_at, "reason": reason,
                           "derived_from": list(derived_from) if derived_from is not None
                           else None, "creator": self._creator(creator)})
        return self._post("/v1/hints", body, idempotency_key)

    def revoke_hint(self, hint_id: str, *, creator: str | None = None,
                    idempotency_key: str | None = None) -> dict[str, Any]:
        """``DELETE /v1/hints/{id}`` → ``{"revoked": true}``."""
        body = _drop_none({"creator": self._creator(creator)})
        return self.request("DELETE", "/v1/hints/" + _quote(hint_id), body, mutating=True,
                            idempotency_key=idempotency_key)

    def get_hint(self, hint_id: str) -> dict[str, Any]:
        """``GET /v1/hints/{id}``."""
        return self._get("/v1/hints/" + _quote(hint_id))

    def list_hints(self, *, live: bool | None = None, after: str | None = None,
                   limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/hints`` → one page ``{"hints": [...], "next": id | None}``."""
        return self._get("/v1/hints", live=live, after=after, limit=limit)

    def iter_hints(self, *, live: bool | None = None, after: str | None = None,
                   page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every hint (live ones with ``live=True``), following the ``next`` cursor."""
        while True:
            page = self.list_hints(live=live, after=after, limit=page_size)
            yield from page["hints"]
            if page.get("next") is None:
                return
            after = page["next"]

    # ---- logs ------------------------------------------------------------------------------

    def append_log(self, source: str, type: str, *, ref: str | None = None,
                   payload: Any = None) -> dict[str, Any]:
        """``POST /v1/logs`` → ``{id, ts}``. ``source`` and ``type``: 1..128 bytes of
        ``[A-Za-z0-9._:/-]``; ``ref`` ≤ 256 bytes; ``payload`` any JSON value ≤ 64 KiB.
        Appends are not deduplicated, so this is sent once (no retry)."""
        body = _drop_none({"source": source, "type": type, "ref": ref, "payload": payload})
        return self.request("POST", "/v1/logs", body, once=True)

    def logs(self, *, after: int | str | None = None, source: str | None = None,
             limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/logs`` → one page ``{"logs": [{id, ts, source, type, ref, payload}],
        "next": id-as-string | None}`` in id order (``source``: exact match)."""
        return self._get("/v1/logs", after=after, source=source, limit=limit)

    def archive_logs(self) -> dict[str, Any]:
        """``POST /v1/logs/archive`` (admin) → ``{"days": ["YYYY-MM-DD", ...], "records": n,
        "watermark": "YYYY-MM-DD" | None}``: archives whole days older than the retention now."""
        return self.request("POST", "/v1/logs/archive", {})

    # ---- state, events, watch ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """``GET /v1/state`` → ``{"intents": {state: count}, "facts", "last_seq"}``."""
        return self._get("/v1/state")

    def plan(self, *, at: int | None = None, raw: bool = False) -> Any:
        """``GET /v1/plan`` → the admission plan ``{now_ms, admitted, intents, lanes,
        estimates, wake_at}``: every open and deferred intent with its one reason (``text``,
        e.g. ``lane_full(llm/openai)``), waves and estimates (docs/planner.md). ``at`` (wall
        ms) plans the current state as of that time: the same state and ``at`` give the same
        bytes. With ``raw=True`` the server's canonical JSON text, unchanged."""
        path = "/v1/plan" if at is None else "/v1/plan?at=%d" % at
        return self.request("GET", path, raw=raw)

    def senses(self) -> dict[str, Any]:
        """``GET /v1/senses`` → ``{"senses": [{name, health, running, runs, failures, coalesced,
        last_run_at, last_ok_at, next_run_at, last_error, last_signal}]}`` of the observation
        runtime inside cairnd (docs/senses.md#status); NotFound ``no_runtime`` when it runs
        none."""
        return self._get("/v1/senses")

    def workflow_runs(self, *, workflow: str | None = None,
                      limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/workflows/runs`` → ``{"runs": [...]}`` newest first, each with ``status``
        queued | started | completed | failed | crashed | interrupted | dropped and the
        ``intent`` it runs as (docs/senses.md#workflows-and-runs)."""
        return self._get("/v1/workflows/runs", workflow=workflow, limit=limit)

    def events(self, *, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/events`` → one page ``{"events": [...], "next": seq | None}``."""
        return self._get("/v1/events", after=after, limit=limit)

    def iter_events(self, *, after: int = 0,
                    page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every event after ``after`` that exists now, in order."""
        while True:
            page = self.events(after=after, limit=page_size)
            yield from page["events"]
            if page.get("next") is None:
                return
            after = page["next"]

    def watch(self, *, after: int | None = None, last_event_id: int | None = None,
              reconnect: bool = True, read_timeout: float = WATCH_READ_TIMEOUT_S,
              reconnects_max: int = WATCH_RECONNECTS_MAX) -> Iterator[WatchEvent]:
        """``GET /v1/watch``: a generator of ``WatchEvent`` (Server-Sent Events).

        Start point: ``last_event_id`` (sent as ``Last-Event-ID``), else ``after``, else "from
        now". With ``reconnect`` (the default) a dropped or silent stream (nothing, not even the
        server's ping, for ``read_timeout`` seconds) and an ``overflow`` are resumed with
        ``Last-Event-ID`` = the last event received, so the sequence has no gaps and no
        duplicates; after ``reconnects_max`` consecutive failures without an event it raises
        ``CairnConnectionError``. Without ``reconnect`` a drop raises ``CairnConnectionError``
        and an overflow ``WatchOverflow``. Close the generator (or break out of the loop) to end
        the stream.
        """
        resume: int | None = last_event_id if last_event_id is not None else after
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            path = "/v1/watch"
            if resume is not None:
                headers["Last-Event-ID"] = str(resume)
            conn = http.client.HTTPConnection(self.host, self.port, timeout=read_timeout)
            start: list[int | None] = [None]
            got_event = False
            try:
                try:
                    conn.request("GET", path, headers=headers)
                    resp = conn.getresponse()
                except _RETRYABLE_TRANSPORT as e:
                    failure: BaseException = e
                else:
                    if resp.status != 200:
                        data = resp.read(REPLY_BYTES_MAX)
                        err = error_from_reply(resp.status, self._decode_any(data),
                                               retry_after=_retry_after(resp.headers))
                        if not (reconnect and isinstance(err, (Unavailable, RateLimited))):
                            raise err
                        failure = err
                    else:
                        failure = None  # type: ignore[assignment]
                        try:
                            for ev in _sse_events(resp, start):
                                if ev.event == "overflow":
                                    at = int(ev.data["resume_after"])
                                    if not reconnect:
                                        raise WatchOverflow(at)
                                    resume = at
                                    break
                                if ev.id is not None:
                                    resume = ev.id
                                got_event = True
                                failures = 0
                                yield ev
                            else:
                                failure = CairnConnectionError(None, "stream_closed",
                                                               "the watch stream ended")
                        except _RETRYABLE_TRANSPORT as e:
                            failure = e
            finally:
                conn.close()
            if resume is None:
                # "From now" was asked: resume from the start the server announced, so the
                # reconnect does not skip what happened in between.
                resume = start[0]
            if failure is None:
                continue  # overflow: resume at once
            if not got_event:
                failures += 1
            if not reconnect or failures > reconnects_max:
                if isinstance(failure, CairnError):
                    raise failure
                raise CairnConnectionError(None, "connection_error",
                                           f"watch: {type(failure).__name__}: {failure}",
                                           {"resume_after": resume}) from failure
            ra = failure.retry_after if isinstance(failure, CairnError) else None
            time.sleep(self._backoff(max(1, failures), ra))


def _retry_after(headers: Any) -> float | None:
    v = headers.get("Retry-After") if headers is not None else None
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None


def _sse_events(resp: http.client.HTTPResponse, start: list[int | None]) -> Iterator[WatchEvent]:
    """Parses a text/event-stream body into events. Comments are skipped, except the server's
    opening ``: cairn watch after N``, whose N is stored in ``start[0]``."""
    ev_id: str | None = None
    ev_type = ""
    data_lines: list[str] = []
    while True:
        raw = resp.readline(WATCH_LINE_BYTES_MAX + 1)
        if not raw:
            return
        if len(raw) > WATCH_LINE_BYTES_MAX:
            raise ProtocolError(200, "bad_stream", f"SSE line over {WATCH_LINE_BYTES_MAX} bytes")
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data_lines or ev_type or ev_id is not None:
                text = "\n".join(data_lines)
                try:
                    data = json.loads(text) if text else None
                except ValueError as e:
                    raise ProtocolError(200, "bad_stream", f"event data is not JSON: {e}") from e
                yield WatchEvent(int(ev_id) if ev_id and ev_id.isdigit() else None,
                                 ev_type or "message", data)
            ev_id, ev_type, data_lines = None, "", []
            continue
        if line.startswith(":"):
            prefix = ": cairn watch after "
            if line.startswith(prefix) and line[len(prefix):].isdigit():
                start[0] = int(line[len(prefix):])
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "id":
            ev_id = value
        elif field == "event":
            ev_type = value
        elif field == "data":
            data_lines.append(value)
