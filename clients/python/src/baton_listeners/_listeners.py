"""`Listeners`: the application's contract as a stream of starts and stops.

It long-polls the sidecar, keeps the last document it got, and turns the difference between that
document (and the clock) and what the application runs into `Start` and `Stop` changes:

1. a listed listener whose ``validUntil`` is ahead is started, with its fencing token;
2. a running listener no longer listed, or listed with another token, is stopped; a version is
   acknowledged (``POST /ack?version=``) once every stop that version or an earlier one asked
   for is `Stop.done`, without waiting for stops a later version asked for (an acknowledgement
   covers every earlier version);
3. a running listener is stopped when its ``validUntil`` passes, on a timer of the monotonic
   clock, whatever the sidecar says or does not say;
4. while the sidecar cannot be reached nothing else changes: the last document stays in force,
   so each listener runs on until its ``validUntil`` and is stopped then; the client keeps
   retrying (jittered exponential backoff) and follows the sidecar when it is back (a restarted
   sidecar lists nothing at first: everything still running is stopped and that acknowledged);
5. after `Listeners.drain` (SIGTERM) it keeps following the sidecar, which then lists nothing,
   and the iteration ends once everything is stopped and acknowledged (or, the sidecar gone,
   once every ``validUntil`` has passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from ._wire import DEFAULT_URL, Document, Endpoint, Entry, HttpError, ListenerId, parse_document, request

log = logging.getLogger("baton_listeners")

#: Why a listener is stopped: no longer listed, listed with another fencing token, its
#: ``validUntil`` passed, or the client is closing.
StopReason = Literal["unlisted", "token", "expired", "closed"]

#: The sidecar answers a long poll after 30 s at the latest; give up on one after this long.
POLL_TIMEOUT = 40.0
ACK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff: attempt ``n`` (from 1) waits a random time in
    ``[c/2, c]`` with ``c = min(cap, base * 2**(n-1))`` ("equal jitter": never a burst of
    immediate retries, never two clients in lockstep)."""

    base: float = 0.05
    cap: float = 1.0

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(max(attempt, 1) - 1, 60))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        c = self.ceiling(attempt)
        return c / 2 + rand() * c / 2


@dataclass(frozen=True)
class Start:
    """Start ``listener`` with ``fencing_token`` (pass the token to whatever it writes to)."""

    listener: ListenerId
    config: str | None
    fencing_token: int


class Stop:
    """Stop ``listener``; call `done` once it has stopped (only then is the version that asked
    for it acknowledged)."""

    def __init__(
        self,
        owner: Listeners,
        listener: ListenerId,
        fencing_token: int,
        reason: StopReason,
        started_at: float,
        before: int = 0,
    ) -> None:
        self.listener = listener
        self.fencing_token = fencing_token
        self.reason: StopReason = reason
        self._owner = owner
        self._started_at = started_at
        #: The version of the newest document that still listed this tenure (with its token) when
        #: the client decided to stop it: the newest version this stop does not belong to. Up to
        #: it a version can be acknowledged while the stop is under way; a later one only once
        #: it is done.
        self._before = before

    def done(self) -> None:
        """The listener has stopped. Safe to call from any thread, and more than once."""
        self._owner._stopped(self)

    def __repr__(self) -> str:
        return f"Stop({self.listener}, token={self.fencing_token}, reason={self.reason})"


Change = Start | Stop


@dataclass(frozen=True)
class RunningListener:
    """One listener the application runs (or is stopping), for /healthz and metrics."""

    listener: ListenerId
    fencing_token: int
    state: Literal["running", "stopping"]
    #: Seconds until its validUntil (negative once past, 0 while stopping; ``math.inf`` when the
    #: sidecar sent none).
    valid_for: float
    #: When it was started (``time.time()``).
    started_at: float


@dataclass
class _Run:
    token: int
    started_at: float
    #: The version of the newest document that listed this tenure (with its token), 0 before
    #: any; kept up to date while it runs.
    listed_in: int


