"""A minimal WebSocket (RFC 6455) over asyncio streams, standard library only: text frames,
ping/pong and the close handshake; no extensions, no fragmented messages, no TLS. Enough for this
example's client and echo server; a real service uses a WebSocket library.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
#: How long a closing side waits for the peer's Close before it drops the connection.
CLOSE_TIMEOUT = 5.0


class Closed(Exception):
    """The peer closed the connection (its Close code), or the connection is gone (1006)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"WebSocket closed ({code})")
        self.code = code


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def _mask(key: bytes, payload: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WebSocket:
    """One open connection; a client masks what it sends, a server does not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, client: bool) -> None:
        self._reader, self._writer, self._client = reader, writer, client
        self._sent_close = self._got_close = False

    async def send(self, text: str) -> None:
        await self._send_frame(TEXT, text.encode())

    async def recv(self) -> str:
        """The next text message. Raises `Closed` once the peer has sent Close (answer it with
        `close`) or the connection is gone."""
        while True:
            opcode, payload = await self._read_frame()
            if opcode == TEXT:
                return payload.decode()
            if opcode == PING:
                await self._send_frame(PONG, payload)
            elif opcode == CLOSE:
                self._got_close = True
                raise Closed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005)

    async def close(self, code: int = 1000) -> None:
        """The close handshake: send Close (unless sent); unless the peer's Close came first,
        wait (at most `CLOSE_TIMEOUT`) until the peer has closed the TCP connection; then close
        it. Safe to call twice."""
        try:
            if not self._sent_close:
                self._sent_close = True
                await self._send_frame(CLOSE, struct.pack("!H", code))
            if not self._got_close:
                await asyncio.wait_for(self._until_close(), CLOSE_TIMEOUT)
        except (Closed, ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass

    async def _until_close(self) -> None:
        # The peer answers Close with Close and then (a server) closes the TCP connection, or
        # (a client) closes it on our Close: wait for that end, whatever frames come before it
        # (a recv cancelled mid-frame leaves no frame boundary to parse from).
        while await self._reader.read(65536):
            pass

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        bit = 0x80 if self._client else 0
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, bit | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)
        if self._client:
            key = os.urandom(4)
            head, payload = head + key, _mask(key, payload)
        self._writer.write(head + payload)
        await self._writer.drain()

    async def _read_frame(self) -> tuple[int, bytes]:
        try:
            b0, b1 = await self._reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self._reader.readexactly(8))
            key = await self._reader.readexactly(4) if b1 & 0x80 else b""
            payload = await self._reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise Closed(1006) from e
        if not b0 & 0x80:
            raise Closed(1003)  # a fragmented message: not supported here
        return b0 & 0x0F, _mask(key, payload) if key else payload


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """An HTTP/1.1 head: its first line and its headers (names lower-cased)."""
    first = (await reader.readline()).decode("latin-1").strip()
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers


async def connect(url: str, headers: dict[str, str] | None = None) -> WebSocket:
    """Open a client connection to ``ws://host:port/path?query``; raises `ConnectionError` if
    the server refuses the upgrade (its status line in the message)."""
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
    key = base64.b64encode(os.urandom(16)).decode()
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
    )
    await writer.drain()
    status, got = await read_head(reader)
    if status.split()[1:2] != ["101"] or got.get("sec-websocket-accept") != accept_key(key):
        writer.close()
        raise ConnectionError(f"{url}: upgrade refused: {status or 'connection closed'}")
    return WebSocket(reader, writer, client=True)


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]) -> WebSocket:
    """Answer a client's upgrade request (its head already read) and open the connection."""
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept_key(headers.get('sec-websocket-key', ''))}\r\n\r\n".encode()
    )
    await writer.drain()
    return WebSocket(reader, writer, client=False)
