"""test_examples.py — examples/python_producer.py and examples/python_agent.py end to end
against a real cairnd: the producer creates N intents, the agent concludes all N, and reading
them back shows each result."""

from __future__ import annotations

import os
import subprocess
import sys

from support import REPO, ServerTestCase

from cairn import Client

EXAMPLES = REPO / "examples"
SCRIPT_TIMEOUT_S = 30.0
N = 12


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=SCRIPT_TIMEOUT_S, env=env)


class Examples(ServerTestCase):

    def test_producer_then_agent_concludes_everything(self) -> None:
        url = self.server.url
        made = run("python_producer.py", "--url", url, "--kind", "wordcount", "--count", str(N))
        self.assertEqual(made.returncode, 0, made.stderr)
        ids = made.stdout.split()
        self.assertEqual(len(ids), N)
        done = run("python_agent.py", "--url", url, "--agent", "counter-1", "--kind",
                   "wordcount", "--until-idle", "--wait-ms", "300", "--concurrency", "3")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(sorted(line.split()[1] for line in done.stdout.splitlines()),
                         sorted(ids))
        self.assertIn(f"concluded {N}, failed 0, lost 0", done.stderr)
        with Client(url) as c:
            for iid in ids:
                it = c.get_intent(iid)
                self.assertEqual((it["state"], it["holder"]), ("concluded", "counter-1"))
                result = c.get_fact(it["result"])
                self.assertEqual(result["kind"], "wordcount.result")
                text = it["spec"]["text"]
                self.assertEqual(result["content"]["text"], text)
                self.assertEqual(result["content"]["words"], len(text.split()))
            self.assertEqual(c.list_intents(kind="wordcount", state="open")["intents"], [])

    def test_agent_help_and_bad_url(self) -> None:
        h = run("python_agent.py", "--help")
        self.assertEqual(h.returncode, 0)
        for flag in ("--url", "--token", "--agent", "--kind"):
            self.assertIn(flag, h.stdout)
        bad = run("python_producer.py", "--url", "ftp://nowhere")
        self.assertNotEqual(bad.returncode, 0)
