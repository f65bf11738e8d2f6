"""`serve` and `run`: the contract with callbacks — each listener is an asyncio task."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Union

from ._listeners import Backoff, Listeners, Start, Stop, log
from ._wire import DEFAULT_URL, ListenerId

#: ``start(listener, config, fencing_token)``: returns what runs the listener — a coroutine (run
#: as a task), an asyncio task or future (awaited), or None (the listener runs elsewhere, and the
#: ``stop`` callback stops it).
StartFn = Callable[[ListenerId, Union[str, None], int], Union[Awaitable[Any], None]]
#: ``stop(listener)``, plain or async: returns once the listener has stopped.
StopFn = Callable[[ListenerId], Union[Awaitable[Any], None]]


@dataclass
class _Run:
    start: Start
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    restarts: int = field(default=0)


async def _keep_running(run: _Run, start: StartFn, backoff: Backoff) -> None:
    """Run the listener; should it end on its own while still listed, start it again (with
    backoff). Cancelled by its stop."""
    s = run.start
    while True:
        try:
            result = start(s.listener, s.config, s.fencing_token)
            if result is None:
                await asyncio.Future()  # runs elsewhere until the stop callback stops it
            else:
                await result
            log.warning("listener %s ended on its own; starting it again", s.listener)
        except asyncio.CancelledError:
            raise
        except Exception:
            if run.stopping:
                raise  # raised while stopping: the stop reports it, and the listener has ended
            log.exception("listener %s failed; starting it again", s.listener)
        if run.stopping:
            return
        run.restarts += 1
        await asyncio.sleep(backoff.delay(run.restarts))


async def _call_stop(stop_fn: StopFn, listener: ListenerId) -> None:
    result = stop_fn(listener)
    if inspect.isawaitable(result):
        await result


async def _stop(change: Stop, run: _Run | None, stop_fn: StopFn | None, backoff: Backoff) -> None:
    """Stop one listener: the stop callback, then cancel its task and wait until it has ended;
    only then is the stop done (and acknowledged). A stop callback that raises has not proven the
    listener stopped: it is called again (with backoff) until it returns, and until then neither
    the version that asked for the stop nor a later one is acknowledged."""
    failed = False
    if stop_fn is not None:
        try:
            await _call_stop(stop_fn, change.listener)
        except Exception:
            log.exception("stopping listener %s failed; not acknowledged, trying again", change.listener)
            failed = True
    if run is not None and run.task is not None:
        run.stopping = True
        run.task.cancel()
        await asyncio.wait([run.task])
        if not run.task.cancelled() and run.task.exception() is not None:
            log.warning("listener %s raised while stopping: %r", change.listener, run.task.exception())
    attempt = 0
    while failed and stop_fn is not None:
        attempt += 1
        await asyncio.sleep(backoff.delay(attempt))
        try:
            await _call_stop(stop_fn, change.listener)
            failed = False
        except Exception:
            log.exception("stopping listener %s failed again (attempt %d)", change.listener, attempt + 1)
    change.done()


async def serve(
    start: StartFn,
    stop: StopFn | None = None,
    *,
    url: str = DEFAULT_URL,
    handle_sigterm: bool = True,
    listeners: Listeners | None = None,
    backoff: Backoff = Backoff(),
) -> None:
    """Run the listeners the sidecar at ``url`` lists until it is drained (SIGTERM when
    ``handle_sigterm``, or ``listeners.drain()``), keeping the application's contract.

    ``start(listener, config, fencing_token)`` starts one (see `StartFn`); ``stop(listener)``,
    if given, is called to stop it before its task is cancelled. A stop is acknowledged only once
    both have finished. Leaving early (an exception, a cancellation) stops every listener's task.
    ``listeners``: a `Listeners` of your own (for its ``running()`` and ``drain()``; its URL is
    used, not ``url``).
    """
    ls = listeners if listeners is not None else Listeners(url, backoff=backoff)
    runs: dict[ListenerId, _Run] = {}
    stoppers: set[asyncio.Task[None]] = set()
    ending: set[asyncio.Task[None]] = set()  # the tasks of listeners being stopped
    loop = asyncio.get_running_loop()
    sigterm = False
    if handle_sigterm:
        try:
            loop.add_signal_handler(signal.SIGTERM, ls.drain)
            sigterm = True
        except (NotImplementedError, RuntimeError, ValueError):
            log.warning("cannot handle SIGTERM here: call drain() from your own handler")
    try:
        async with ls:
            async for change in ls:
                if isinstance(change, Start):
                    run = _Run(change)
                    run.task = loop.create_task(_keep_running(run, start, backoff), name=f"listener {change.listener}")
                    runs[change.listener] = run
                else:
                    leaving = runs.pop(change.listener, None)
                    if leaving is not None and leaving.task is not None:
                        ending.add(leaving.task)
                        leaving.task.add_done_callback(ending.discard)
                    task = loop.create_task(_stop(change, leaving, stop, backoff))
                    stoppers.add(task)
                    task.add_done_callback(stoppers.discard)
    finally:
        if sigterm:
            loop.remove_signal_handler(signal.SIGTERM)
        # Leaving early: every listener's task is cancelled and awaited; stops under way are
        # abandoned (nothing more is acknowledged), not retried.
        for run in runs.values():
            run.stopping = True
        pending = [r.task for r in runs.values() if r.task is not None] + list(ending) + list(stoppers)
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(pending)


def run(
    start: StartFn,
    stop: StopFn | None = None,
    *,
    url: str = DEFAULT_URL,
    handle_sigterm: bool = True,
    backoff: Backoff = Backoff(),
) -> None:
    """`serve` in a new event loop (``asyncio.run``), for a program whose main is the listeners."""
    asyncio.run(serve(start, stop, url=url, handle_sigterm=handle_sigterm, backoff=backoff))
