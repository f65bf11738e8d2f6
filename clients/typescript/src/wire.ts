/**
 * The sidecar's wire format: its document, and one HTTP exchange with the global fetch.
 *
 * The document (`GET /listeners`, `baton agent`'s crates/baton-agent/src/sidecar.rs):
 *
 *     {"version": 7, "pod": "user-service-0-7d4a", "namespace": "default",
 *      "validUntil": "2026-01-10T10:00:04.500Z",
 *      "listeners": [{"listenerSet": "sxt", "id": "listener1", "config": "token…",
 *                     "fencingToken": 4, "validUntil": "2026-01-10T10:00:04.500Z"}]}
 *
 * `validUntil` is wall-clock time on the node (RFC 3339, UTC, milliseconds truncated). The client
 * turns it into a deadline on the monotonic clock the moment the document arrives (the time left,
 * `validUntil` minus `Date.now()`, added to `performance.now()`), so a later step of the wall
 * clock (NTP, a hand-set clock) neither shortens nor stretches a listener's run.
 */

export const DEFAULT_URL = "http://127.0.0.1:8686";

/** One listener the sidecar lists, as handed to `start`. */
export interface Listener {
  readonly listenerSet: string;
  readonly id: string;
  /** `<listenerSet>/<id>`, as the logs print it. */
  readonly name: string;
  /** The ListenerSet's config for it, or null when the sidecar sends none. */
  readonly config: string | null;
  /** Pass it to whatever the listener writes to, which refuses lower tokens. */
  readonly fencingToken: number;
}

/** One entry of a document. */
export interface Entry extends Listener {
  /** As the sidecar wrote it; null from a sidecar that writes none. */
  readonly validUntil: Date | null;
  /** `validUntil` on the `performance.now()` clock (ms); Infinity when there is none. */
  readonly deadline: number;
}

/** One version of what the sidecar lists. */
export interface Document {
  readonly version: number;
  readonly pod: string;
  readonly namespace: string;
  readonly listeners: readonly Entry[];
}

const ZONE = /(?:[zZ]|[+-]\d\d:?\d\d)$/;
const RFC3339 = /^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?/;

/** An RFC 3339 timestamp (`Z` or an offset, any number of fraction digits). */
export function parseTime(text: string): Date {
  let t = text.trim();
  if (!RFC3339.test(t) || !ZONE.test(t)) {
    throw new Error(`validUntil ${JSON.stringify(text)} is not an RFC 3339 time with a time zone`);
  }
  // Date.parse takes milliseconds: cut the fraction to three digits (truncating, as the agent).
  t = t.replace(/\.(\d+)/, (_m, digits: string) => "." + (digits + "000").slice(0, 3));
  const ms = Date.parse(t.replace(" ", "T"));
  if (Number.isNaN(ms)) {
    throw new Error(`validUntil ${JSON.stringify(text)} is not a time`);
  }
  return new Date(ms);
}

/** `validUntil` (wall clock) as an instant of the monotonic clock read as `monoNow`. */
export function toDeadline(validUntil: Date, monoNow: number, wallNow: number): number {
  return monoNow + (validUntil.getTime() - wallNow);
}

function field<T>(obj: Record<string, unknown>, key: string, kind: "string" | "integer" | "array"): T {
  const value = obj[key];
  const ok =
    kind === "array"
      ? Array.isArray(value)
      : kind === "integer"
        ? typeof value === "number" && Number.isSafeInteger(value)
        : typeof value === "string";
  if (!ok) {
    throw new Error(`field ${JSON.stringify(key)} is not a ${kind}: ${JSON.stringify(value)}`);
  }
  return value as T;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The sidecar's document; throws when it is not one. */
export function parseDocument(body: string, monoNow: number, wallNow: number): Document {
  const raw: unknown = JSON.parse(body);
  if (!isObject(raw)) {
    throw new Error("the document is not a JSON object");
  }
  const listeners: Entry[] = [];
  for (const item of field<unknown[]>(raw, "listeners", "array")) {
    if (!isObject(item)) {
      throw new Error(`a listener entry is not a JSON object: ${JSON.stringify(item)}`);
    }
    const config = item["config"] ?? null;
    if (config !== null && typeof config !== "string") {
      throw new Error(`config is not a string: ${JSON.stringify(config)}`);
    }
    const untilText = item["validUntil"];
    const validUntil = typeof untilText === "string" ? parseTime(untilText) : null;
    const listenerSet = field<string>(item, "listenerSet", "string");
    const id = field<string>(item, "id", "string");
    listeners.push({
      listenerSet,
      id,
      name: `${listenerSet}/${id}`,
      config,
      fencingToken: field<number>(item, "fencingToken", "integer"),
      validUntil,
      deadline: validUntil === null ? Infinity : toDeadline(validUntil, monoNow, wallNow),
    });
  }
  return {
    version: field<number>(raw, "version", "integer"),
    pod: String(raw["pod"] ?? ""),
    namespace: String(raw["namespace"] ?? ""),
    listeners,
  };
}

/** The sidecar answered, but not with what was asked. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.trim()}`);
    this.name = "HttpError";
  }
}

/** The sidecar's URL, checked: http://host:port, without a trailing slash. */
export function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`the sidecar's URL must be http://host:port, not ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" || parsed.hostname === "") {
    throw new Error(`the sidecar's URL must be http://host:port, not ${JSON.stringify(url)}`);
  }
  return `${parsed.protocol}//${parsed.host}`;
}

/**
 * One exchange: (status, body). Gives up after `timeoutMs`, or at once when `cancel` is aborted;
 * throws on a connection refused or cut.
 */
export async function request(
  base: string,
  method: "GET" | "POST",
  target: string,
  timeoutMs: number,
  cancel: AbortSignal,
): Promise<{ status: number; body: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
  const onCancel = (): void => controller.abort(cancel.reason);
  if (cancel.aborted) {
    onCancel();
  } else {
    cancel.addEventListener("abort", onCancel, { once: true });
  }
  try {
    const response = await fetch(base + target, { method, signal: controller.signal });
    const body = await response.text();
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
    cancel.removeEventListener("abort", onCancel);
  }
}
