"""`ThreadedListeners`: the contract for applications without asyncio — one thread per listener."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from ._listeners import Backoff, Listeners, RunningListener, log
from ._serve import serve
from ._wire import DEFAULT_URL, ListenerId

#: ``target(listener, config, fencing_token, stop)``: runs the listener until ``stop`` (a
#: ``threading.Event``) is set, then returns. Its return is what "stopped" means.
ThreadTarget = Callable[[ListenerId, str | None, int, threading.Event], None]


class ThreadedListeners:
    """Runs each listener the sidecar lists as ``target(listener, config, token, stop_event)`` in
    a thread of its own, and the client in a background thread::

        def listen(listener, config, token, stop):
            conn = connect(config, token)
            while not stop.is_set():
                conn.poll(timeout=0.1)
            conn.close()

        with ThreadedListeners(listen) as ls:   # SIGTERM drains it (from the main thread)
            ls.wait()                           # until drained

    A stop sets the listener's event and waits for ``target`` to return before acknowledging,
    so ``target`` must notice the event within your stop time.
    """

    def __init__(
        self,
        target: ThreadTarget,
        url: str = DEFAULT_URL,
        *,
        handle_sigterm: bool = True,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._target = target
        self._handle_sigterm = handle_sigterm
        self._backoff = backoff
        self.listeners = Listeners(url, backoff=backoff)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="baton_listeners", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> ThreadedListeners:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Start following the sidecar; with ``handle_sigterm``, called from the main thread,
        SIGTERM calls `drain`."""
        if self._handle_sigterm and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.drain())
        self._thread.start()
        self._ready.wait()

    def drain(self) -> None:
        """Rule 5: follow the sidecar until it lists nothing, everything is stopped and
        acknowledged; then `wait` returns. Safe from signal handlers and any thread."""
        self.listeners.drain()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the client has ended (drained or closed); False on timeout."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        """Stop every listener (set its event, wait for it) and stop following the sidecar,
        acknowledging nothing more."""
        self.listeners.end()
        self._thread.join(timeout)

    def running(self) -> list[RunningListener]:
        """What runs now (see `Listeners.running`)."""
        return self.listeners.running()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except asyncio.CancelledError:
            pass
        except BaseException as e:  # reported to whoever waits on us
            log.exception("the listener client failed")
            self.error = e
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._ready.set()
        await serve(self._start, url=self.listeners.url, handle_sigterm=False, listeners=self.listeners,
                    backoff=self._backoff)

    async def _start(self, listener: ListenerId, config: str | None, token: int) -> None:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        ended: asyncio.Future[None] = loop.create_future()

        def finish() -> None:
            if not ended.done():
                ended.set_result(None)

        def body() -> None:
            try:
                self._target(listener, config, token, stop)
            except BaseException:
                log.exception("listener %s raised", listener)
            finally:
                try:
                    loop.call_soon_threadsafe(finish)
                except RuntimeError:
                    pass  # the loop is gone: nobody waits any more

        threading.Thread(target=body, name=f"listener {listener}", daemon=True).start()
        try:
            await asyncio.shield(ended)
        except asyncio.CancelledError:
            # Stopped: the thread's return is the proof that the listener stopped.
            stop.set()
            while not ended.done():
                try:
                    await asyncio.shield(ended)
                except asyncio.CancelledError:
                    continue
            raise
