"""errors.py — the typed exceptions of the cairn client.

Every error reply of cairnd is ``{"error": {"code", "message", "details"}}`` with an HTTP status
from one table (docs/api.md, "Errors"). ``error_from_reply`` turns such a reply into the most
specific class below: first by ``error.code`` (``stale_epoch`` → ``StaleEpoch``), then by the
HTTP status (409 → ``Conflict``), else ``CairnError``. Catch a family (``Conflict``) or a
single reason (``StaleEpoch``); ``err.code`` always holds the server's reason string.

Transport failures that outlive the client's retries are ``CairnConnectionError`` (no status).
"""

from __future__ import annotations

from typing import Any, Mapping


class CairnError(Exception):
    """Base of every error the client raises.

    Attributes: ``status`` (HTTP status, ``None`` for transport errors), ``code`` (the server's
    machine-readable reason, e.g. ``"stale_epoch"``), ``message``, ``details`` (a dict, never
    ``None``), ``retry_after`` (seconds from ``Retry-After``, or ``None``) and
    ``idempotency_key`` (the key a mutation was sent with, or ``None``: retry with it after an
    ``OutcomeUnknown`` or a ``CairnConnectionError``).
    """

    def __init__(self, status: int | None, code: str, message: str,
                 details: Mapping[str, Any] | None = None, *, retry_after: float | None = None,
                 idempotency_key: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if status is None else
                         f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after
        self.idempotency_key = idempotency_key


# ---- 400 / 405 / 422: the request itself is wrong (retrying it cannot help) ----------------

class InvalidRequest(CairnError):
    """400: malformed JSON, a wrong field, an unknown member, a bad query (``invalid_*``,
    ``duplicate_key``, ``json_too_deep``, ``unknown_field``, ``bad_request``, ...)."""


class MethodNotAllowed(InvalidRequest):
    """405 ``method_not_allowed``."""


class Unprocessable(InvalidRequest):
    """422: well-formed but refers to what does not exist or is not grounded."""


class UnknownReference(Unprocessable):
    """422 ``unknown_reference``: a ``derived_from`` / ``from_facts`` id does not exist."""


class NotGrounded(Unprocessable):
    """422 ``not_grounded``: an intent without ``from_facts``."""


# ---- 401 / 403 ---------------------------------------------------------------------------

class Unauthenticated(CairnError):
    """401 ``unauthenticated``: no bearer token, or an unknown one."""


class Forbidden(CairnError):
    """403: ``insufficient_scope``, ``impersonation``, ``not_holder`` (release by another
    agent), ``not_creator``, ``agent_blocked``, or a claim denied by a hint."""


# ---- 404 / 409 / 413 --------------------------------------------------------------------

class NotFound(CairnError):
    """404 ``not_found`` / ``no_route``."""


class Conflict(CairnError):
    """409: the intent's state does not allow the transition (``already_claimed``,
    ``not_holder``, ``invalid_state``, ``already_concluded``, ``deferred``, ``backoff``, ...)."""


class StaleEpoch(Conflict):
    """409 ``stale_epoch``: the lease this epoch named has ended; the caller is fenced off."""


class AlreadyClaimed(Conflict):
    """409 ``already_claimed``: ``details`` holds ``holder``, ``lease_expires_at``, ``epoch``."""


class InvalidState(Conflict):
    """409 ``invalid_state``: the intent is terminal (concluded, dead or cancelled)."""


class TooLarge(CairnError):
    """413 ``too_large``: body, header, JSON string/array/object or fact content over its
    bound."""


# ---- 429 / 503: try again later ---------------------------------------------------------

class RateLimited(CairnError):
    """429 ``rate_limited``: the caller is over its request rate; see ``retry_after``."""


class LostRace(Conflict):
    """409 ``lost_race``: in a cluster of cairnd nodes, other nodes changed the blackboard
    first, again and again; nothing was applied and the key was forgotten. Safe to retry
    (the Client does, like a 503)."""


class Unavailable(CairnError):
    """503: nothing was applied; retry after ``retry_after`` seconds."""


class Overloaded(Unavailable):
    """503 ``overloaded``: the ingress queue, watch streams or connections are full."""


class AgentBackoff(Unavailable):
    """503 ``agent_backoff``: this agent is backing off after repeated failures."""


class ShuttingDown(Unavailable):
    """503 ``shutting_down``."""


class OutcomeUnknown(Unavailable):
    """503 ``outcome_unknown``: the change may or may not have been applied. Retry with the
    **same** idempotency key (``err.idempotency_key``) or read back first."""


# ---- 500 and the transport --------------------------------------------------------------

class InternalError(CairnError):
    """500 ``internal`` / ``corrupt_record``."""


class CairnConnectionError(CairnError):
    """The server could not be reached, or the connection dropped, after the client's retries.
    For a mutation the outcome is unknown: retry with ``err.idempotency_key``."""


class ProtocolError(CairnError):
    """The server's reply was not what the API promises (not JSON, no error object, ...)."""


class WatchOverflow(CairnError):
    """The watch stream fell more than ``watch_buffer_events_max`` events behind and was
    closed; ``resume_after`` is the last sequence delivered (raised only with
    ``reconnect=False``; otherwise the stream resumes by itself)."""

    def __init__(self, resume_after: int) -> None:
        super().__init__(None, "overflow", f"watch stream overflowed; resume after {resume_after}",
                         {"resume_after": resume_after})
        self.resume_after = resume_after


# error.code → class (the most specific match wins; then the HTTP status below).
_BY_CODE: dict[str, type[CairnError]] = {
    "method_not_allowed": MethodNotAllowed,
    "unknown_reference": UnknownReference,
    "not_grounded": NotGrounded,
    "unauthenticated": Unauthenticated,
    "stale_epoch": StaleEpoch,
    "already_claimed": AlreadyClaimed,
    "invalid_state": InvalidState,
    "too_large": TooLarge,
    "rate_limited": RateLimited,
    "overloaded": Overloaded,
    "agent_backoff": AgentBackoff,
    "shutting_down": ShuttingDown,
    "outcome_unknown": OutcomeUnknown,
    "lost_race": LostRace,
}

_BY_STATUS: dict[int, type[CairnError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: TooLarge,
    422: Unprocessable,
    429: RateLimited,
    500: InternalError,
    503: Unavailable,
}


def error_class(status: int, code: str) -> type[CairnError]:
    """The class for an error reply: by code when the code's family matches the status
    (``not_holder`` is a 403 on release but a 409 on heartbeat), else by status."""
    by_status = _BY_STATUS.get(status)
    by_code = _BY_CODE.get(code)
    if by_code is not None and (by_status is None or issubclass(by_code, by_status)):
        return by_code
    if by_status is not None:
        return by_status
    if 400 <= status < 500:
        return InvalidRequest
    return CairnError


def error_from_reply(status: int, body: Any, *, retry_after: float | None = None,
                     idempotency_key: str | None = None) -> CairnError:
    """Builds the exception for a non-2xx reply whose JSON body is ``body``."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return ProtocolError(status, "bad_response",
                             f"HTTP {status} without an error object", {"body": body},
                             retry_after=retry_after, idempotency_key=idempotency_key)
    code = str(err.get("code", "unknown"))
    message = str(err.get("message", ""))
    details = err.get("details")
    cls = error_class(status, code)
    return cls(status, code, message, details if isinstance(details, dict) else {},
               retry_after=retry_after, idempotency_key=idempotency_key)
