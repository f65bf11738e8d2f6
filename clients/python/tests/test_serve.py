"""`serve` against a fake sidecar: each rule of the application's contract."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

from baton_listeners import Backoff, ListenerId, Listeners, serve
from fake_sidecar import FakeSidecar, Listed
from helpers import AsyncApp, until

A = "sxt/listener1"
B = "sxt/listener2"
C = "sxt/listener3"
#: The client's timer fires on time give or take the event loop's latency (a loaded machine).
LATE = 0.25


def scenario(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


class Served:
    """`serve` as a task of the test's event loop."""

    def __init__(self, sidecar: FakeSidecar, app: AsyncApp, **kw: object) -> None:
        self.ls = Listeners(sidecar.url, backoff=Backoff(base=0.02, cap=0.1))
        self.task = asyncio.get_running_loop().create_task(
            serve(app.start, url=sidecar.url, listeners=self.ls, handle_sigterm=False, **kw)  # type: ignore[arg-type]
        )

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.wait([self.task])


def test_runs_what_is_listed_with_its_token_and_restarts_on_a_new_token(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        s = Served(sidecar, app)
        sidecar.publish(Listed("sxt", "listener1", 3, config="secret-1"), Listed("sxt", "listener2", 8))
        await until("both running", lambda: app.log.running() == {A: 3, B: 8})
        # A handover and back gave listener1 a higher token: stop the old tenure, then start anew.
        v = sidecar.publish(Listed("sxt", "listener1", 4), Listed("sxt", "listener2", 8))
        await until("listener1 on token 4", lambda: app.log.running().get(A) == 4)
        stop, start = app.log.of("stop", A)[0], app.log.of("start", A)[1]
        assert stop.token == 3 and stop.at <= start.at
        assert len(app.log.of("start", B)) == 1, "listener2 kept running"
        await until("version acknowledged", lambda: sidecar.acks_of(v))
        assert {(r.listener, r.fencing_token, r.state) for r in s.ls.running()} == {
            (ListenerId("sxt", "listener1"), 4, "running"),
            (ListenerId("sxt", "listener2"), 8, "running"),
        }
        await s.close()
        assert app.log.running() == {}, "leaving serve stops what runs"

    scenario(body)


def test_a_stop_is_acknowledged_only_once_the_listener_has_stopped(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp(hold_stops=True)
        s = Served(sidecar, app)
        first = sidecar.publish(Listed("sxt", "listener1", 3), Listed("sxt", "listener2", 5))
        await until("running", lambda: len(app.log.running()) == 2)
        await until("the first version acknowledged", lambda: sidecar.acks_of(first))
        dropped = sidecar.publish(Listed("sxt", "listener2", 5))
        await until("listener1 stopping", lambda: A in app.stopping)
        # The client has the new version (it long-polls past it) while listener1 is still stopping.
        await until("a poll past the new version", lambda: dropped in sidecar.polls)
        held_from = time.monotonic()
        await asyncio.sleep(0.3)  # a stop that takes 300 ms
        assert sidecar.acks_of(dropped) == [], "acknowledged while listener1 was still stopping"
        assert [r.state for r in s.ls.running() if str(r.listener) == A] == ["stopping"]
        app.release.set()
        (ack, *_) = await until("the acknowledgement", lambda: sidecar.acks_of(dropped))
        (stopped,) = app.log.of("stop", A)
        assert held_from < stopped.at <= ack.at
        await s.close()

    scenario(body)


def test_each_version_is_acknowledged_once_its_own_stops_end_while_later_ones_still_run(
    sidecar: FakeSidecar,
) -> None:
    async def body() -> None:
        app = AsyncApp()
        released = {A: asyncio.Event(), B: asyncio.Event()}
        asked: list[str] = []

        async def stop(listener: ListenerId) -> None:
            asked.append(str(listener))
            await released[str(listener)].wait()

        s = Served(sidecar, app, stop=stop)
        all_three = sidecar.publish(Listed("sxt", "listener1", 3), Listed("sxt", "listener2", 4),
                                    Listed("sxt", "listener3", 5))
        await until("running", lambda: app.log.running() == {A: 3, B: 4, C: 5})
        await until("the first version acknowledged", lambda: sidecar.acks_of(all_three))
        # Stops come in a stream: each version drops one more while the earlier stop still runs.
        without_a = sidecar.publish(Listed("sxt", "listener2", 4), Listed("sxt", "listener3", 5))
        await until("listener1 stopping", lambda: A in asked)
        without_b = sidecar.publish(Listed("sxt", "listener3", 5))
        await until("listener2 stopping", lambda: B in asked)
        await until("a poll past the newest version", lambda: without_b in sidecar.polls)
        assert sidecar.acks_of(without_a) == [], "acknowledged while listener1 was still stopping"
        released[A].set()
        # listener1 has stopped: the version that dropped it is acknowledged, though listener2,
        # dropped by a later version, is still stopping.
        (ack, *_) = await until("the version without listener1 acknowledged", lambda: sidecar.acks_of(without_a))
        assert ack.version == without_a
        (a,) = app.log.of("stop", A)
        assert a.at <= ack.at
        assert app.log.of("stop", B) == []
        assert [r.state for r in s.ls.running() if str(r.listener) == B] == ["stopping"]
        assert sidecar.acks_of(without_b) == [], "acknowledged while listener2 was still stopping"
        released[B].set()
        (later, *_) = await until("the version without listener2 acknowledged", lambda: sidecar.acks_of(without_b))
        assert later.version == without_b
        (b,) = app.log.of("stop", B)
        assert b.at <= later.at
        assert app.log.running() == {C: 5}
        await s.close()

    scenario(body)


def test_a_listener_stops_at_valid_until_while_the_sidecar_is_silent(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        s = Served(sidecar, app)
        published = time.monotonic()
        sidecar.publish(Listed("sxt", "listener1", 3, valid_for=0.6), Listed("sxt", "listener2", 4, valid_for=30))
        await until("running", lambda: len(app.log.running()) == 2)
        version = sidecar.version
        (stop,) = await until("listener1 stopped", lambda: app.log.of("stop", A), timeout=3)
        # The sidecar answered nothing new: the client's own timer stopped it, on time.
        assert sidecar.version == version
        assert published + 0.6 - 0.002 <= stop.at <= published + 0.6 + LATE
        assert app.log.running() == {B: 4}
        # Listed again with a later validUntil (the agent renewed): it runs again, same token.
        sidecar.publish(Listed("sxt", "listener1", 3, valid_for=30), Listed("sxt", "listener2", 4, valid_for=30))
        await until("listener1 running again", lambda: app.log.running() == {A: 3, B: 4})
        await s.close()

    scenario(body)


def test_with_the_sidecar_gone_listeners_run_on_until_valid_until_then_stop(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        s = Served(sidecar, app)
        published = time.monotonic()
        sidecar.publish(Listed("sxt", "listener1", 3, valid_for=1.0), Listed("sxt", "listener2", 4, valid_for=1.5))
        await until("running", lambda: len(app.log.running()) == 2)
        sidecar.kill()
        await until("the client sees the sidecar gone", lambda: not s.ls.sidecar_reachable)
        # Connection refused is neither "stop nothing" nor "stop everything now".
        assert app.log.running() == {A: 3, B: 4}
        (a,) = await until("listener1 stopped", lambda: app.log.of("stop", A), timeout=3)
        assert published + 1.0 - 0.002 <= a.at <= published + 1.0 + LATE
        assert app.log.running() == {B: 4}
        (b,) = await until("listener2 stopped", lambda: app.log.of("stop", B), timeout=3)
        assert published + 1.5 - 0.002 <= b.at <= published + 1.5 + LATE
        assert not s.ls.sidecar_reachable
        await s.close()

    scenario(body)


def test_a_restarted_sidecar_is_followed_and_its_empty_document_acknowledged(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp(hold_stops=True)
        s = Served(sidecar, app)
        old = sidecar.publish(Listed("sxt", "listener1", 3, valid_for=20))
        await until("running", lambda: app.log.running() == {A: 3})
        await until("acknowledged", lambda: sidecar.acks_of(old))
        sidecar.kill()
        await until("the client sees the sidecar gone", lambda: not s.ls.sidecar_reachable)
        # The container restarts: same port, an empty document, versions from the wall clock.
        new = FakeSidecar(port=sidecar.port)
        try:
            assert new.version > old
            await until("listener1 stopping", lambda: A in app.stopping)
            await until("a poll of the new sidecar", lambda: new.polls)
            assert new.acks_of(new.first_version) == [], "acknowledged before listener1 stopped"
            app.release.set()
            (ack, *_) = await until("the new sidecar's empty document acknowledged",
                                    lambda: new.acks_of(new.first_version))
            assert app.log.of("stop", A)[0].at <= ack.at
            # The new sidecar renewed the Lease: it lists listener1 again.
            new.publish(Listed("sxt", "listener1", 3, valid_for=20))
            await until("listener1 runs again", lambda: app.log.running() == {A: 3})
            await s.close()
        finally:
            new.kill()

    scenario(body)


def test_a_stop_callback_that_raises_is_retried_and_nothing_acknowledged_meanwhile(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        calls: list[float] = []

        def stop(listener: ListenerId) -> None:
            calls.append(time.monotonic())
            if len(calls) < 3:
                raise RuntimeError("the connection would not close")

        s = Served(sidecar, app, stop=stop)
        sidecar.publish(Listed("sxt", "listener1", 3))
        await until("running", lambda: app.log.running() == {A: 3})
        dropped = sidecar.publish()
        await until("the task stopped", lambda: app.log.running() == {})
        (ack, *_) = await until("the acknowledgement", lambda: sidecar.acks_of(dropped))
        assert len(calls) == 3, calls
        assert calls[2] <= ack.at, "acknowledged before the stop callback returned"
        await s.close()

    scenario(body)


def test_a_listener_that_ends_on_its_own_is_started_again(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        starts: list[int] = []

        async def flaky(listener: ListenerId, config: str | None, token: int) -> None:
            starts.append(token)
            if len(starts) < 3:
                raise ConnectionError("the upstream hung up")
            await asyncio.Future()

        ls = Listeners(sidecar.url)
        task = asyncio.get_running_loop().create_task(
            serve(flaky, listeners=ls, handle_sigterm=False, backoff=Backoff(base=0.01, cap=0.05)))
        sidecar.publish(Listed("sxt", "listener1", 6))
        await until("three starts", lambda: len(starts) == 3)
        assert starts == [6, 6, 6]
        assert [r.state for r in ls.running()] == ["running"]
        task.cancel()
        await asyncio.wait([task])

    scenario(body)


def test_sigterm_follows_the_sidecar_until_it_lists_nothing_then_returns(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        ls = Listeners(sidecar.url)
        task = asyncio.get_running_loop().create_task(serve(app.start, listeners=ls, handle_sigterm=True))
        sidecar.publish(Listed("sxt", "listener1", 3), Listed("sxt", "listener2", 4))
        await until("running", lambda: len(app.log.running()) == 2)
        os.kill(os.getpid(), signal.SIGTERM)
        # Still listed: keep running (the sidecar stops them one version at a time).
        one = sidecar.publish(Listed("sxt", "listener2", 4))
        await until("listener1 stopped", lambda: app.log.running() == {B: 4})
        await until("its version acknowledged", lambda: sidecar.acks_of(one))
        await until("a poll past it", lambda: one in sidecar.polls)
        assert not task.done(), "serve returned while the sidecar still lists listener2"
        empty = sidecar.publish()
        await until("serve returned", task.done)
        assert task.exception() is None
        assert app.log.running() == {}
        assert sidecar.acks_of(empty), "serve returned before acknowledging the empty document"

    scenario(body)


def test_sigterm_with_the_sidecar_gone_returns_once_every_valid_until_has_passed(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        ls = Listeners(sidecar.url, backoff=Backoff(base=0.02, cap=0.1))
        task = asyncio.get_running_loop().create_task(serve(app.start, listeners=ls, handle_sigterm=False))
        published = time.monotonic()
        sidecar.publish(Listed("sxt", "listener1", 3, valid_for=1.0))
        await until("running", lambda: app.log.running() == {A: 3})
        sidecar.kill()
        ls.drain()
        await until("the client sees the sidecar gone", lambda: not ls.sidecar_reachable)
        assert not task.done() and app.log.running() == {A: 3}, "drained before validUntil"
        await until("serve returned", task.done, timeout=3)
        (stop,) = app.log.of("stop", A)
        assert published + 1.0 - 0.002 <= stop.at <= published + 1.0 + LATE

    scenario(body)


def test_leaving_serve_ends_every_task_even_with_a_stop_that_keeps_failing(sidecar: FakeSidecar) -> None:
    async def body() -> None:
        app = AsyncApp()
        calls: list[str] = []

        def stop(listener: ListenerId) -> None:
            calls.append(str(listener))
            raise RuntimeError("never closes")

        s = Served(sidecar, app, stop=stop)
        sidecar.publish(Listed("sxt", "listener1", 3), Listed("sxt", "listener2", 4))
        await until("running", lambda: len(app.log.running()) == 2)
        dropped = sidecar.publish(Listed("sxt", "listener2", 4))
        await until("the stop retried", lambda: calls.count(A) >= 2)
        assert sidecar.acks_of(dropped) == []
        await asyncio.wait_for(s.close(), 5)
        assert app.log.running() == {}

    scenario(body)
