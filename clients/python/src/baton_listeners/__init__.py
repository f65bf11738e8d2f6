"""Run the listeners a ``baton agent`` sidecar assigns to this pod, keeping the application's
contract (docs/listeners.md, "The application's contract"): run exactly what is listed, each
listener with its fencing token; stop, then acknowledge; stop at ``validUntil`` on a timer of
its own; run on only until ``validUntil`` while the sidecar is gone; follow the sidecar through
SIGTERM.

* `serve` / `run`: callbacks, each listener an asyncio task;
* `Listeners`: the same as an async iterator of `Start` and `Stop`;
* `ThreadedListeners`: one thread per listener, for applications without asyncio.
"""

from ._listeners import Backoff, Change, Listeners, RunningListener, Start, Stop, StopReason
from ._serve import StartFn, StopFn, run, serve
from ._threaded import ThreadedListeners, ThreadTarget
from ._wire import DEFAULT_URL, Document, Entry, HttpError, ListenerId, parse_document, parse_time

__all__ = [
    "DEFAULT_URL",
    "Backoff",
    "Change",
    "Document",
    "Entry",
    "HttpError",
    "ListenerId",
    "Listeners",
    "RunningListener",
    "Start",
    "StartFn",
    "Stop",
    "StopFn",
    "StopReason",
    "ThreadTarget",
    "ThreadedListeners",
    "parse_document",
    "parse_time",
    "run",
    "serve",
]
