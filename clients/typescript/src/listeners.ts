/**
 * `Listeners` and `run`: the application's contract (docs/listeners.md), each listener a promise.
 *
 * The client long-polls the sidecar, keeps the last document it got, and reconciles what the
 * application runs with that document and the clock:
 *
 * 1. a listed listener whose `validUntil` is ahead is started, with its fencing token: `start`
 *    is called with an AbortSignal of its own;
 * 2. a running listener no longer listed, or listed with another token, is stopped (its signal
 *    aborted); a version is acknowledged (`POST /ack?version=`) once the promise of every stop
 *    that version or an earlier one asked for has settled, without waiting for stops a later
 *    version asked for (an acknowledgement covers every earlier version);
 * 3. a running listener is stopped when its `validUntil` passes, on a `performance.now()` timer,
 *    whatever the sidecar says or does not say;
 * 4. while the sidecar cannot be reached nothing else changes: the last document stays in force,
 *    so each listener runs on until its `validUntil` and is stopped then; the client keeps
 *    retrying (jittered exponential backoff) and follows the sidecar when it is back (a restarted
 *    sidecar lists nothing at first: everything still running is stopped and that acknowledged);
 * 5. after `drain()` (SIGTERM) it keeps following the sidecar, which then lists nothing, and
 *    `finished` resolves once everything is stopped and acknowledged (or, the sidecar gone, once
 *    every `validUntil` has passed).
 */

import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";

import { DEFAULT_URL, type Document, type Entry, HttpError, type Listener, checkUrl, parseDocument, request } from "./wire.js";

/** Why a listener is stopped: no longer listed, listed with another fencing token, its
 * `validUntil` passed, or the client is closing. */
export type StopReason = "unlisted" | "token" | "expired" | "closed";

/** The reason of an aborted listener's signal (`signal.reason`). */
export class ListenerStopped extends Error {
  constructor(
    readonly listener: string,
    readonly reason: StopReason,
  ) {
    super(`listener ${listener} stopped (${reason})`);
    this.name = "ListenerStopped";
  }
}

/** The sidecar answers a long poll after 30 s at the latest; give up on one after this long. */
export const POLL_TIMEOUT_MS = 40_000;
export const ACK_TIMEOUT_MS = 5_000;
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Jittered exponential backoff: attempt `n` (from 1) waits a random time in `[c/2, c]` with
 * `c = min(capMs, baseMs * 2**(n-1))` ("equal jitter": never a burst of immediate retries,
 * never two clients in lockstep).
 */
export class Backoff {
  constructor(
    readonly baseMs: number = 50,
    readonly capMs: number = 1000,
  ) {}

  ceiling(attempt: number): number {
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 60));
  }

  delay(attempt: number, rand: () => number = Math.random): number {
    const c = this.ceiling(attempt);
    return c / 2 + (rand() * c) / 2;
  }
}

/** Where the client's messages go (default: warnings to stderr, the rest nowhere). */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn(message) {
    console.error(`baton-listeners: ${message}`);
  },
};

/** Runs one listener until `signal` is aborted; the promise settling means it has stopped. */
export type StartFn = (listener: Listener, signal: AbortSignal) => Promise<void>;

export interface Options {
  /** The sidecar (default `$BATON_AGENT_URL`, else http://127.0.0.1:8686). */
  url?: string;
  /**
   * Runs a listener until its signal is aborted, and returns (or throws) only once it has
   * stopped: no more writes with its token. A promise that settles while the signal is not
   * aborted is a listener that ended on its own: it is started again (with backoff) while listed.
   */
  start: StartFn;
  /** Drain on SIGTERM (default true); false for an application with its own handler, which
   * calls `drain()`. */
  handleSigterm?: boolean;
  backoff?: Backoff;
  pollTimeoutMs?: number;
  logger?: Logger;
}

/** One listener the application runs (or is stopping), for /healthz and metrics. */
export interface RunningListener {
  readonly listener: string;
  readonly fencingToken: number;
  readonly state: "running" | "stopping";
  /** Milliseconds until its validUntil (negative once past, 0 while stopping; Infinity when the
   * sidecar sent none). */
  readonly validForMs: number;
  /** When it was started (wall clock). */
  readonly startedAt: Date;
}

