/** What the tests share: waiting on a condition with a deadline, and an app that logs its runs. */

import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

import type { Listener } from "../src/index.js";

/** How often a waiting test looks at its condition again (ms). */
const LOOK_MS = 5;

/** Wait until `check()` is truthy (looking every few ms), at most `timeoutMs`; its value. */
export async function until<T>(what: string, check: () => T, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(LOOK_MS);
  }
}

/** A non-empty array, or null (for `until`). */
export function some<T>(items: T[]): T[] | null {
  return items.length > 0 ? items : null;
}

export interface Event {
  kind: "start" | "stop";
  listener: string;
  token: number;
  /** performance.now() */
  at: number;
}

/** Starts and stops, in order. */
export class Log {
  readonly events: Event[] = [];

  add(kind: "start" | "stop", listener: string, token: number): void {
    this.events.push({ kind, listener, token, at: performance.now() });
  }

  of(kind: "start" | "stop", listener: string): Event[] {
    return this.events.filter((e) => e.kind === kind && e.listener === listener);
  }

  /** Listener → token of what runs now (a start not yet followed by its stop). */
  running(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.events) {
      if (e.kind === "start") {
        if (e.listener in out) throw new Error(`${e.listener} started twice: ${JSON.stringify(this.events)}`);
        out[e.listener] = e.token;
      } else {
        delete out[e.listener];
      }
    }
    return out;
  }
}

/**
 * `start` for `run`: each listener runs until its signal is aborted; its stop is logged when it
 * has finished stopping (after `release()`, when `holdStops`).
 */
export class App {
  readonly log = new Log();
  readonly stopping: string[] = [];
  private released: boolean;
  private waiting: (() => void)[] = [];

  constructor(holdStops = false) {
    this.released = !holdStops;
  }

  release(): void {
    this.released = true;
    for (const w of this.waiting.splice(0)) w();
  }

  readonly start = async (listener: Listener, signal: AbortSignal): Promise<void> => {
    this.log.add("start", listener.name, listener.fencingToken);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    this.stopping.push(listener.name);
    if (!this.released) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.log.add("stop", listener.name, listener.fencingToken);
  };
}
