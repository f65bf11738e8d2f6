"""`ThreadedListeners`: a thread and a threading.Event per listener, for apps without asyncio."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from baton_listeners import ListenerId, ThreadedListeners
from fake_sidecar import FakeSidecar, Listed
from helpers import Log, until_sync

A = "sxt/listener1"


class ThreadApp:
    def __init__(self) -> None:
        self.log = Log()
        self.release = threading.Event()
        self.release.set()
        self.stop_seen = threading.Event()

    def listen(self, listener: ListenerId, config: str | None, token: int, stop: threading.Event) -> None:
        self.log.add("start", listener, token)
        stop.wait()
        self.stop_seen.set()
        self.release.wait()  # what closing the connection takes
        self.log.add("stop", listener, token)


@contextlib.contextmanager
def release_at_exit(app: ThreadApp) -> Iterator[None]:
    """Let every listener thread return when the test ends, failed or not (closing waits for them)."""
    try:
        yield
    finally:
        app.release.set()


def test_each_listener_runs_in_a_thread_until_its_event_and_is_acknowledged_after(sidecar: FakeSidecar) -> None:
    app = ThreadApp()
    with ThreadedListeners(app.listen, sidecar.url, handle_sigterm=False) as tl, release_at_exit(app):
        sidecar.publish(Listed("sxt", "listener1", 3), Listed("sxt", "listener2", 4))
        until_sync("both running", lambda: len(app.log.running()) == 2)
        assert {str(r.listener): r.fencing_token for r in tl.running()} == {A: 3, "sxt/listener2": 4}
        app.release.clear()
        dropped = sidecar.publish(Listed("sxt", "listener2", 4))
        until_sync("listener1's event set", app.stop_seen.is_set)
        sidecar.wait_for("a poll past the new version", lambda: dropped in sidecar.polls)
        time.sleep(0.2)  # a thread that takes 200 ms to return
        assert sidecar.acks_of(dropped) == [], "acknowledged before listener1's thread returned"
        app.release.set()
        (ack, *_) = sidecar.wait_for("the acknowledgement", lambda: sidecar.acks_of(dropped))
        assert app.log.of("stop", A)[0].at <= ack.at
    assert app.log.running() == {}, "closing stops every thread"


def test_drain_ends_once_the_sidecar_lists_nothing(sidecar: FakeSidecar) -> None:
    app = ThreadApp()
    tl = ThreadedListeners(app.listen, sidecar.url, handle_sigterm=False)
    tl.start()
    sidecar.publish(Listed("sxt", "listener1", 3))
    until_sync("running", lambda: app.log.running() == {A: 3})
    tl.drain()
    assert not tl.wait(0.2), "drained while the sidecar still lists listener1"
    assert app.log.running() == {A: 3}
    empty = sidecar.publish()
    assert tl.wait(5), "still running after the sidecar listed nothing"
    assert app.log.running() == {}
    assert sidecar.acks_of(empty)
    assert tl.error is None
