"""cairn — a standard-library Python client for cairnd (docs/python.md).

    from cairn import Client, Agent
    c = Client("http://127.0.0.1:7400", agent="a1")
    fact = c.add_fact("page.seen", {"url": "https://example.org"})
    c.create_intent("extract", [fact["id"]])
"""

from .agent import Agent, PermanentFailure, Task
from .client import Client, WatchEvent, new_idempotency_key
from .errors import (AgentBackoff, AlreadyClaimed, CairnConnectionError, CairnError, Conflict,
                     Forbidden, InternalError, InvalidRequest, InvalidState, LostRace,
                     MethodNotAllowed,
                     NotFound, NotGrounded, OutcomeUnknown, Overloaded, ProtocolError,
                     RateLimited, ShuttingDown, StaleEpoch, TooLarge, Unauthenticated,
                     UnknownReference, Unavailable, Unprocessable, WatchOverflow, error_class,
                     error_from_reply)

__all__ = [
    "Agent", "PermanentFailure", "Task", "Client", "WatchEvent", "new_idempotency_key",
    "AgentBackoff", "AlreadyClaimed", "CairnConnectionError", "CairnError", "Conflict",
    "Forbidden", "InternalError", "InvalidRequest", "InvalidState", "LostRace", "MethodNotAllowed",
    "NotFound", "NotGrounded", "OutcomeUnknown", "Overloaded", "ProtocolError", "RateLimited",
    "ShuttingDown", "StaleEpoch", "TooLarge", "Unauthenticated", "UnknownReference",
    "Unavailable", "Unprocessable", "WatchOverflow", "error_class", "error_from_reply",
]
