#!/usr/bin/env python3
"""python_agent.py — an example cairn agent: claims intents of one kind, counts the words of
each intent's ``spec.text`` and concludes it with a result fact ``{kind}.result``.

    python3 examples/python_agent.py --agent counter-1                 # runs until Ctrl-C
    python3 examples/python_agent.py --agent counter-1 --until-idle    # exits when no work is left
    python3 examples/python_agent.py --url http://host:7400 --token T --kind wordcount --max 10

While a handler runs, the Agent heartbeats at a third of the lease; if the lease is lost (the
intent was cancelled or taken over) the handler sees ``task.cancelled`` and its result is
dropped. Standard library only; the client is in clients/python.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python"))

import cairn  # noqa: E402


def count_words(task: cairn.Task, work_ms: int) -> dict:
    """The handler: the work of one intent. A long step would check task.cancelled."""
    text = (task.spec or {}).get("text", "")
    if work_ms > 0 and task.cancelled.wait(work_ms / 1000.0):
        return {"kind": "abandoned", "content": None}  # dropped by the Agent: the lease is gone
    words = text.split()
    return {"kind": f"{task.intent['kind']}.result",
            "content": {"text": text, "words": len(words), "longest": max(words, key=len, default="")}}


def main() -> int:
    p = argparse.ArgumentParser(description="Claim intents of a kind and conclude them.")
    p.add_argument("--url", default=os.environ.get("CAIRN_URL", "http://127.0.0.1:7400"))
    p.add_argument("--token", default=os.environ.get("CAIRN_TOKEN"))
    p.add_argument("--agent", default="py-agent-1", help="agent name (with a token: its name)")
    p.add_argument("--kind", default="wordcount", help="kind of intents to claim")
    p.add_argument("--concurrency", type=int, default=2, help="intents in hand at once")
    p.add_argument("--max", type=int, default=None, help="exit after this many intents")
    p.add_argument("--until-idle", action="store_true",
                   help="exit when a long-poll finds no work and nothing is running")
    p.add_argument("--wait-ms", type=int, default=2000, help="claim long-poll (0..30000)")
    p.add_argument("--work-ms", type=int, default=0, help="pretend each intent takes this long")
    p.add_argument("--lease-ttl-ms", type=int, default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    client = cairn.Client(args.url, args.token)

    print_lock = threading.Lock()  # on_result runs on the worker threads

    def on_result(task: cairn.Task, reply: dict) -> None:
        with print_lock:
            print(f"concluded {task.id} (epoch {task.epoch}) -> result {reply['result'][:12]}…",
                  flush=True)

    agent = cairn.Agent(client, args.agent, lambda t: count_words(t, args.work_ms),
                        kinds=[args.kind], concurrency=args.concurrency, wait_ms=args.wait_ms,
                        lease_ttl_ms=args.lease_ttl_ms, on_result=on_result)
    # Ctrl-C / SIGTERM: stop claiming (after the current long-poll), finish what is in hand,
    # exit. A second Ctrl-C exits at once.
    def on_signal(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"{args.agent}: stopping", file=sys.stderr)
        agent.stop()  # not started on a thread: only tells run() to end

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        agent.run(max_tasks=args.max, stop_when_idle=args.until_idle)
    finally:
        client.close()
    print(f"{args.agent}: concluded {agent.concluded}, failed {agent.failed}, "
          f"lost {agent.lost} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0 if agent.error is None else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (cairn.CairnError, ValueError) as e:
        print(f"python_agent: {e}", file=sys.stderr)
        sys.exit(1)
