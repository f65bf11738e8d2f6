"""A stand-in for ``baton agent``'s HTTP server (crates/baton-agent/src/sidecar.rs), answering as
it does, byte for byte where it matters:

* ``GET /listeners`` — the document, pretty-printed JSON (serde_json's ``to_vec_pretty``: two
  spaces, ``": "``) and a newline, ``Content-Type: application/json``; fields in the agent's
  order, ``config`` and ``validUntil`` left out when absent; ``?wait=<version>`` answers once the
  version is greater, or after 30 s with the current one;
* ``POST /ack?version=<v>`` — 204 (and the acknowledged version becomes ``max(acked, v)``), 409
  ``version <v> was never published (current: <c>)`` for a version above the current one, 400
  without a version;
* ``GET /healthz`` — ``ok``; anything else 404;
* the first version is the wall clock in milliseconds; each publication adds one;
* ``validUntil`` is the wall clock now plus the time left, UTC, milliseconds truncated
  (``%Y-%m-%dT%H:%M:%S.%3fZ``); the document's own is the earliest of its listeners'.

`kill` is a SIGKILLed sidecar: the port is closed and long polls in flight are cut without an
answer.
"""

from __future__ import annotations

import datetime
import http.server
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

LONG_POLL = 30.0


def _query(text: str) -> dict[str, str]:
    """The agent's reading of a query: ``k=v`` pairs split on ``&``, a bare ``k`` is ``k=``."""
    out: dict[str, str] = {}
    for kv in text.split("&"):
        if kv:
            k, _, v = kv.partition("=")
            out.setdefault(k, v)
    return out


def rfc3339_millis(epoch: float) -> str:
    t = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Listed:
    listener_set: str
    id: str
    fencing_token: int
    #: Seconds from publication to its validUntil.
    valid_for: float = 10.0
    config: str | None = None


@dataclass(frozen=True)
class Ack:
    version: int
    status: int
    at: float  # time.monotonic()


class FakeSidecar:
    def __init__(self, port: int = 0, pod: str = "user-service-0-7d4a", namespace: str = "default") -> None:
        self.pod, self.namespace = pod, namespace
        self.cond = threading.Condition()
        self.doc: dict[str, Any] = {
            "version": int(time.time() * 1000),
            "pod": pod,
            "namespace": namespace,
            "listeners": [],
        }
        self.first_version: int = self.doc["version"]
        self.acked = 0
        self.acks: list[Ack] = []
        self.polls: list[int] = []  # the ``wait`` of each long poll received
        self.dead = False
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._get(self)

            def do_POST(self) -> None:
                fake._post(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    # ---- the test's side

    @property
    def version(self) -> int:
        with self.cond:
            return int(self.doc["version"])

    def publish(self, *listeners: Listed) -> int:
        """A new version listing ``listeners``; returns it."""
        now = time.time()
        entries = []
        for item in listeners:
            e: dict[str, Any] = {"listenerSet": item.listener_set, "id": item.id}
            if item.config is not None:
                e["config"] = item.config
            e["fencingToken"] = item.fencing_token
            e["validUntil"] = rfc3339_millis(now + item.valid_for)
            entries.append(e)
        with self.cond:
            doc: dict[str, Any] = {
                "version": self.doc["version"] + 1,
                "pod": self.pod,
                "namespace": self.namespace,
                "listeners": entries,
            }
            if entries:
                doc["validUntil"] = min(e["validUntil"] for e in entries)
            self.doc = doc
            self.cond.notify_all()
            return int(doc["version"])

    def wait_for(self, what: str, check: Any, timeout: float = 5.0) -> Any:
        """Wait (on the sidecar's condition) until ``check()`` is truthy; its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (value := check()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self.cond.wait(left)
            return value

    def acks_of(self, version: int) -> list[Ack]:
        with self.cond:
            return [a for a in self.acks if a.version >= version and a.status == 204]

    def kill(self) -> None:
        with self.cond:
            self.dead = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # ---- the agent's side

    def _reply(self, h: http.server.BaseHTTPRequestHandler, code: int, body: bytes, ctype: str) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _cut(self, h: http.server.BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _get(self, h: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = _query(url.query)
        if url.path == "/healthz":
            return self._reply(h, 200, b"ok\n", "text/plain")
        if url.path != "/listeners":
            return self._reply(h, 404, b"GET /listeners[?wait=<version>], POST /ack?version=<version>, GET /healthz\n",
                               "text/plain")
        with self.cond:
            wait = query.get("wait", "")
            if wait.isdigit():
                self.polls.append(int(wait))
                self.cond.notify_all()
                deadline = time.monotonic() + LONG_POLL
                while not self.dead and self.doc["version"] <= int(wait) and time.monotonic() < deadline:
                    self.cond.wait(deadline - time.monotonic())
            if self.dead:
                return self._cut(h)
            body = (json.dumps(self.doc, indent=2, ensure_ascii=False) + "\n").encode()
        self._reply(h, 200, body, "application/json")

    def _post(self, h: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = _query(url.query)
        if url.path != "/ack":
            return self._reply(h, 404, b"GET /listeners[?wait=<version>], POST /ack?version=<version>, GET /healthz\n",
                               "text/plain")
        v = query.get("version", "")
        if not v.isdigit():
            return self._reply(h, 400, b"POST /ack?version=<version>\n", "text/plain")
        with self.cond:
            if self.dead:
                return self._cut(h)
            current = int(self.doc["version"])
            if int(v) > current:
                self.acks.append(Ack(int(v), 409, time.monotonic()))
                self.cond.notify_all()
                msg = f"version {v} was never published (current: {current})\n".encode()
                return self._reply(h, 409, msg, "text/plain")
            self.acked = max(self.acked, int(v))
            self.acks.append(Ack(int(v), 204, time.monotonic()))
            self.cond.notify_all()
        h.send_response(204)
        h.send_header("Content-Type", "text/plain")
        h.end_headers()
