"""support.py — test fixtures: a real cairnd process per test class, and a fault-injecting TCP
proxy between a client and it.

``CAIRND`` names the binary (ctest sets it to the built target); otherwise ``build/bin/cairnd``
under the repository is used.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
sys.path.insert(0, str(HERE.parent))

STARTUP_TIMEOUT_S = 20.0     # cairnd must print its URL within this
SHUTDOWN_TIMEOUT_S = 15.0    # and exit this long after SIGTERM


def cairnd_path() -> str:
    p = os.environ.get("CAIRND") or str(REPO / "build" / "bin" / "cairnd")
    if not os.access(p, os.X_OK):
        raise RuntimeError(f"cairnd binary not found at {p} (set CAIRND)")
    return p


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Cairnd:
    """A cairnd process on a free loopback port with a fresh data directory.

    ``config`` is YAML text written to ``config.yaml`` beside the data (optional).
    """

    def __init__(self, config: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="cairn-py-")
        args = [cairnd_path(), "--data", os.path.join(self.dir, "data"), "--listen",
                "127.0.0.1:0", "--log-level", "warn"]
        if config is not None:
            path = os.path.join(self.dir, "config.yaml")
            with open(path, "w") as f:
                f.write(config)
            args += ["--config", path]
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr)
        self.url = self._read_url()

    def _read_url(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                self.stop()
                raise RuntimeError("cairnd did not print its URL in time: " + self.stderr())
            ch = os.read(fd, 1)
            if not ch:
                self.stop()
                raise RuntimeError("cairnd exited before listening: " + self.stderr())
            line += ch
        prefix = "cairnd listening on "
        text = line.decode().strip()
        if not text.startswith(prefix):
            self.stop()
            raise RuntimeError(f"unexpected first line from cairnd: {text!r}")
        return text[len(prefix):]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stderr(self) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, wait; returns the exit status (kills it if it does not exit)."""
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            rc = self.proc.returncode
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class ServerTestCase(unittest.TestCase):
    """Starts one cairnd for the class (``CONFIG`` = its YAML, or None)."""

    CONFIG: str | None = None
    server: Cairnd

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Cairnd(cls.CONFIG)

    @classmethod
    def tearDownClass(cls) -> None:
        rc = cls.server.stop()
        if rc != 0:
            raise AssertionError(f"cairnd exited with {rc}: {cls.server.stderr()}")


# ---- a fault-injecting proxy --------------------------------------------------------------

class Proxy:
    """A TCP proxy to ``port`` on loopback that sees each HTTP request head and can be told to
    fail the next matching requests:

    - ``drop_reply(path_part, n)``: forward the request, let the server answer, then close the
      client's connection instead of passing the reply on (the change happened; the client
      does not know).
    - ``inject(path_part, n, status, code, retry_after)``: answer with this error instead of
      forwarding (``after_forward=True``: forward first, then answer with the error).
    - ``cut_stream(path_part)``: for the next matching streaming request, pass on
      ``after_bytes`` bytes of the reply, then close.

    ``seen`` records ``(method, path, headers)`` of every request head that passed through.
    Works for clients that send one request at a time per connection (the cairn client does).
    """

    def __init__(self, port: int) -> None:
        self.target = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.closing = False
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def close(self) -> None:
        self.closing = True
        self.sock.close()

    def drop_reply(self, path_part: str, n: int = 1) -> None:
        with self.lock:
            self.rules.append({"match": path_part, "n": n, "kind": "drop"})

    def inject(self, path_part: str, n: int, status: int, code: str, retry_after: int = 0,
               after_forward: bool = False) -> None:
        with self.lock:
            self.rules.append({"match": path_part, "n": n, "kind": "inject", "status": status,
                               "code": code, "retry_after": retry_after,
                               "after_forward": after_forward})

    def cut_stream(self, path_part: str, after_bytes: int) -> None:
        with self.lock:
            self.rules.append({"match": path_part, "n": 1, "kind": "cut",
                               "after_bytes": after_bytes})

    def requests(self, path_part: str) -> list[tuple[str, str, dict[str, str]]]:
        with self.lock:
            return [r for r in self.seen if path_part in r[1]]

    def _rule_for(self, path: str) -> dict | None:
        with self.lock:
            for r in self.rules:
                if r["n"] > 0 and r["match"] in path:
                    r["n"] -= 1
                    return dict(r)
        return None

    def _accept(self) -> None:
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()

    @staticmethod
    def _read_head(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        i = buf.index(b"\r\n\r\n") + 4
        return buf[:i], buf[i:]

    @staticmethod
    def _read_message(sock: socket.socket, buf: bytes,
                      head_only_ok: bool = False) -> tuple[bytes, bytes] | None:
        """One HTTP message with a Content-Length body (or none); returns (message, rest)."""
        got = Proxy._read_head(sock, buf)
        if got is None:
            return None
        head, rest = got
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return head + rest[:length], rest[length:]

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.target))
        buf = b""
        try:
            while True:
                got = self._read_message(client, buf)
                if got is None:
                    return
                req, buf = got
                lines = req.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                with self.lock:
                    self.seen.append((method, path, headers))
                rule = self._rule_for(path)
                if rule and rule["kind"] == "inject" and not rule["after_forward"]:
                    client.sendall(self._error(rule))
                    continue
                server.sendall(req)
                if path.startswith("/v1/watch"):
                    self._pipe_stream(server, client, rule)
                    return
                got = self._read_message(server, b"")
                if got is None:
                    return
                reply, _ = got
                if rule and rule["kind"] == "drop":
                    return  # the change happened; the client hears nothing
                if rule and rule["kind"] == "inject":
                    client.sendall(self._error(rule))
                    continue
                client.sendall(reply)
                if b"connection: close" in reply.split(b"\r\n\r\n")[0].lower():
                    return
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def _pipe_stream(self, server: socket.socket, client: socket.socket,
                     rule: dict | None) -> None:
        limit = rule["after_bytes"] if rule and rule["kind"] == "cut" else None
        sent = 0
        while not self.closing:
            r, _, _ = select.select([server, client], [], [], 0.5)
            if client in r:
                if not client.recv(65536):
                    return
            if server in r:
                data = server.recv(65536)
                if not data:
                    return
                if limit is not None and sent + len(data) >= limit:
                    client.sendall(data[:max(0, limit - sent)])
                    return
                client.sendall(data)
                sent += len(data)

    @staticmethod
    def _error(rule: dict) -> bytes:
        body = ('{"error":{"code":"%s","message":"injected by the test proxy","details":{}}}'
                % rule["code"]).encode()
        head = (f"HTTP/1.1 {rule['status']} Injected\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n")
        if rule["retry_after"] is not None:
            head += f"Retry-After: {rule['retry_after']}\r\n"
        return (head + "\r\n").encode() + body
