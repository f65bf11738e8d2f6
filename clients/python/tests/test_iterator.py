"""`Listeners` as an async iterator: the application says when a stop is done."""

from __future__ import annotations

import asyncio

from baton_listeners import Listeners, Start, Stop
from fake_sidecar import FakeSidecar, Listed
from helpers import until


def test_changes_come_in_order_and_a_stop_is_acknowledged_when_done(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        async with Listeners(sidecar.url) as ls:
            changes = aiter(ls)
            sidecar.publish(Listed("sxt", "listener1", 3, config="c1"))
            start = await anext(changes)
            assert isinstance(start, Start)
            assert (str(start.listener), start.config, start.fencing_token) == ("sxt/listener1", "c1", 3)
            second = sidecar.publish(Listed("sxt", "listener1", 4))
            stop = await anext(changes)
            assert isinstance(stop, Stop) and (stop.fencing_token, stop.reason) == (3, "token")
            await until("a poll past the new version", lambda: second in sidecar.polls)
            # The token-4 start waits for the token-3 stop; nothing is acknowledged before it.
            early = asyncio.ensure_future(anext(changes))
            done, _ = await asyncio.wait([early], timeout=0.2)
            assert not done and sidecar.acks_of(second) == []
            stop.done()
            restarted = await early
            assert isinstance(restarted, Start) and restarted.fencing_token == 4
            await until("acknowledged", lambda: sidecar.acks_of(second))
            expiring = sidecar.publish(Listed("sxt", "listener1", 4, valid_for=0.3))
            expired = await asyncio.wait_for(anext(changes), 2)
            assert isinstance(expired, Stop) and expired.reason == "expired"
            expired.done()
            await until("acknowledged", lambda: sidecar.acks_of(expiring))

    asyncio.run(asyncio.wait_for(body(), 20))
