"""The example's upstream: a local WebSocket echo server standing in for the service the accounts'
sessions go to, and the judge of the run.

A session is ``GET /stream?fencing=<n>`` with ``Authorization: Bearer <account token>``; every
text message is echoed. Per account token it counts the sessions open now, the most ever open at
once (one pod per account means never more than 1) and the sessions opened in all, and keeps the
highest fencing token seen: a session with a lower one is refused (409), as a system that takes
fencing tokens refuses a holder that has been replaced. A session counts as closed as soon as the
client's Close arrives, before the Close is answered, so a client whose close has returned is no
longer counted. ``GET /stats`` answers all that as JSON.

``python3 echo_server.py [--port N]`` (0: any free port) prints ``echo server on ws://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict, dataclass
from urllib.parse import parse_qs, urlsplit

import miniws


@dataclass
class Account:
    open: int = 0
    max_open: int = 0
    sessions: int = 0
    refused: int = 0
    fencing: int = -1


class EchoServer:
    """Serving once `start` returns, at `url`."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.url = ""
        self._server: asyncio.Server | None = None

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0) -> EchoServer:
        me = cls()
        me._server = await asyncio.start_server(me._serve, host, port)
        bound_host, bound_port = me._server.sockets[0].getsockname()[:2]
        me.url = f"ws://{bound_host}:{bound_port}"
        return me

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first, headers = await miniws.read_head(reader)
            target = urlsplit(first.split()[1] if len(first.split()) > 1 else "/")
            if target.path == "/stats":
                self._answer(writer, "200 OK", {k: asdict(a) for k, a in self.accounts.items()})
            elif target.path == "/stream" and headers.get("upgrade", "").lower() == "websocket":
                token = headers.get("authorization", "").removeprefix("Bearer ")
                fencing = int(parse_qs(target.query).get("fencing", ["-1"])[0])
                await self._session(reader, writer, headers, token, fencing)
            else:
                self._answer(writer, "404 Not Found", {"error": "GET /stream (WebSocket) or /stats"})
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str], token: str, fencing: int
    ) -> None:
        a = self.accounts.setdefault(token, Account())
        if not token or fencing < a.fencing:
            a.refused += 1
            self._answer(writer, "409 Conflict", {"error": f"fencing token {fencing} < {a.fencing}"})
            return
        a.fencing = fencing
        ws = await miniws.accept(reader, writer, headers)
        a.open += 1
        a.sessions += 1
        a.max_open = max(a.max_open, a.open)
        try:
            while True:
                await ws.send(await ws.recv())
        except miniws.Closed:
            pass
        finally:
            a.open -= 1  # before the Close is answered: the client's close returns after this
            await ws.close()

    @staticmethod
    def _answer(writer: asyncio.StreamWriter, status: str, body: object) -> None:
        data = json.dumps(body).encode()
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + data)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = await EchoServer.start(args.host, args.port)
    print(f"echo server on {server.url}", flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