interface Run {
  readonly listener: Listener;
  readonly startedAt: Date;
  controller: AbortController;
  /** The promise of start, until it settles. */
  active: Promise<void> | null;
  restarts: number;
  restartTimer: NodeJS.Timeout | null;
  stopping: StopReason | null;
  /** The version of the newest document that listed this tenure (with its token), 0 before any;
   * kept up to date while it runs. */
  listedIn: number;
  /** Once stopping: `listedIn` when the client decided to stop it — the newest version this stop
   * does not belong to. A version up to it can be acknowledged while this stop is under way; a
   * later one only once it has settled. */
  before: number;
}

/** Wakes one waiter: `wait()` resolves at the next `notify()`. */
class Wake {
  private resolve: (() => void) | null = null;
  private promise: Promise<void> | null = null;

  wait(): Promise<void> {
    this.promise ??= new Promise((r) => (this.resolve = r));
    return this.promise;
  }

  notify(): void {
    const r = this.resolve;
    this.promise = null;
    this.resolve = null;
    r?.();
  }
}

export class Listeners {
  readonly url: string;
  /** Resolves once drained (everything stopped and acknowledged) or closed (everything stopped). */
  readonly finished: Promise<void>;

  private readonly startFn: StartFn;
  private readonly backoff: Backoff;
  private readonly pollTimeoutMs: number;
  private readonly log: Logger;
  private readonly handleSigterm: boolean;
  private doc: Document | null = null;
  private listed = new Map<string, Entry>();
  private readonly runs = new Map<string, Run>();
  private readonly stopping = new Map<string, Run>();
  private acked: number | null = null;
  private refused: number | null = null;
  private reachable = false;
  private draining = false;
  private closed = false;
  private started = false;
  private readonly cancel = new AbortController();
  private readonly ackWake = new Wake();
  private deadlineTimer: NodeJS.Timeout | null = null;
  private resolveFinished!: () => void;
  private readonly onSigterm = (): void => void this.drain();

