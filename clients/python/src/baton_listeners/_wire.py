"""The sidecar's wire format: its document, and a minimal HTTP/1.1 client over asyncio streams.

The document (``GET /listeners``, ``baton agent``'s ``crates/baton-agent/src/sidecar.rs``)::

    {"version": 7, "pod": "user-service-0-7d4a", "namespace": "default",
     "validUntil": "2026-01-10T10:00:04.500Z",
     "listeners": [{"listenerSet": "sxt", "id": "listener1", "config": "token…",
                    "fencingToken": 4, "validUntil": "2026-01-10T10:00:04.500Z"}]}

``validUntil`` is wall-clock time on the node (RFC 3339, UTC, milliseconds truncated). The client
turns it into a deadline on the monotonic clock the moment the document arrives (the remaining
time, ``validUntil`` minus the wall clock now, added to ``time.monotonic()`` now), so a later step
of the wall clock (NTP, a hand-set clock) neither shortens nor stretches a listener's run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8686"


@dataclass(frozen=True, order=True)
class ListenerId:
    """One listener: its ListenerSet and its id within the set (printed ``<set>/<id>``)."""

    listener_set: str
    id: str

    def __str__(self) -> str:
        return f"{self.listener_set}/{self.id}"


@dataclass(frozen=True)
class Entry:
    """One listener the sidecar lists."""

    listener: ListenerId
    config: str | None
    fencing_token: int
    #: As the sidecar wrote it (UTC); None from a sidecar that writes none.
    valid_until: datetime.datetime | None
    #: ``valid_until`` on the ``time.monotonic()`` clock; ``math.inf`` when there is none.
    deadline: float


@dataclass(frozen=True)
class Document:
    """One version of what the sidecar lists."""

    version: int
    pod: str
    namespace: str
    listeners: tuple[Entry, ...]


_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp (``Z`` or an offset, any number of fraction digits) as aware UTC."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # datetime.fromisoformat before 3.11 takes exactly 3 or 6 fraction digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    t = datetime.datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError(f"validUntil {text!r} has no time zone")
    return t.astimezone(datetime.timezone.utc)


def to_deadline(valid_until: datetime.datetime, *, mono_now: float, wall_now: float) -> float:
    """``valid_until`` (wall clock) as an instant of the monotonic clock read as ``mono_now``."""
    return mono_now + (valid_until.timestamp() - wall_now)


def _field(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    # bool is an int in Python; the sidecar never sends one where a number belongs.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {key!r} is not a {kind.__name__}: {value!r}")
    return value


def parse_document(body: bytes, *, mono_now: float, wall_now: float) -> Document:
    """The sidecar's document; ValueError when it is not one."""
    raw = json.loads(body)
    if not isinstance(raw, dict):
        raise ValueError("the document is not a JSON object")
    entries = []
    for item in _field(raw, "listeners", list):
        if not isinstance(item, dict):
            raise ValueError(f"a listener entry is not a JSON object: {item!r}")
        config = item.get("config")
        if config is not None and not isinstance(config, str):
            raise ValueError(f"config is not a string: {config!r}")
        until_text = item.get("validUntil")
        until = parse_time(until_text) if isinstance(until_text, str) else None
        deadline = math.inf if until is None else to_deadline(until, mono_now=mono_now, wall_now=wall_now)
        entries.append(
            Entry(
                listener=ListenerId(_field(item, "listenerSet", str), _field(item, "id", str)),
                config=config,
                fencing_token=_field(item, "fencingToken", int),
                valid_until=until,
                deadline=deadline,
            )
        )
    return Document(
        version=_field(raw, "version", int),
        pod=str(raw.get("pod", "")),
        namespace=str(raw.get("namespace", "")),
        listeners=tuple(entries),
    )


class HttpError(Exception):
    """The sidecar answered, but not with what was asked."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body.decode('utf-8', 'replace').strip()}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @staticmethod
    def parse(url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the sidecar's URL must be http://host:port, not {url!r}")
        return Endpoint(parts.hostname, parts.port or 80)


async def request(endpoint: Endpoint, method: str, target: str, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange on a connection of its own; (status, body)."""
    return await asyncio.wait_for(_exchange(endpoint, method, target), timeout)


async def _exchange(endpoint: Endpoint, method: str, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    try:
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {host}:{endpoint.port}\r\n"
            "Connection: close\r\nContent-Length: 0\r\n\r\n".encode("ascii")
        )
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/"):
            raise ConnectionError(f"not an HTTP answer: {status_line!r}")
        status = int(fields[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionError("the connection closed in the headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readline()
