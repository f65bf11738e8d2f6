"""What the tests share: waiting on a condition with a deadline, and an app that logs its runs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from baton_listeners import ListenerId

T = TypeVar("T")

#: How often a waiting test looks at its condition again.
LOOK = 0.005


async def until(what: str, check: Callable[[], T], timeout: float = 5.0) -> T:
    """Wait until ``check()`` is truthy (looking every few ms), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(LOOK)
    return value


def until_sync(what: str, check: Callable[[], T], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(LOOK)
    return value


@dataclass(frozen=True)
class Event:
    kind: str  # "start" or "stop"
    listener: str
    token: int
    at: float  # time.monotonic()


class Log:
    """Starts and stops, in order, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def add(self, kind: str, listener: ListenerId, token: int) -> None:
        with self._lock:
            self.events.append(Event(kind, str(listener), token, time.monotonic()))

    def of(self, kind: str, listener: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.kind == kind and e.listener == listener]

    def running(self) -> dict[str, int]:
        """Listener → token of what runs now (a start not yet followed by its stop)."""
        out: dict[str, int] = {}
        with self._lock:
            for e in self.events:
                if e.kind == "start":
                    assert e.listener not in out, f"{e.listener} started twice: {self.events}"
                    out[e.listener] = e.token
                else:
                    out.pop(e.listener, None)
        return out


class AsyncApp:
    """``start`` for `serve`: each listener a coroutine that runs until cancelled; its stop is
    logged when its cancellation has finished (after ``release`` is set, when ``hold_stops``)."""

    def __init__(self, hold_stops: bool = False) -> None:
        self.log = Log()
        self.release = asyncio.Event()
        if not hold_stops:
            self.release.set()
        self.stopping: list[str] = []

    def start(self, listener: ListenerId, config: str | None, token: int) -> Coroutine[Any, Any, None]:
        return self._run(listener, token)

    async def _run(self, listener: ListenerId, token: int) -> None:
        self.log.add("start", listener, token)
        try:
            await asyncio.Future()
        finally:
            self.stopping.append(str(listener))
            await self.release.wait()
            self.log.add("stop", listener, token)
