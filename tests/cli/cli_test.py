#!/usr/bin/env python3
"""cli_test.py — the `cairn` binary against a real `cairnd` (and, for the
faults a healthy server never shows, small fake HTTP servers written here).

Run by ctest as `cairn_cli_tests` with CAIRN_BIN and CAIRND_BIN set to the
built binaries. Standard library only.
"""

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

CAIRN = os.environ.get("CAIRN_BIN", "build/bin/cairn")
CAIRND = os.environ.get("CAIRND_BIN", "build/bin/cairnd")

# Upper bound for one CLI run, so that a hang fails the test instead of
# stalling ctest. Not a performance assertion.
RUN_TIMEOUT_S = 30

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_VERIFY, EXIT_CONFLICT, EXIT_NOT_FOUND = (
    0, 1, 2, 3, 4, 5, 6)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(extra)
    return env


def run(args, url=None, stdin=None, env=None, timeout=RUN_TIMEOUT_S):
    """Runs cairn; returns CompletedProcess (text mode)."""
    e = env if env is not None else clean_env()
    if url is not None:
        e = dict(e, CAIRN_URL=url)
    return subprocess.run([CAIRN] + list(args), input=stdin, capture_output=True, text=True,
                          env=e, timeout=timeout)


def fact_id(kind, content, creator="anonymous", derived_from=(),
            content_type="application/json"):
    """A fact's id computed independently of cairn's C++ code: SHA-256 of the
    RFC 8785 form of the five hashed fields (for the simple values used here,
    Python's sorted compact JSON is that form)."""
    hashed = {"content": content, "content_type": content_type, "creator": creator,
              "derived_from": list(derived_from), "kind": kind}
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def api_fact(kind, content, derived_from=(), creator="anonymous", seq=1):
    return {"kind": kind, "content": content, "content_type": "application/json",
            "derived_from": list(derived_from), "creator": creator,
            "id": fact_id(kind, content, creator, derived_from), "seq": seq,
            "recorded_at": 1_700_000_000_000}


class Cairnd:
    """A real cairnd process on a free loopback port with a temp data dir."""

    def __init__(self, config_text=None):
        self.dir = tempfile.mkdtemp(prefix="cairn-cli-test-")
        args = [CAIRND, "--data", os.path.join(self.dir, "data"), "--listen", "127.0.0.1:0",
                "--log-level", "warn"]
        if config_text is not None:
            path = os.path.join(self.dir, "cairnd.yaml")
            with open(path, "w") as f:
                f.write(config_text)
            args += ["--config", path]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"cairnd listening on (http://127\.0\.0\.1:\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("cairnd did not print its URL: %r" % line)
        self.url = m.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def metric(self, name):
        """The value of an unlabelled Prometheus metric from /metrics."""
        import urllib.request
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None


