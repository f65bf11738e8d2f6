"""The sample user-service on the Python client (the app config/samples runs, from a ConfigMap):
a loop of threads, long polls and clocks a team would otherwise write, left to the client.

"Running a listener" is a log line (``start <set>/<id> token=<n>``, ``stop <set>/<id>``), written
when it starts and when its task has ended (before the stop is acknowledged); a real service opens
its connection there. Serves GET /healthz on $PORT (0: any free port, printed) with what runs.
$BATON_AGENT_URL is the sidecar (default http://127.0.0.1:8686); $STOP_SECONDS (default 0) is how
long closing a listener's connection takes; with $STOP_FAILS=1 the close then raises (the
connection is gone all the same), as the conformance suite asks. On SIGTERM it follows the sidecar
until everything is stopped and acknowledged, then exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

try:
    import baton_listeners
except ImportError:  # run from a checkout: the package is beside this directory
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import baton_listeners

from baton_listeners import ListenerId, Listeners

_out = threading.Lock()
STOP_SECONDS = float(os.environ.get("STOP_SECONDS", "0"))
STOP_FAILS = os.environ.get("STOP_FAILS") == "1"


def log(message: str) -> None:
    # One write per line: lines from two threads never interleave.
    with _out:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


async def listen(listener: ListenerId, config: str | None, token: int) -> None:
    log(f"start {listener} token={token}")
    try:
        await asyncio.Future()  # a real listener: connect with `config`, write with `token`
    finally:
        await asyncio.sleep(STOP_SECONDS)  # closing the connection
        log(f"stop {listener}")
        if STOP_FAILS:
            raise RuntimeError(f"closing {listener} failed")


async def serve_health(ls: Listeners, port: int) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            body = json.dumps(
                {
                    "sidecar": ls.sidecar_reachable,
                    "running": [{"listener": str(r.listener), "fencingToken": r.fencing_token, "state": r.state}
                                for r in ls.running()],
                }
            ).encode() + b"\n"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "0.0.0.0", port)
    log(f"serving /healthz on port {server.sockets[0].getsockname()[1]}")
    return server


async def main() -> None:
    url = os.environ.get("BATON_AGENT_URL", baton_listeners.DEFAULT_URL)
    ls = Listeners(url)
    health = await serve_health(ls, int(os.environ.get("PORT", "8080")))
    await baton_listeners.serve(listen, listeners=ls)
    health.close()
    log("every listener stopped; exiting")


if __name__ == "__main__":
    asyncio.run(main())