  constructor(options: Options) {
    this.url = checkUrl(options.url ?? process.env["BATON_AGENT_URL"] ?? DEFAULT_URL);
    this.startFn = options.start;
    this.backoff = options.backoff ?? new Backoff();
    this.pollTimeoutMs = options.pollTimeoutMs ?? POLL_TIMEOUT_MS;
    this.log = options.logger ?? defaultLogger;
    this.handleSigterm = options.handleSigterm ?? true;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /** Start following the sidecar. */
  start(): this {
    if (this.started) return this;
    this.started = true;
    if (this.handleSigterm) process.on("SIGTERM", this.onSigterm);
    void this.pollLoop();
    void this.ackLoop();
    return this;
  }

  /**
   * Rule 5 (call it on SIGTERM): keep following the sidecar, which lists nothing once it got its
   * own SIGTERM, and resolve `finished` once everything is stopped and acknowledged — or, the
   * sidecar gone, once every `validUntil` has passed. Returns `finished`.
   */
  drain(): Promise<void> {
    this.draining = true;
    this.reconcile();
    return this.finished;
  }

  /**
   * Leave early: stop following the sidecar, abort every listener's signal and resolve `finished`
   * once each has settled. Nothing more is acknowledged.
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.shutDown();
      for (const [key, run] of [...this.runs]) this.stopRun(key, run, "closed");
      this.settleClose();
    }
    return this.finished;
  }

  /** A snapshot of what runs and what is stopping, by listener name. */
  running(): RunningListener[] {
    const now = performance.now();
    const out: RunningListener[] = [];
    for (const [key, run] of this.runs) {
      const entry = this.listed.get(key);
      out.push({
        listener: key,
        fencingToken: run.listener.fencingToken,
        state: "running",
        validForMs: entry === undefined ? 0 : entry.deadline - now,
        startedAt: run.startedAt,
      });
    }
    for (const [key, run] of this.stopping) {
      out.push({ listener: key, fencingToken: run.listener.fencingToken, state: "stopping", validForMs: 0, startedAt: run.startedAt });
    }
    return out.sort((a, b) => (a.listener < b.listener ? -1 : a.listener > b.listener ? 1 : 0));
  }

  /** The version of the last document received. */
  get version(): number | null {
    return this.doc?.version ?? null;
  }

  get ackedVersion(): number | null {
    return this.acked;
  }

  /** Whether the last exchange with the sidecar succeeded. */
  get sidecarReachable(): boolean {
    return this.reachable;
  }

  // ---- reconciling

  private reconcile(): void {
    if (this.closed) return;
    const now = performance.now();
    const version = this.doc?.version ?? 0;
    for (const [key, run] of [...this.runs]) {
      const entry = this.listed.get(key);
      let reason: StopReason | null = null;
      if (entry === undefined) reason = "unlisted";
      else if (entry.fencingToken !== run.listener.fencingToken) reason = "token";
      else {
        // Listed with its token: this version does not drop it.
        run.listedIn = version;
        if (entry.deadline <= now) reason = "expired";
      }
      if (reason !== null) this.stopRun(key, run, reason);
    }
    for (const [key, entry] of this.listed) {
      if (this.runs.has(key) || this.stopping.has(key) || entry.deadline <= now) continue;
      const { listenerSet, id, name, config, fencingToken } = entry;
      const run: Run = {
        listener: { listenerSet, id, name, config, fencingToken },
        startedAt: new Date(),
        controller: new AbortController(),
        active: null,
        restarts: 0,
        restartTimer: null,
        stopping: null,
        listedIn: version,
        before: 0,
      };
      this.runs.set(key, run);
      this.launch(key, run);
    }
    this.schedule(now);
    this.ackWake.notify();
    if (this.isFinished(now)) this.finish();
  }

  /** A timer at the soonest validUntil of what runs. */
  private schedule(now: number): void {
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    let soonest = Infinity;
    for (const key of this.runs.keys()) {
      const entry = this.listed.get(key);
      if (entry !== undefined && entry.deadline < soonest) soonest = entry.deadline;
    }
    if (soonest === Infinity) return; // conformance: valid-until-timer
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(soonest - now)));
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      this.reconcile();
    }, delay);
  }

  private launch(key: string, run: Run): void {
    run.controller = new AbortController();
    let promise: Promise<void>;
    try {
      promise = Promise.resolve(this.startFn(run.listener, run.controller.signal));
    } catch (e) {
      promise = Promise.reject(e);
    }
    run.active = promise;
    promise.then(
      () => this.ended(key, run, null),
      (e: unknown) => this.ended(key, run, e),
    );
  }

  /** The promise of `start` settled: stopped, or ended on its own. */
  private ended(key: string, run: Run, error: unknown): void {
    run.active = null;
    if (run.stopping !== null) {
      if (error !== null && !(error instanceof ListenerStopped) && !(error instanceof Error && error.name === "AbortError")) {
        this.log.warn(`listener ${key} failed while stopping: ${String(error)}`);
      }
      this.stopped(key, run);
      return;
    }
    if (error === null) this.log.warn(`listener ${key} ended on its own; starting it again`);
    else this.log.warn(`listener ${key} failed (${String(error)}); starting it again`);
    run.restarts += 1;
    run.restartTimer = setTimeout(() => {
      run.restartTimer = null;
      if (this.runs.get(key) === run && run.stopping === null) this.launch(key, run);
    }, this.backoff.delay(run.restarts));
  }

  private stopRun(key: string, run: Run, reason: StopReason): void {
    if (this.runs.get(key) !== run) return; // already stopped (a reconciliation within this one)
    this.runs.delete(key);
    this.stopping.set(key, run);
    run.stopping = reason;
    // Dropped (or listed with another token) by the current document: `listedIn` is the version
    // before it, the last one applied. Expired, or closing, while listed: the current version.
    run.before = run.listedIn;
    if (run.restartTimer !== null) {
      clearTimeout(run.restartTimer);
      run.restartTimer = null;
    }
    this.log.debug(`stopping listener ${key} (${reason})`);
    run.controller.abort(new ListenerStopped(key, reason));
    if (run.active === null) this.stopped(key, run);
  }

  private stopped(key: string, run: Run): void {
    if (this.stopping.get(key) === run) this.stopping.delete(key);
    if (this.closed) this.settleClose();
    else this.reconcile(); // wakes the acknowledgements: a later version may be acknowledgeable now
  }

  // ---- acknowledgements

  /**
   * The version to acknowledge: the newest one whose dropped listeners have all stopped. An
   * acknowledgement of a version says that everything it and every earlier version dropped has
   * stopped, so that is the last one received when nothing is stopping, else the oldest `before`
   * of what is stopping: each version is acknowledged once every stop it or an earlier one asked
   * for has settled, without waiting for stops a later version asked for. Null when there is
   * nothing new to acknowledge, or while something running is not yet listed with its token.
   */
  private ackable(): number | null {
    const doc = this.doc;
    if (doc === null) return null;
    for (const [key, run] of this.runs) {
      const entry = this.listed.get(key);
      if (entry === undefined || entry.fencingToken !== run.listener.fencingToken) return null;
    }
    const candidate = Math.min(doc.version, ...[...this.stopping.values()].map((run) => run.before)); // conformance: ack-after-stop
    if (candidate <= 0 || candidate <= (this.acked ?? 0) || candidate === this.refused) return null;
    return candidate;
  }

  private async ackLoop(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      const version = this.ackable();
      if (version === null) {
        await this.ackWake.wait();
        continue;
      }
      let answer: { status: number; body: string };
      try {
        answer = await request(this.url, "POST", `/ack?version=${version}`, ACK_TIMEOUT_MS, this.cancel.signal);
      } catch (e) {
        if (this.closed) return;
        this.reachable = false;
        failures += 1;
        this.log.debug(`acknowledging version ${version} failed: ${String(e)}`);
        this.reconcile(); // conformance: valid-until-timer (after a failed ack)
        await this.pause(failures);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        failures = 0;
        this.acked = version;
      } else if (answer.status === 409) {
        // Not a version of this sidecar (it restarted): its own document comes next.
        failures = 0;
        this.log.info(`the sidecar refused the acknowledgement of version ${version}: ${answer.body.trim()}`);
        this.refused = version;
      } else {
        this.log.warn(`acknowledging version ${version}: ${new HttpError(answer.status, answer.body).message}`);
        failures += 1;
        await this.pause(failures);
        continue;
      }
      this.reconcile();
    }
  }

  // ---- following the sidecar

  private async pollLoop(): Promise<void> {
    let version = 0;
    let failures = 0;
    while (!this.closed) {
      let doc: Document;
      try {
        const answer = await request(this.url, "GET", `/listeners?wait=${version}`, this.pollTimeoutMs, this.cancel.signal);
        if (answer.status !== 200) throw new HttpError(answer.status, answer.body);
        doc = parseDocument(answer.body, performance.now(), Date.now());
      } catch (e) {
        if (this.closed) return;
        // Rule 4: the last document stays in force, each listener until its validUntil.
        if (this.reachable || failures === 0) {
          this.log.warn(`the sidecar at ${this.url} cannot be reached (${describe(e)}); running on until validUntil`);
        }
        this.reachable = false;
        failures += 1;
        this.reconcile(); // conformance: valid-until-timer (after a failed poll)
        await this.pause(failures);
        continue;
      }
      if (!this.reachable && failures > 0) {
        this.log.info(`the sidecar at ${this.url} answers again (version ${doc.version})`);
      }
      failures = 0;
      this.reachable = true;
      version = doc.version;
      // A sidecar restarted with its clock behind the last one: what was acknowledged to that one
      // says nothing to this one.
      if (this.doc !== null && doc.version < this.doc.version) this.acked = null;
      this.doc = doc;
      this.listed = new Map(doc.listeners.map((e) => [e.name, e]));
      this.reconcile();
    }
  }

  private async pause(failures: number): Promise<void> {
    try {
      await sleep(this.backoff.delay(failures), undefined, { signal: this.cancel.signal });
    } catch {
      // closed
    }
  }

  // ---- the end

  private isFinished(now: number): boolean {
    if (!this.draining || this.runs.size > 0 || this.stopping.size > 0) return false;
    for (const entry of this.listed.values()) {
      if (entry.deadline > now) return false; // the sidecar still lists something: follow it
    }
    const doc = this.doc;
    if (doc === null || doc.listeners.length > 0) return true; // never reached, or all expired
    return doc.version === this.acked || doc.version === this.refused || !this.reachable;
  }

  private finish(): void {
    this.closed = true;
    this.shutDown();
    this.resolveFinished();
  }

  private shutDown(): void {
    if (this.handleSigterm) process.removeListener("SIGTERM", this.onSigterm);
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.cancel.abort(new Error("closed"));
    this.ackWake.notify();
  }

  private settleClose(): void {
    if (this.runs.size === 0 && this.stopping.size === 0) this.resolveFinished();
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

/**
 * Run the listeners the sidecar lists until drained (SIGTERM, unless `handleSigterm: false`, or
 * `drain()`), keeping the application's contract; `await run(...).finished`.
 */
export function run(options: Options): Listeners {
  return new Listeners(options).start();
}