class FakeServer:
    """A scripted HTTP server for replies cairnd never gives (tampered facts,
    dropped connections, 503s, chunked bodies, hanging). `handler(req)` gets
    a dict {method, path, headers, body, n} and returns None (close without a
    reply), "hang", or (status, headers dict, body bytes, chunks|None)."""

    def __init__(self, handler):
        self.requests = []
        self.stop_event = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body": body, "n": len(outer.requests),
                       "client_port": self.client_address[1]}
                outer.requests.append(req)
                reply = handler(req)
                if reply is None:
                    self.close_connection = True
                    return
                if reply == "hang":
                    outer.stop_event.wait(20)
                    self.close_connection = True
                    return
                status, headers, payload, chunks = reply
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if chunks is None:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                elif chunks == "silent-close":
                    # A complete reply, then the connection closes without
                    # "Connection: close" (like a server's idle timeout).
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.close_connection = True
                elif chunks == "close":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                    self.close_connection = True
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for c in chunks:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_DELETE = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def json_reply(status, obj, headers=None, chunks=None):
    body = json.dumps(obj).encode()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    if chunks:
        # Split the body into `chunks` pieces.
        step = max(1, len(body) // chunks)
        return (status, h, body, [body[i:i + step] for i in range(0, len(body), step)])
    return (status, h, body, None)


def not_found_reply(what):
    return json_reply(404, {"error": {"code": "not_found", "message": "no fact " + what,
                                      "details": {}}})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------------------


class WithServer(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Cairnd()
        cls.url = cls.server.url

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def cairn(self, *args, stdin=None, expect=EXIT_OK):
        r = run(args, url=self.url, stdin=stdin)
        self.assertEqual(r.returncode, expect,
                         "cairn %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def cairn_json(self, *args, stdin=None):
        return json.loads(self.cairn("--json", *args, stdin=stdin).stdout)

    def new_fact(self, kind, content, *extra):
        return self.cairn("fact", "add", kind, json.dumps(content), *extra).stdout.strip()


class UsageTest(unittest.TestCase):
    def test_help_everywhere(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, EXIT_OK)
        for word in ["fact", "intent", "hint", "state", "plan", "watch", "verify", "--url", "--token",
                     "--json", "--timeout-ms", "Exit codes"]:
            self.assertIn(word, r.stdout)
        for cmd in [["fact", "add"], ["fact", "get"], ["fact", "ls"], ["intent", "add"],
                    ["intent", "get"], ["intent", "ls"], ["intent", "claim"],
                    ["intent", "heartbeat"], ["intent", "conclude"], ["intent", "fail"],
                    ["intent", "release"], ["intent", "cancel"], ["hint", "add"],
                    ["hint", "rm"], ["hint", "ls"], ["state"], ["plan"], ["watch"], ["verify"]]:
            r = run(cmd + ["--help"])
            self.assertEqual(r.returncode, EXIT_OK, cmd)
            self.assertIn("Usage", r.stdout, cmd)
        self.assertIn("--wait-ms", run(["intent", "claim", "--help"]).stdout)
        self.assertIn("--count", run(["watch", "--help"]).stdout)
        for opt in ["--provider", "--cost-units", "--stale-after-ms", "--requires", "--identity"]:
            self.assertIn(opt, run(["intent", "add", "--help"]).stdout)

    def test_usage_errors_exit_2(self):
        port = free_port()  # nothing listens: usage errors must not need a server
        url = "http://127.0.0.1:%d" % port
        cases = [
            [],                                        # no command
            ["fact"],                                  # no subcommand
            ["bogus"],                                 # unknown command
            ["fact", "add", "obs"],                    # missing content
            ["fact", "add", "obs", "{not json"],       # content is not JSON
            ["fact", "add", "obs", "@/nonexistent/file.json"],
            ["--timeout-ms", "0", "state"],            # out of range
            ["intent", "add", "k"],                    # --from-fact is required
            ["intent", "heartbeat", "x", "--agent", "a"],  # --epoch is required
            ["hint", "add", "h", "--effect", "explode"],
            ["intent", "claim", "some-id", "--max", "2"],   # next-work options with an id
            ["--url", "ftp://example.org", "state"],
            ["--url", "http://", "state"],
        ]
        for args in cases:
            r = run(args, url=url)
            self.assertEqual(r.returncode, EXIT_USAGE, "%s: %s %s" % (args, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), args)
        r = run(["fact", "add", "obs", "{not json"], url=url)
        self.assertIn("not JSON", r.stderr)

    def test_unreachable_server_exit_3(self):
        url = "http://127.0.0.1:%d" % free_port()
        r = run(["state"], url=url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertIn("unreachable", r.stderr)
        r = run(["--json", "fact", "get", "0" * 64], url=url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertEqual(json.loads(r.stderr)["error"]["code"], "unreachable")
        # An IPv6 literal parses (and nothing listens there either).
        r = run(["--url", "http://[::1]:%d" % free_port(), "state"])
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE, r.stderr)
        r = run(["--url", "http://[::1:80", "state"])
        self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)


class FactTest(WithServer):
    def test_add_get_and_ids_match_an_independent_hash(self):
        content = {"b": [1, 2, {"z": True, "a": None}], "a": "é"}
        fid = self.new_fact("obs.temp", content)
        self.assertRegex(fid, HEX64)
        self.assertEqual(fid, fact_id("obs.temp", content))
        # Adding it again names the same fact (200, created false).
        again = self.cairn_json("fact", "add", "obs.temp", json.dumps(content))
        self.assertEqual(again["id"], fid)
        self.assertFalse(again["created"])
        got = self.cairn_json("fact", "get", fid)
        self.assertEqual(got["content"], content)
        self.assertEqual(got["kind"], "obs.temp")
        self.assertEqual(got["creator"], "anonymous")
        human = self.cairn("fact", "get", fid).stdout
        self.assertRegex(human, r"(?m)^id\s+%s$" % fid)
        self.assertRegex(human, r"(?m)^kind\s+obs\.temp$")
        self.assertRegex(human, r"(?m)^derived_from\s+-$")

    def test_content_from_file_stdin_and_string(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"from": "file"}, f)
            path = f.name
        try:
            fid = self.cairn("fact", "add", "obs.file", "@" + path).stdout.strip()
        finally:
            os.unlink(path)
        self.assertEqual(fid, fact_id("obs.file", {"from": "file"}))
        fid = self.cairn("fact", "add", "obs.stdin", "-", stdin='[1, 2, 3]').stdout.strip()
        self.assertEqual(fid, fact_id("obs.stdin", [1, 2, 3]))
        fid = self.cairn("fact", "add", "obs.text", "--string", "--content-type", "text/plain",
                         "plain words").stdout.strip()
        self.assertEqual(fid, fact_id("obs.text", "plain words", content_type="text/plain"))
        self.assertEqual(self.cairn_json("fact", "get", fid)["content"], "plain words")

    def test_url_flag_overrides_env_and_negative_content(self):
        dead = "http://127.0.0.1:%d" % free_port()
        r = run(["--url", self.url, "fact", "add", "obs.neg", "-5"], env=clean_env(CAIRN_URL=dead))
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout.strip(), fact_id("obs.neg", -5))

    def test_derived_from_and_creator(self):
        a = self.new_fact("obs.a", 1)
        b = self.new_fact("obs.a", 2)
        c = self.cairn("fact", "add", "obs.c", "3", "--derived-from", a, "--derived-from", b,
                       "--creator", "sensor-7").stdout.strip()
        self.assertEqual(c, fact_id("obs.c", 3, creator="sensor-7", derived_from=[a, b]))
        got = self.cairn_json("fact", "get", c)
        self.assertEqual(got["derived_from"], [a, b])
        self.assertEqual(got["creator"], "sensor-7")

    def test_unknown_reference_is_refused_exit_1(self):
        r = self.cairn("fact", "add", "obs", "1", "--derived-from", "f" * 64, expect=EXIT_REFUSED)
        self.assertIn("unknown_reference", r.stderr)
        self.assertIn("HTTP 422", r.stderr)

    def test_not_found_exit_6(self):
        r = self.cairn("fact", "get", "0" * 64, expect=EXIT_NOT_FOUND)
        self.assertIn("not_found", r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.cairn("--json", "fact", "get", "0" * 64, expect=EXIT_NOT_FOUND)
        err = json.loads(r.stderr)
        self.assertEqual(err["error"]["code"], "not_found")
        self.assertIsInstance(err["error"]["details"], dict)

    def test_ls_pages_and_all(self):
        ids = [self.new_fact("obs.page", i) for i in range(5)]
        page = self.cairn_json("fact", "ls", "--kind", "obs.page", "--limit", "2")
        self.assertEqual([f["id"] for f in page["facts"]], ids[:2])
        self.assertIsNotNone(page["next"])
        page2 = self.cairn_json("fact", "ls", "--kind", "obs.page", "--limit", "2", "--after",
                                str(page["next"]))
        self.assertEqual([f["id"] for f in page2["facts"]], ids[2:4])
        everything = self.cairn_json("fact", "ls", "--kind", "obs.page", "--limit", "2", "--all")
        self.assertEqual([f["id"] for f in everything["facts"]], ids)
        self.assertIsNone(everything["next"])
        # The table: a header, one row per fact, full ids; a hint for the next page.
        r = self.cairn("fact", "ls", "--kind", "obs.page", "--limit", "3")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[:4], ["SEQ", "ID", "KIND", "CREATOR"])
        self.assertEqual(len(lines), 4)
        for line, fid in zip(lines[1:], ids):
            self.assertIn(fid, line.split())
        self.assertIn("--after", r.stderr)
        # Columns are aligned: every row's ID starts where the header's does.
        col = lines[0].index("ID")
        for line in lines[1:]:
            self.assertRegex(line[col:], r"^[0-9a-f]{64} ")

    def test_wide_shows_full_references(self):
        a = self.new_fact("obs.wide", "root")
        self.cairn("fact", "add", "obs.wide", '"child"', "--derived-from", a)
        narrow = self.cairn("fact", "ls", "--kind", "obs.wide").stdout
        wide = self.cairn("--wide", "fact", "ls", "--kind", "obs.wide").stdout
        self.assertIn(a[:12] + "…", narrow)
        self.assertEqual(wide.count(a), 2)  # its own row and the child's reference

    def test_explicit_idempotency_key_replays_the_first_reply(self):
        first = self.cairn_json("fact", "add", "obs.key", "1", "--idempotency-key", "k-123")
        second = self.cairn_json("fact", "add", "obs.key", "2", "--idempotency-key", "k-123")
        self.assertEqual(second, first)
        # Without a key, each invocation is its own request.
        third = self.cairn_json("fact", "add", "obs.key", "2")
        self.assertNotEqual(third["id"], first["id"])


class IntentTest(WithServer):
    def setUp(self):
        self.f = self.new_fact("obs.ground", {"t": time.time()})

    def test_lifecycle_by_id(self):
        iid = self.cairn("intent", "add", "job.a", "--from-fact", self.f, "--id", "job-a-1",
                         "--lane", "l1", "--priority", "5", "--spec", '{"n": 1}').stdout.strip()
        self.assertEqual(iid, "job-a-1")
        got = self.cairn_json("intent", "get", iid)
        self.assertEqual((got["state"], got["lane"], got["priority"], got["spec"]),
                         ("open", "l1", 5, {"n": 1}))
        claim = self.cairn_json("intent", "claim", iid, "--agent", "w1")
        self.assertEqual(claim["epoch"], 1)
        # Someone else: 409 already_claimed with the holder → exit 5.
        r = self.cairn("intent", "claim", iid, "--agent", "w2", expect=EXIT_CONFLICT)
        self.assertIn("already_claimed", r.stderr)
        self.assertIn('"holder":"w1"', r.stderr)
        r = self.cairn("--json", "intent", "claim", iid, "--agent", "w2", expect=EXIT_CONFLICT)
        self.assertEqual(json.loads(r.stderr)["error"]["details"]["holder"], "w1")
        # Stale epoch → exit 5.
        r = self.cairn("intent", "heartbeat", iid, "--agent", "w1", "--epoch", "9",
                       expect=EXIT_CONFLICT)
        self.assertIn("stale_epoch", r.stderr)
        hb = self.cairn("intent", "heartbeat", iid, "--agent", "w1", "--epoch", "1").stdout
        self.assertRegex(hb, r"(?m)^job-a-1\s+1\s+\d{4}-\d\d-\d\dT")
        # Release by a non-holder: 403 → exit 1; by the holder: open.
        r = self.cairn("intent", "release", iid, "--agent", "w2", "--epoch", "1",
                       expect=EXIT_REFUSED)
        self.assertIn("not_holder", r.stderr)
        self.assertEqual(self.cairn("intent", "release", iid, "--agent", "w1", "--epoch",
                                    "1").stdout.split(), ["job-a-1", "open"])
        claim = self.cairn_json("intent", "claim", iid, "--agent", "w2")
        self.assertEqual(claim["epoch"], 2)
        # Conclude with a stale epoch, then the right one.
        self.cairn("intent", "conclude", iid, "--agent", "w2", "--epoch", "1", "--kind",
                   "res.a", '{"v": 0}', expect=EXIT_CONFLICT)
        result = self.cairn("intent", "conclude", iid, "--agent", "w2", "--epoch", "2", "--kind",
                            "res.a", '{"v": 42}').stdout.strip()
        self.assertEqual(result, fact_id("res.a", {"v": 42}, creator="w2",
                                         derived_from=[self.f]))
        got = self.cairn_json("intent", "get", iid)
        self.assertEqual((got["state"], got["result"]), ("concluded", result))
        human = self.cairn("intent", "get", iid).stdout
        self.assertRegex(human, r"(?m)^state\s+concluded$")
        self.assertRegex(human, r"(?m)^result\s+%s$" % result)
        # The result and its provenance verify.
        v = self.cairn("verify", result).stdout
        self.assertIn("all re-hash", v)
        self.assertRegex(v, r"(?m)^ok\s+%s\s+res\.a\s+0" % result)
        self.assertRegex(v, r"(?m)^ok\s+%s\s+obs\.ground\s+1" % self.f)

    def test_claim_next_long_poll_fail_and_dead(self):
        # Its own agent name: failures put an agent into backoff, which would
        # slow down the other tests' claims.
        kind = "job.next.%d" % os.getpid()
        # Nothing yet: an empty claim is not an error.
        r = self.cairn("intent", "claim", "--agent", "w-next", "--kind", kind)
        self.assertEqual(r.stdout, "")
        self.assertIn("no intent claimed", r.stderr)
        self.assertEqual(self.cairn_json("intent", "claim", "--agent", "w-next", "--kind", kind),
                         {"claims": []})
        # The long-poll's wait is added to the request timeout: an empty
        # reply after wait_ms, not a timeout.
        r = self.cairn("--timeout-ms", "200", "intent", "claim", "--agent", "w-next", "--kind", kind,
                       "--wait-ms", "600")
        self.assertIn("no intent claimed", r.stderr)
        # A long-poll woken by the intent created while it waits.
        env = clean_env(CAIRN_URL=self.url)
        waiter = subprocess.Popen([CAIRN, "--json", "intent", "claim", "--agent", "w-next", "--kind",
                                   kind, "--wait-ms", "20000"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 10
        while self.server.metric("cairn_parked_long_polls") != 1.0 and time.time() < deadline:
            time.sleep(0.05)
        iid = self.cairn("intent", "add", kind, "--from-fact", self.f, "--max-attempts",
                         "2").stdout.strip()
        out, err = waiter.communicate(timeout=RUN_TIMEOUT_S)
        self.assertEqual(waiter.returncode, 0, err)
        claims = json.loads(out)["claims"]
        self.assertEqual([c["intent"]["id"] for c in claims], [iid])
        epoch = str(claims[0]["epoch"])
        r = self.cairn("intent", "fail", iid, "--agent", "w-next", "--epoch", epoch, "--error",
                       "disk full")
        self.assertRegex(r.stdout, r"^%s\s+open\s+not_before \d{4}-" % iid)
        self.assertEqual(self.cairn_json("intent", "get", iid)["last_error"], "disk full")
        # After the backoff it can be claimed again; a final failure makes it dead.
        got = self.cairn_json("intent", "get", iid)
        wait_s = max(0, (got["not_before"] - time.time() * 1000) / 1000) + 0.05
        time.sleep(min(wait_s, 5))
        table = self.cairn("intent", "claim", "--agent", "w-next", "--kind", kind).stdout
        lines = table.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "KIND", "EPOCH", "LEASE_EXPIRES"])
        self.assertEqual(lines[1].split()[:3], [iid, kind, "2"])
        r = self.cairn("intent", "fail", iid, "--agent", "w-next", "--epoch", "2", "--no-retry")
        self.assertEqual(r.stdout.split(), [iid, "dead"])

    def test_cancel_and_ls_filters(self):
        kind = "job.cancel.%d" % os.getpid()
        a = self.cairn("intent", "add", kind, "--from-fact", self.f, "--creator",
                       "boss").stdout.strip()
        b = self.cairn("intent", "add", kind, "--from-fact", self.f, "--lane",
                       "slow").stdout.strip()
        r = self.cairn("intent", "cancel", a, "--creator", "intruder", expect=EXIT_REFUSED)
        self.assertIn("not_creator", r.stderr)
        self.assertEqual(self.cairn("intent", "cancel", a, "--creator", "boss").stdout.split(),
                         [a, "cancelled"])
        listed = self.cairn_json("intent", "ls", "--kind", kind, "--all")["intents"]
        self.assertEqual(sorted(i["id"] for i in listed), sorted([a, b]))
        open_ = self.cairn_json("intent", "ls", "--kind", kind, "--state", "open")["intents"]
        self.assertEqual([i["id"] for i in open_], [b])
        slow = self.cairn_json("intent", "ls", "--kind", kind, "--lane", "slow")["intents"]
        self.assertEqual([i["id"] for i in slow], [b])
        table = self.cairn("intent", "ls", "--kind", kind).stdout.splitlines()
        self.assertEqual(table[0].split(),
                         ["ID", "STATE", "KIND", "LANE", "PRIO", "EPOCH", "HOLDER", "ATTEMPTS",
                          "RESULT"])
        rows = {line.split()[0]: line.split() for line in table[1:]}
        self.assertEqual(rows[a][1], "cancelled")
        self.assertEqual(rows[b][1:4], ["open", kind, "slow"])
        r = self.cairn("intent", "ls", "--state", "sleeping", expect=EXIT_REFUSED)
        self.assertIn("invalid_query", r.stderr)
        self.cairn("intent", "get", "no-such-intent", expect=EXIT_NOT_FOUND)
        r = self.cairn("intent", "add", kind, "--from-fact", "e" * 64, expect=EXIT_REFUSED)
        self.assertIn("unknown_reference", r.stderr)


class HintStateWatchTest(WithServer):
    def test_hints(self):
        f = self.new_fact("obs.h", 1)
        kind = "job.hinted.%d" % os.getpid()
        hid = self.cairn("hint", "add", "ops.pause", "--effect", "deny", "--select-kind", kind,
                         "--reason", "maintenance").stdout.strip()
        self.assertTrue(hid)
        live = self.cairn_json("hint", "ls", "--live", "--all")["hints"]
        self.assertIn(hid, [h["id"] for h in live])
        table = self.cairn("hint", "ls", "--all").stdout.splitlines()
        self.assertEqual(table[0].split()[:4], ["ID", "KIND", "EFFECT", "SELECTOR"])
        row = next(line for line in table if line.startswith(hid))
        self.assertIn("kind=" + kind, row)
        self.assertIn("maintenance", row)
        self.assertEqual(self.cairn_json("hint", "get", hid)["effect"]["type"], "deny")
        iid = self.cairn("intent", "add", kind, "--from-fact", f).stdout.strip()
        r = self.cairn("intent", "claim", iid, "--agent", "w1", expect=EXIT_CONFLICT)
        self.assertIn("denied_by_hint", r.stderr)
        self.assertIn(hid, r.stderr)
        self.assertEqual(self.cairn("hint", "rm", hid).stdout.split(), [hid, "revoked"])
        self.assertNotIn(hid, [h["id"] for h in
                               self.cairn_json("hint", "ls", "--live", "--all")["hints"]])
        self.assertEqual(self.cairn_json("intent", "claim", iid, "--agent", "w1")["epoch"], 1)
        self.cairn("intent", "release", iid, "--agent", "w1", "--epoch", "1")  # no later expiry
        self.cairn("hint", "rm", "no-such-hint", expect=EXIT_NOT_FOUND)
        r = self.cairn("hint", "add", "ops.cap", "--effect", "cap", expect=EXIT_REFUSED)
        self.assertIn("HTTP 400", r.stderr)

    def test_state(self):
        self.new_fact("obs.state", 1)
        st = self.cairn_json("state")
        self.assertGreaterEqual(st["facts"], 1)
        self.assertEqual(set(st["intents"]),
                         {"open", "deferred", "claimed", "concluded", "dead", "cancelled",
                          "stale", "coalesced"})
        human = self.cairn("state").stdout
        self.assertRegex(human, r"(?m)^facts\s+%d$" % st["facts"])
        self.assertRegex(human, r"(?m)^open\s+\d+$")
        # Counts per lane: a fresh lane with one open intent.
        f = self.new_fact("obs.state", 2)
        self.cairn("intent", "add", "job.lanes", "--from-fact", f, "--lane", "state-lane")
        st = self.cairn_json("state")
        self.assertEqual(st["lanes"]["state-lane"]["open"], 1)
        self.assertEqual(sum(st["lanes"]["state-lane"].values()), 1)
        human = self.cairn("state").stdout
        self.assertRegex(human, r"(?m)^LANE\s+OPEN\s+DEFERRED\s+CLAIMED")
        self.assertRegex(human, r"(?m)^state-lane\s+1(\s+0){7}$")

    def test_watch_history_and_live(self):
        first = self.new_fact("obs.watch", 1)
        last_seq = self.cairn_json("state")["last_seq"]
        # History: the events after a seq, as JSON lines.
        out = self.cairn("--json", "watch", "--after", str(last_seq - 1), "--count", "1").stdout
        events = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(events), 1)
        self.assertEqual((events[0]["seq"], events[0]["type"], events[0]["subject"]),
                         (last_seq, "fact.recorded", first))
        # Live: started "from now", it prints no history, then the events as
        # they happen. Facts are posted until it has printed two (its start
        # is not observable from outside, so no fixed number is posted).
        before = self.cairn_json("state")["last_seq"]
        env = clean_env(CAIRN_URL=self.url)
        w = subprocess.Popen([CAIRN, "watch", "--count", "2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        posted = []
        deadline = time.time() + RUN_TIMEOUT_S
        while w.poll() is None and time.time() < deadline:
            posted.append(self.new_fact("obs.watch.live", len(posted)))
            time.sleep(0.1)
        out, err = w.communicate(timeout=RUN_TIMEOUT_S)
        self.assertEqual(w.returncode, 0, err)
        lines = [line.split() for line in out.splitlines()]
        self.assertEqual(len(lines), 2)
        seqs = [int(cols[0]) for cols in lines]
        self.assertGreater(seqs[0], before)
        self.assertEqual(seqs[1], seqs[0] + 1)
        self.assertEqual([cols[2] for cols in lines], ["fact.recorded", "fact.recorded"])
        first = posted.index(lines[0][3])  # the first event is one of the facts posted
        self.assertEqual(lines[1][3], posted[first + 1])


class LogsTest(WithServer):
    DAY_MS = 86_400_000

    def append(self, source, type_, ref=None, payload=None):
        import urllib.request
        body = {"source": source, "type": type_}
        if ref is not None:
            body["ref"] = ref
        if payload is not None:
            body["payload"] = payload
        req = urllib.request.Request(self.url + "/v1/logs", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual(r.status, 201)
            return json.loads(r.read())

    def test_logs_table_json_filter_and_pages(self):
        a = self.append("sense:disk", "sense.failed", "run-1", {"exit": 3})
        b = self.append("sense:cpu", "sense.timeout")
        c = self.append("sense:disk", "sense.failed", "run-2")
        page = self.cairn_json("logs", "--limit", "2")
        self.assertEqual([r["id"] for r in page["logs"]], [a["id"], b["id"]])
        self.assertEqual(page["next"], str(b["id"]))
        rest = self.cairn_json("logs", "--after", page["next"])
        self.assertEqual([r["id"] for r in rest["logs"]], [c["id"]])
        disk = self.cairn_json("logs", "--source", "sense:disk")
        self.assertEqual([r["id"] for r in disk["logs"]], [a["id"], c["id"]])
        self.assertEqual(disk["logs"][0]["payload"], {"exit": 3})
        # The table: ISO-8601 UTC times, the payload as compact JSON.
        r = self.cairn("logs", "--source", "sense:disk")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "TIME", "SOURCE", "TYPE", "REF", "PAYLOAD"])
        self.assertEqual(len(lines), 3)
        first = lines[1].split()
        self.assertEqual(first[0], str(a["id"]))
        self.assertRegex(first[1], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
        self.assertEqual(first[2:], ["sense:disk", "sense.failed", "run-1", '{"exit":3}'])
        r = self.cairn("logs", "--limit", "0", expect=EXIT_USAGE)
        r = self.cairn("logs", "--after", "x", expect=EXIT_REFUSED)
        self.assertIn("invalid_query", r.stderr)

    def test_archive_logs_prints_the_days(self):
        # The archival cairnd runs at start is done once this first call returns
        # (both run on its archiver thread, in order).
        self.cairn("archive", "logs")
        today = int(time.time() * 1000) // self.DAY_MS
        old = [today - 40, today - 40, today - 33]
        # Old records go straight into logs.db (archival reads the file).
        db = sqlite3.connect(os.path.join(self.server.dir, "data", "logs.db"), timeout=10)
        ids = []
        for d in old:
            cur = db.execute("INSERT INTO logs(ts, source, type, ref, payload) "
                             "VALUES (?, 'sense:old', 'run.failed', '', '{\"exit\":3}')",
                             (d * self.DAY_MS + 1000,))
            ids.append(cur.lastrowid)
        db.commit()
        db.close()
        day = lambda d: time.strftime("%Y-%m-%d", time.gmtime(d * 86_400))
        r = self.cairn("archive", "logs")
        self.assertEqual(r.stdout.splitlines(), [day(today - 40), day(today - 33)])
        self.assertIn("archived 3 records; watermark %s" % day(today - 31), r.stderr)
        archive = os.path.join(self.server.dir, "data", "archive", "logs")
        with open(os.path.join(archive, day(today - 40) + ".jsonl")) as f:
            lines = f.read().splitlines()
        self.assertEqual([json.loads(l)["id"] for l in lines], ids[:2])
        self.assertEqual(json.loads(lines[0])["payload"], {"exit": 3})
        left = self.cairn_json("logs", "--source", "sense:old")
        self.assertEqual(left["logs"], [])
        again = self.cairn_json("archive", "logs")
        self.assertEqual(again, {"days": [], "records": 0, "watermark": day(today - 31)})


class AuthTest(unittest.TestCase):
    # Digests of alice-secret (agent) and dash-secret (read), as in docs/server.md.
    CONFIG = """
tokens:
  - {name: alice, sha256: %s, scopes: [agent]}
  - {name: dash,  sha256: %s, scopes: [read]}
""" % (hashlib.sha256(b"alice-secret").hexdigest(), hashlib.sha256(b"dash-secret").hexdigest())

    @classmethod
    def setUpClass(cls):
        cls.server = Cairnd(cls.CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_tokens(self):
        url = self.server.url
        r = run(["fact", "ls"], url=url)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("unauthenticated", r.stderr)
        self.assertIn("HTTP 401", r.stderr)
        r = run(["--token", "wrong", "state"], url=url)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        # The token from the environment; the creator is the token's name.
        env = clean_env(CAIRN_URL=url, CAIRN_TOKEN="alice-secret")
        r = run(["--json", "fact", "add", "obs.auth", "1"], env=env)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        fid = json.loads(r.stdout)["id"]
        self.assertEqual(fid, fact_id("obs.auth", 1, creator="alice"))
        r = run(["fact", "add", "obs.auth", "2", "--creator", "mallory"], env=env)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("impersonation", r.stderr)
        # --token overrides CAIRN_TOKEN; a read token may read but not write.
        r = run(["--token", "dash-secret", "fact", "add", "obs.auth", "3"], env=env)
        self.assertEqual(r.returncode, EXIT_REFUSED)
        self.assertIn("insufficient_scope", r.stderr)
        r = run(["--token", "dash-secret", "verify", fid], env=env)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        # With auth on, --agent may be omitted: the agent is the token's name.
        iid = run(["intent", "add", "job.auth", "--from-fact", fid], env=env).stdout.strip()
        claim = json.loads(run(["--json", "intent", "claim", iid], env=env).stdout)
        self.assertEqual(claim["epoch"], 1)
        got = json.loads(run(["--json", "intent", "get", iid], env=env).stdout)
        self.assertEqual(got["holder"], "alice")


class VerifyTamperTest(unittest.TestCase):
    """verify against a fake server holding a provenance chain built here."""

    def serve(self, facts, missing=()):
        def handler(req):
            fid = req["path"].rsplit("/", 1)[-1]
            if req["path"].startswith("/v1/facts/") and fid in facts:
                return json_reply(200, facts[fid])
            return not_found_reply(fid)
        s = FakeServer(handler)
        self.addCleanup(s.stop)
        return s

    def chain(self):
        a = api_fact("obs", {"reading": 1})
        b = api_fact("obs.derived", {"sum": 1}, [a["id"]], seq=2)
        c = api_fact("report", "ok", [b["id"], a["id"]], creator="w1", seq=3)
        return a, b, c

    def test_good_chain_verifies(self):
        a, b, c = self.chain()
        s = self.serve({f["id"]: f for f in (a, b, c)})
        r = run(["verify", c["id"]], url=s.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stdout + r.stderr)
        self.assertIn("checked 3 facts (depth 1)", r.stdout)
        # a is referenced twice but fetched once.
        fetched = [q["path"] for q in s.requests]
        self.assertEqual(sorted(fetched), sorted("/v1/facts/" + f["id"] for f in (a, b, c)))
        # One kept-alive connection carried all three requests.
        self.assertEqual(len({q["client_port"] for q in s.requests}), 1)

    def test_tampered_ancestor_and_missing_ancestor(self):
        a, b, c = self.chain()
        ghost = "9" * 64
        d = api_fact("report.final", 1, [c["id"], ghost], seq=4)
        tampered = dict(b, content={"sum": 2})  # content changed, id kept
        s = self.serve({f["id"]: f for f in (a, tampered, c, d)})
        r = run(["verify", d["id"]], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY, r.stdout + r.stderr)
        rows = {line.split()[1]: line.split()[0] for line in r.stdout.splitlines()[1:-1]}
        self.assertEqual(rows, {d["id"]: "ok", c["id"]: "ok", ghost: "MISSING",
                                b["id"]: "MISMATCH", a["id"]: "ok"})
        self.assertIn("1 mismatched, 1 missing", r.stdout)
        r = run(["--json", "verify", d["id"]], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        rep = json.loads(r.stdout)
        self.assertEqual((rep["ok"], rep["checked"], rep["mismatches"], rep["missing"]),
                         (False, 5, 1, 1))
        bad = next(f for f in rep["facts"] if f["id"] == b["id"])
        self.assertEqual(bad["outcome"], "mismatch")
        self.assertEqual(bad["computed_id"], fact_id("obs.derived", {"sum": 2},
                                                     derived_from=[a["id"]]))
        self.assertEqual(bad["referenced_by"], c["id"])

    def test_tampered_root_and_relabelled_fact(self):
        a, _, _ = self.chain()
        s = self.serve({a["id"]: dict(a, creator="someone-else")})
        r = run(["verify", a["id"]], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        self.assertRegex(r.stdout, r"(?m)^MISMATCH\s+%s" % a["id"])
        # A correct body served under a different id: the id it hashes to is not the one asked.
        other = "a" * 64
        s2 = self.serve({other: a})
        r = run(["--json", "verify", other], url=s2.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        self.assertEqual(json.loads(r.stdout)["facts"][0]["computed_id"], a["id"])

    def test_malformed_fact_and_cycle_terminate(self):
        x_id, y_id = "1" * 64, "2" * 64
        x = {"kind": "k", "content": 1, "creator": "c", "derived_from": [y_id], "id": x_id}
        y = {"kind": "k", "content": 2, "creator": "c", "derived_from": [x_id], "id": y_id}
        z_id = "3" * 64
        z = {"content": 1, "creator": "c", "derived_from": [x_id], "id": z_id}  # no kind
        s = self.serve({x_id: x, y_id: y, z_id: z})
        r = run(["--json", "verify", z_id], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        rep = json.loads(r.stdout)
        self.assertEqual(rep["malformed"], 1)
        self.assertEqual(rep["facts"][0]["outcome"], "malformed")
        s.requests.clear()
        r = run(["--json", "verify", x_id], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        rep = json.loads(r.stdout)
        self.assertEqual([f["id"] for f in rep["facts"]], [x_id, y_id])  # each once
        self.assertEqual(len(s.requests), 2)

    def test_limits_cut_the_walk_and_say_so(self):
        facts = [api_fact("obs", 0)]
        for i in range(1, 6):
            facts.append(api_fact("obs", i, [facts[-1]["id"]], seq=i + 1))
        s = self.serve({f["id"]: f for f in facts})
        top = facts[-1]["id"]
        self.assertEqual(run(["verify", top], url=s.url).returncode, EXIT_OK)
        r = run(["verify", top, "--max-depth", "2"], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        self.assertIn("incomplete", r.stdout)
        r = run(["--json", "verify", top, "--max-facts", "3"], url=s.url)
        self.assertEqual(r.returncode, EXIT_VERIFY)
        rep = json.loads(r.stdout)
        self.assertEqual((rep["checked"], rep["truncated"], rep["mismatches"]), (3, True, 0))

    def test_root_not_found_exit_6(self):
        s = self.serve({})
        r = run(["verify", "4" * 64], url=s.url)
        self.assertEqual(r.returncode, EXIT_NOT_FOUND)


class EvidenceTest(unittest.TestCase):
    """cairn verify --evidence against a real cairnd whose SQLite file is edited behind its back."""

    def setUp(self):
        self.server = Cairnd()
        self.addCleanup(self.server.stop)
        self.db = os.path.join(self.server.dir, "data", "cairn.db")

    def cairn(self, *args, expect=EXIT_OK):
        r = run(list(args), url=self.server.url)
        self.assertEqual(r.returncode, expect,
                         "cairn %s\nstdout: %s\nstderr: %s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def edit(self, key, change):
        """Rewrites the kv row `key` with change(value) (None deletes it)."""
        import sqlite3
        con = sqlite3.connect(self.db, timeout=10)
        try:
            row = con.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            self.assertIsNotNone(row, key)
            new = change(bytes(row[0]))
            if new is None:
                con.execute("DELETE FROM kv WHERE key = ?", (key,))
            else:
                con.execute("UPDATE kv SET value = ? WHERE key = ?", (new, key))
            con.commit()
        finally:
            con.close()
        return bytes(row[0])

    def test_a_tampered_link_event_or_tail_is_reported_with_the_first_bad_seq(self):
        fid = self.cairn("fact", "add", "obs", "1").stdout.strip()
        iid = self.cairn("intent", "add", "job", "--from-fact", fid).stdout.strip()
        self.cairn("intent", "claim", iid, "--agent", "a1")
        self.cairn("intent", "conclude", iid, "--agent", "a1", "--epoch", "1", "--kind", "r",
                   "1")
        last = json.loads(self.cairn("--json", "state").stdout)["last_seq"]
        self.assertGreaterEqual(last, 5)
        ok = json.loads(self.cairn("--json", "verify", "--evidence").stdout)
        self.assertEqual((ok["ok"], ok["checked"], ok["last_seq"]), (True, last, last))
        self.assertIn("ok", self.cairn("verify", "--evidence", "--from", "3").stdout)

        def link(seq):
            return b"v/" + b"%020d" % seq

        def event(seq):
            return b"e/" + b"%020d" % seq

        # A link's field edited: its own hash no longer matches.
        def later(v):
            j = json.loads(v)
            j["at"] += 1
            return json.dumps(j).encode()
        original = self.edit(link(3), later)
        r = self.cairn("verify", "--evidence", expect=EXIT_VERIFY)
        self.assertIn("FIRST BAD SEQ 3: hash_mismatch", r.stdout)
        bad = json.loads(self.cairn("--json", "verify", "--evidence", expect=EXIT_VERIFY).stdout)
        self.assertEqual((bad["ok"], bad["checked"], bad["problem"]["seq"]), (False, 2, 3))
        self.edit(link(3), lambda v: original)
        self.cairn("verify", "--evidence")
        # An event edited: the link's action hash no longer matches it.
        original = self.edit(event(2), lambda v: v.replace(b'"job"', b'"bob"'))
        self.assertNotEqual(original, original.replace(b'"job"', b'"bob"'))
        r = self.cairn("verify", "--evidence", expect=EXIT_VERIFY)
        self.assertIn("FIRST BAD SEQ 2: action_mismatch", r.stdout)
        self.edit(event(2), lambda v: original)
        # The newest link deleted: the chain is shorter than the event log.
        self.edit(link(last), lambda v: None)
        r = self.cairn("verify", "--evidence", expect=EXIT_VERIFY)
        self.assertIn("FIRST BAD SEQ %d: gap" % last, r.stdout)
        # A link in the middle deleted.
        self.edit(link(2), lambda v: None)
        r = self.cairn("verify", "--evidence", expect=EXIT_VERIFY)
        self.assertIn("FIRST BAD SEQ 2: gap", r.stdout)
        self.cairn("verify", expect=EXIT_USAGE)                      # neither an id nor --evidence
        self.cairn("verify", fid, "--evidence", expect=EXIT_USAGE)   # both


class TransportTest(unittest.TestCase):
    """The HTTP client's handling of what a healthy cairnd rarely does."""

    def fake(self, handler):
        s = FakeServer(handler)
        self.addCleanup(s.stop)
        return s

    def test_dropped_connection_is_retried_with_the_same_key(self):
        fid = fact_id("obs", 1)

        def handler(req):
            if req["n"] == 0:
                return None  # read the request, then close without a reply
            return json_reply(201, {"id": fid, "seq": 1, "recorded_at": 1, "created": True})
        s = self.fake(handler)
        r = run(["fact", "add", "obs", "1"], url=s.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout.strip(), fid)
        self.assertEqual(len(s.requests), 2)
        keys = [q["headers"].get("idempotency-key") for q in s.requests]
        self.assertTrue(keys[0])
        self.assertEqual(keys[0], keys[1])
        self.assertEqual(s.requests[0]["body"], s.requests[1]["body"])
        # A second invocation uses a new key.
        s.requests.clear()
        run(["fact", "add", "obs", "1"], url=s.url)
        self.assertNotEqual(s.requests[0]["headers"].get("idempotency-key"), keys[0])

    def test_503_is_retried_then_exit_3(self):
        def handler(req):
            return json_reply(503, {"error": {"code": "overloaded", "message": "busy",
                                              "details": {}}}, {"Retry-After": "0"})
        s = self.fake(handler)
        r = run(["--retries", "2", "fact", "add", "obs", "1"], url=s.url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertIn("overloaded", r.stderr)
        self.assertEqual(len(s.requests), 3)
        self.assertEqual(len({q["headers"]["idempotency-key"] for q in s.requests}), 1)
        s.requests.clear()
        r = run(["--retries", "0", "state"], url=s.url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertEqual(len(s.requests), 1)

    def test_409_lost_race_is_retried_other_409s_are_not(self):
        fid = fact_id("obs", 1)

        def handler(req):
            if req["path"] == "/v1/facts" and req["n"] == 0:
                return json_reply(409, {"error": {"code": "lost_race", "message": "raced",
                                                  "details": {"races": 17}}})
            if req["path"] == "/v1/facts":
                return json_reply(201, {"id": fid, "seq": 1, "recorded_at": 1, "created": True})
            return json_reply(409, {"error": {"code": "stale_epoch", "message": "stale",
                                              "details": {}}})
        s = self.fake(handler)
        r = run(["fact", "add", "obs", "1"], url=s.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout.strip(), fid)
        self.assertEqual(len(s.requests), 2)
        s.requests.clear()
        r = run(["intent", "heartbeat", "x" * 32, "--agent", "a", "--epoch", "1"], url=s.url)
        self.assertEqual(r.returncode, EXIT_CONFLICT, r.stderr)
        self.assertEqual(len(s.requests), 1)

    def test_other_5xx_and_non_json_replies_exit_3(self):
        def handler(req):
            if req["path"] == "/v1/state":
                return (500, {"Content-Type": "text/plain"}, b"boom", None)
            return (200, {"Content-Type": "text/html"}, b"<html>", None)
        s = self.fake(handler)
        r = run(["state"], url=s.url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertIn("boom", r.stderr)
        self.assertEqual(len(s.requests), 1)  # a 500 is not retried
        r = run(["fact", "get", "0" * 64], url=s.url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertIn("not JSON", r.stderr)

    def test_timeout_exit_3(self):
        s = self.fake(lambda req: "hang")
        r = run(["--timeout-ms", "300", "state"], url=s.url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertIn("timeout", r.stderr)
        self.assertEqual(len(s.requests), 1)  # a timeout is not retried

    def test_chunked_and_close_delimited_bodies_keep_alive_and_host_names(self):
        a = api_fact("obs", 1)
        b = api_fact("obs", 2, [a["id"]], seq=2)

        def handler(req):
            fid = req["path"].rsplit("/", 1)[-1]
            if fid == a["id"]:
                return json_reply(200, a, chunks=7)  # chunked
            if fid == b["id"]:
                body = json.dumps(b).encode()
                return (200, {"Content-Type": "application/json"}, body, "close")
            return not_found_reply(fid)
        s = self.fake(handler)
        # "localhost" goes through getaddrinfo.
        url = s.url.replace("127.0.0.1", "localhost")
        r = run(["verify", b["id"]], url=url)
        self.assertEqual(r.returncode, EXIT_OK, r.stdout + r.stderr)
        self.assertIn("checked 2 facts", r.stdout)
        # b's body ended with the connection, so a was fetched on a new one.
        self.assertEqual([q["path"] for q in s.requests],
                         ["/v1/facts/" + b["id"], "/v1/facts/" + a["id"]])
        self.assertNotEqual(s.requests[0]["client_port"], s.requests[1]["client_port"])

    def test_kept_alive_connection_closed_by_the_server_is_reopened(self):
        a = api_fact("obs", 1)
        b = api_fact("obs", 2, [a["id"]], seq=2)

        def handler(req):
            fid = req["path"].rsplit("/", 1)[-1]
            f = {a["id"]: a, b["id"]: b}.get(fid)
            if f is None:
                return not_found_reply(fid)
            return (200, {"Content-Type": "application/json"}, json.dumps(f).encode(),
                    "silent-close")
        s = self.fake(handler)
        r = run(["--retries", "0", "verify", b["id"]], url=s.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stdout + r.stderr)
        self.assertEqual(len(s.requests), 2)
        self.assertNotEqual(s.requests[0]["client_port"], s.requests[1]["client_port"])

    def test_sse_chunked_overflow_resume(self):
        def sse(*events):
            return "".join(events).encode()

        def handler(req):
            if req["path"] == "/v1/state":
                return json_reply(200, {"intents": {}, "facts": 0, "last_seq": 5})
            if req["path"] == "/v1/watch":
                last = req["headers"].get("last-event-id")
                if last == "5":
                    body = sse(": hello\n\n",
                               'id: 6\nevent: fact.recorded\ndata: {"seq":6,"type":"fact.recorded",'
                               '"subject":"s6","data":{},"at":1}\n\n',
                               'event: overflow\ndata: {"resume_after": 6}\n\n')
                else:
                    body = sse('id: 7\r\nevent: intent.created\r\ndata: {"seq":7,'
                               '\r\ndata: "type":"intent.created","subject":"s7","data":{},'
                               '"at":2}\r\n\r\n')
                step = 5  # split events across chunk boundaries
                return (200, {"Content-Type": "text/event-stream"}, body,
                        [body[i:i + step] for i in range(0, len(body), step)])
            return not_found_reply(req["path"])
        s = self.fake(handler)
        r = run(["--json", "watch", "--count", "2"], url=s.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        events = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([(e["seq"], e["subject"]) for e in events], [(6, "s6"), (7, "s7")])
        self.assertIn("resuming after 6", r.stderr)
        watches = [q for q in s.requests if q["path"] == "/v1/watch"]
        self.assertEqual([q["headers"].get("last-event-id") for q in watches], ["5", "6"])
        self.assertTrue(all(q["headers"].get("accept") == "text/event-stream" for q in watches))

    def test_watch_ends_with_exit_3_when_the_server_goes_away(self):
        def handler(req):
            if req["path"] == "/v1/state":
                return json_reply(200, {"intents": {}, "facts": 0, "last_seq": 0})
            if req["headers"].get("last-event-id") == "0":
                body = b'id: 1\ndata: {"seq":1,"type":"t","subject":"x","data":{},"at":1}\n\n'
            else:
                body = b": nothing new\n\n"
            return (200, {"Content-Type": "text/event-stream"}, body, "close")
        s = self.fake(handler)
        r = run(["--retries", "1", "watch", "--count", "5"], url=s.url)
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE, r.stdout + r.stderr)
        # Each reconnect resumed after the last event it printed.
        watches = [q for q in s.requests if q["path"] == "/v1/watch"]
        self.assertEqual(watches[0]["headers"].get("last-event-id"), "0")
        self.assertTrue(all(q["headers"].get("last-event-id") == "1" for q in watches[1:]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
