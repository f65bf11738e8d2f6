/**
 * The baton listener client for Node.js: runs the listeners the `baton agent` sidecar assigns to
 * this pod and keeps the application's contract (docs/listeners.md).
 */
export { DEFAULT_URL, HttpError, parseDocument, parseTime, toDeadline } from "./wire.js";
export type { Document, Entry, Listener } from "./wire.js";
export { ACK_TIMEOUT_MS, Backoff, ListenerStopped, Listeners, POLL_TIMEOUT_MS, run } from "./listeners.js";
export type { Logger, Options, RunningListener, StartFn, StopReason } from "./listeners.js";
