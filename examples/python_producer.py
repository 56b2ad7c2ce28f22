#!/usr/bin/env python3
"""python_producer.py — creates work for python_agent.py: one fact (the texts to process) and
one intent per text, grounded in it.

    python3 examples/python_producer.py --count 5                 # 5 intents of kind "wordcount"
    python3 examples/python_producer.py --url http://host:7400 --token T --kind wordcount

Prints one line per intent created (its id) and a summary on stderr. Standard library only; the
client is in clients/python (found relative to this file, or via PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python"))

import cairn  # noqa: E402

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "agents never talk to each other directly",
    "facts are immutable observations and results",
    "exactly one agent at a time holds an intent",
    "a holder that stalls past its lease is fenced off",
]
COUNT_MAX = 100_000


def main() -> int:
    p = argparse.ArgumentParser(description="Create intents for the example agent.")
    p.add_argument("--url", default=os.environ.get("CAIRN_URL", "http://127.0.0.1:7400"))
    p.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    p.add_argument("--kind", default="wordcount", help="kind of the intents (default wordcount)")
    p.add_argument("--count", type=int, default=5, help=f"intents to create (1..{COUNT_MAX})")
    p.add_argument("--lease-ttl-ms", type=int, default=None)
    args = p.parse_args()
    if not 1 <= args.count <= COUNT_MAX:
        p.error(f"--count must be within 1..{COUNT_MAX}")

    with cairn.Client(args.url, args.token, creator=None if args.token else "producer") as c:
        texts = [TEXTS[i % len(TEXTS)] + f" (#{i})" for i in range(args.count)]
        source = c.add_fact("texts", texts)
        for i, text in enumerate(texts):
            intent = c.create_intent(args.kind, [source["id"]], spec={"text": text, "n": i},
                                     lease_ttl_ms=args.lease_ttl_ms)
            print(intent["id"], flush=True)
        state = c.state()["intents"]
        print(f"created {args.count} {args.kind} intents from fact {source['id'][:12]}…; "
              f"open now: {state['open']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (cairn.CairnError, ValueError) as e:
        print(f"python_producer: {e}", file=sys.stderr)
        sys.exit(1)
