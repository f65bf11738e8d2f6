"""A seed-style service on baton: one WebSocket session per account, open on exactly one pod.

Each account is a listener of a ListenerSet whose listeners come from a Secret (key: the account,
value: its token, the listener's config). The `baton agent` sidecar says which accounts this pod
holds; the Python client (`baton_listeners`) opens a session for each and closes it before the
account may go to another pod. No Redis lock, registry or owner hash: see README.md.

$SEED_UPSTREAM is the WebSocket server (``ws://host:port``); unset, the service starts the
example's echo server (echo_server.py) in-process and talks to it. $BATON_AGENT_URL is the
sidecar (default http://127.0.0.1:8686). Logs ``start <set>/<id> token=<n>`` once an account's
session is open and ``stop <set>/<id>`` once it is closed.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys

try:
    import baton_listeners
except ImportError:  # run from a checkout: the client is in clients/python/src
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "clients", "python", "src"))
    import baton_listeners

import miniws
from baton_listeners import ListenerId
from echo_server import EchoServer

HEARTBEAT_SECONDS = 1.0


def log(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def session(upstream: str, account: ListenerId, token: str | None, fencing: int) -> None:
    """The account's session, for as long as this pod holds the account: the client cancels
    this task to stop it and acknowledges once it has returned, i.e. once the session is closed."""
    auth = {"Authorization": f"Bearer {token}"}
    ws = await miniws.connect(f"{upstream}/stream?fencing={fencing}", headers=auth)
    log(f"start {account} token={fencing}")
    try:
        while True:
            await ws.send(f"heartbeat {account.id}")
            await ws.recv()  # the echo; a real upstream sends the account's events
            await asyncio.sleep(HEARTBEAT_SECONDS)
    finally:
        await ws.close()
        log(f"stop {account}")


async def main() -> None:
    upstream, echo = os.environ.get("SEED_UPSTREAM"), None
    if upstream is None:
        echo = await EchoServer.start()
        upstream = echo.url
    sidecar = os.environ.get("BATON_AGENT_URL", baton_listeners.DEFAULT_URL)
    # Until SIGTERM has emptied the sidecar; a session that ends on its own (the upstream went
    # away) is started again, with backoff, while the account is still this pod's.
    await baton_listeners.serve(functools.partial(session, upstream), url=sidecar)
    if echo is not None:
        echo.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C in a terminal: the sessions were closed on the way out
        sys.exit(130)