class Listeners:
    """The listeners this pod must run, as an async iterator of `Start` and `Stop`::

        async with Listeners() as ls:
            async for change in ls:
                if isinstance(change, Start): ...   # start it, with change.fencing_token
                else: ...; change.done()            # stop it, then say so

    The loop body must not block: hand slow work to a task (`serve` does all of this).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        backoff: Backoff = Backoff(),
        poll_timeout: float = POLL_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = Endpoint.parse(url)
        self.url = url
        self._backoff = backoff
        self._poll_timeout = poll_timeout
        self._clock = clock
        self._wall = wall_clock
        self._doc: Document | None = None
        self._listed: dict[ListenerId, Entry] = {}
        self._running: dict[ListenerId, _Run] = {}
        self._stopping: dict[ListenerId, Stop] = {}
        self._lock = threading.Lock()  # running() may be read from any thread
        self._acked: int | None = None
        self._refused: int | None = None
        self._reachable = False
        self._draining = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ack_wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- lifecycle

    async def __aenter__(self) -> Listeners:
        self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start following the sidecar (in the running event loop)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ack_wake = asyncio.Event()
        self._tasks = [
            self._loop.create_task(self._poll(), name="baton_listeners poll"),
            self._loop.create_task(self._acknowledge(), name="baton_listeners ack"),
        ]

    def end(self) -> None:
        """End the iteration (what runs is the caller's to stop). Safe from any thread."""
        self._closed = True
        self._notify()

    async def close(self) -> None:
        """Stop following the sidecar; the iteration ends. What runs is the caller's to stop."""
        self._closed = True
        if self._ack_wake is not None:
            self._ack_wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._notify()

    def drain(self) -> None:
        """Rule 5 (call it on SIGTERM): keep following the sidecar, which lists nothing once it
        got its own SIGTERM, and end the iteration once everything is stopped and acknowledged —
        or, the sidecar gone, once every ``validUntil`` has passed. Safe from any thread."""
        self._draining = True
        self._notify()

    # ---- what runs

    def running(self) -> list[RunningListener]:
        """A snapshot of what runs and what is stopping, by listener. Safe from any thread."""
        now = self._clock()
        out = []
        with self._lock:
            for key, run in self._running.items():
                entry = self._listed.get(key)
                left = entry.deadline - now if entry is not None else 0.0
                out.append(RunningListener(key, run.token, "running", left, run.started_at))
            for key, stop in self._stopping.items():
                out.append(RunningListener(key, stop.fencing_token, "stopping", 0.0, stop._started_at))
        return sorted(out, key=lambda r: r.listener)

    @property
    def version(self) -> int | None:
        """The version of the last document received."""
        return self._doc.version if self._doc else None

    @property
    def acked_version(self) -> int | None:
        return self._acked

    @property
    def sidecar_reachable(self) -> bool:
        """Whether the last exchange with the sidecar succeeded."""
        return self._reachable

    # ---- the iteration

    def __aiter__(self) -> Listeners:
        return self

    async def __anext__(self) -> Change:
        if self._loop is None:
            raise RuntimeError("Listeners is not started: use `async with Listeners() as ls`")
        assert self._wake is not None
        while True:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            now = self._clock()
            change = self._next_change(now)
            if change is not None:
                self._notify_ack()
                return change
            if self._finished(now):
                raise StopAsyncIteration
            # A timer sets the event at the next validUntil (asyncio.wait_for, on 3.10 and 3.11,
            # can swallow a cancellation that arrives as the event is set).
            timeout = self._next_deadline(now)  # conformance: valid-until-timer
            timer = None if timeout is None else self._loop.call_later(timeout, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _next_change(self, now: float) -> Change | None:
        with self._lock:
            for key, run in self._running.items():
                entry = self._listed.get(key)
                reason: StopReason | None = None
                if entry is None:
                    reason = "unlisted"
                elif entry.fencing_token != run.token:
                    reason = "token"
                elif entry.deadline <= now:
                    reason = "expired"
                if reason is not None:
                    del self._running[key]
                    # Dropped (or listed with another token): the newest version that listed it,
                    # from before the one that dropped it. Expired while listed: the current one.
                    stop = Stop(self, key, run.token, reason, run.started_at, before=run.listed_in)
                    self._stopping[key] = stop
                    return stop
            for key, entry in self._listed.items():
                if key in self._running or key in self._stopping or entry.deadline <= now:
                    continue
                listed_in = self._doc.version if self._doc is not None else 0
                self._running[key] = _Run(entry.fencing_token, self._wall(), listed_in)
                return Start(key, entry.config, entry.fencing_token)
        return None

    def _next_deadline(self, now: float) -> float | None:
        deadlines = [e.deadline for k, e in self._listed.items() if k in self._running]
        soonest = min(deadlines, default=math.inf)
        return None if math.isinf(soonest) else max(0.0, soonest - now)

    def _finished(self, now: float) -> bool:
        if not self._draining or self._running or self._stopping:
            return False
        if any(e.deadline > now for e in self._listed.values()):
            return False  # the sidecar still lists something: keep following it
        doc = self._doc
        if doc is None or doc.listeners:
            return True  # never reached the sidecar, or what it listed has expired
        return doc.version in (self._acked, self._refused) or not self._reachable

    # ---- stops and acknowledgements

    def _stopped(self, stop: Stop) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running_here = asyncio.get_running_loop() is loop
        except RuntimeError:
            running_here = False
        if running_here:
            self._forget(stop)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._forget, stop)

    def _forget(self, stop: Stop) -> None:
        with self._lock:
            if self._stopping.get(stop.listener) is stop:
                del self._stopping[stop.listener]
        self._notify()  # wakes the acknowledger too: a later version may be acknowledgeable now

    def _notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            self._set_events()
        else:
            loop.call_soon_threadsafe(self._set_events)

    def _set_events(self) -> None:
        if self._wake is not None:
            self._wake.set()
        self._notify_ack()

    def _notify_ack(self) -> None:
        if self._ack_wake is not None:
            self._ack_wake.set()

    def _ackable(self) -> int | None:
        """The version to acknowledge: the newest one whose dropped listeners have all stopped.

        An acknowledgement of a version says that everything it and every earlier version dropped
        has stopped, so that is the last one received when nothing is stopping, else the oldest
        ``before`` of what is stopping: each version is acknowledged once every stop it or an
        earlier one asked for is done, without waiting for stops a later version asked for. None
        when there is nothing new to acknowledge, or while something running is not yet listed
        with its token."""
        doc = self._doc
        if doc is None:
            return None
        for key, run in self._running.items():
            entry = self._listed.get(key)
            if entry is None or entry.fencing_token != run.token:
                return None
        candidate = self._oldest_stop_before(doc.version)  # conformance: ack-after-stop
        if candidate <= 0 or candidate <= (self._acked or 0) or candidate == self._refused:
            return None
        return candidate

    def _oldest_stop_before(self, newest: int) -> int:
        """The oldest ``before`` of what is stopping; ``newest`` when nothing is."""
        return min((stop._before for stop in self._stopping.values()), default=newest)

    async def _acknowledge(self) -> None:
        assert self._ack_wake is not None
        failures = 0
        while not self._closed:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            while (version := self._ackable()) is not None:
                try:
                    status, body = await request(self._endpoint, "POST", f"/ack?version={version}", ACK_TIMEOUT)
                except (OSError, asyncio.TimeoutError, ValueError) as e:
                    self._reachable = False
                    failures += 1
                    log.debug("acknowledging version %d failed: %s", version, e)
                    await asyncio.sleep(self._backoff.delay(failures))
                    continue
                failures = 0
                if 200 <= status < 300:
                    self._acked = version
                elif status == 409:
                    # Not a version of this sidecar (it restarted): its own document comes next.
                    log.info("the sidecar refused the acknowledgement of version %d: %s", version, body)
                    self._refused = version
                else:
                    log.warning("acknowledging version %d: %s", version, HttpError(status, body))
                    failures += 1
                    await asyncio.sleep(self._backoff.delay(failures))
                    continue
                assert self._wake is not None
                self._wake.set()

    # ---- following the sidecar

    async def _poll(self) -> None:
        version = 0
        failures = 0
        while not self._closed:
            try:
                status, body = await request(
                    self._endpoint, "GET", f"/listeners?wait={version}", self._poll_timeout
                )
                if status != 200:
                    raise HttpError(status, body)
                doc = parse_document(body, mono_now=self._clock(), wall_now=self._wall())
            except (OSError, asyncio.TimeoutError, ValueError, HttpError) as e:
                # Rule 4: the last document stays in force, each listener until its validUntil.
                if self._reachable or failures == 0:
                    log.warning("the sidecar at %s cannot be reached (%s); running on until validUntil", self.url, e)
                self._reachable = False
                failures += 1
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            if not self._reachable and failures:
                log.info("the sidecar at %s answers again (version %d)", self.url, doc.version)
            failures = 0
            self._reachable = True
            version = doc.version
            self._receive(doc)

    def _receive(self, doc: Document) -> None:
        with self._lock:
            if self._doc is not None and doc.version < self._doc.version:
                # A sidecar restarted with its clock behind the last one: what was acknowledged
                # to that one says nothing to this one.
                self._acked = None
            self._doc = doc
            self._listed = {e.listener: e for e in doc.listeners}
            for key, run in self._running.items():
                entry = self._listed.get(key)
                if entry is not None and entry.fencing_token == run.token:
                    run.listed_in = doc.version
        self._set_events()
