/**
 * A stand-in for `baton agent`'s HTTP server (crates/baton-agent/src/sidecar.rs), answering as it
 * does, byte for byte where it matters (as clients/python/tests/fake_sidecar.py):
 *
 * - `GET /listeners` — the document, pretty-printed JSON (serde_json's `to_vec_pretty`: two
 *   spaces, `": "`) and a newline, `Content-Type: application/json`; fields in the agent's order,
 *   `config` and `validUntil` left out when absent; `?wait=<version>` answers once the version is
 *   greater, or after 30 s with the current one;
 * - `POST /ack?version=<v>` — 204 (and the acknowledged version becomes `max(acked, v)`), 409
 *   `version <v> was never published (current: <c>)` for a version above the current one, 400
 *   without a version;
 * - `GET /healthz` — `ok`; anything else 404;
 * - the first version is the wall clock in milliseconds; each publication adds one;
 * - `validUntil` is the wall clock now plus the time left, UTC, milliseconds truncated; the
 *   document's own is the earliest of its listeners'.
 *
 * `kill()` is a SIGKILLed sidecar: the port is closed and long polls in flight are cut without an
 * answer.
 */

import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";

export const LONG_POLL_MS = 30_000;
const USAGE = "GET /listeners[?wait=<version>], POST /ack?version=<version>, GET /healthz\n";

export interface Listed {
  listenerSet: string;
  id: string;
  fencingToken: number;
  /** Milliseconds from publication to its validUntil (default 10 s). */
  validForMs?: number;
  config?: string;
}

export function listed(listenerSet: string, id: string, fencingToken: number, more: Partial<Listed> = {}): Listed {
  return { listenerSet, id, fencingToken, ...more };
}

export interface Ack {
  version: number;
  status: number;
  /** performance.now() */
  at: number;
}

interface Doc {
  version: number;
  pod: string;
  namespace: string;
  validUntil?: string;
  listeners: Record<string, unknown>[];
}

/** The agent's reading of a query: `k=v` pairs split on `&`, a bare `k` is `k=`. */
function query(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of text.split("&")) {
    if (kv === "") continue;
    const at = kv.indexOf("=");
    const [k, v] = at < 0 ? [kv, ""] : [kv.slice(0, at), kv.slice(at + 1)];
    if (!out.has(k)) out.set(k, v);
  }
  return out;
}

export function rfc3339Millis(epochMs: number): string {
  return new Date(Math.trunc(epochMs)).toISOString();
}

const DIGITS = /^[0-9]+$/;

export class FakeSidecar {
  doc: Doc;
  readonly firstVersion: number;
  acked = 0;
  readonly acks: Ack[] = [];
  /** The `wait` of each long poll received. */
  readonly polls: number[] = [];
  dead = false;
  port = 0;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private waiters: (() => void)[] = [];

  private constructor(
    readonly pod = "user-service-0-7d4a",
    readonly namespace = "default",
  ) {
    this.doc = { version: Date.now(), pod, namespace, listeners: [] };
    this.firstVersion = this.doc.version;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  static async start(port = 0): Promise<FakeSidecar> {
    const s = new FakeSidecar();
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(port, "127.0.0.1", () => resolve());
    });
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get version(): number {
    return this.doc.version;
  }

  /** A new version listing `listeners`; returns it. */
  publish(...listeners: Listed[]): number {
    const now = Date.now();
    const entries = listeners.map((l) => {
      const e: Record<string, unknown> = { listenerSet: l.listenerSet, id: l.id };
      if (l.config !== undefined) e["config"] = l.config;
      e["fencingToken"] = l.fencingToken;
      e["validUntil"] = rfc3339Millis(now + (l.validForMs ?? 10_000));
      return e;
    });
    const doc: Doc = { version: this.doc.version + 1, pod: this.pod, namespace: this.namespace, listeners: [] };
    if (entries.length > 0) {
      doc.validUntil = entries.map((e) => e["validUntil"] as string).sort()[0]!;
    }
    // The agent's field order: version, pod, namespace, validUntil, listeners.
    this.doc = { version: doc.version, pod: doc.pod, namespace: doc.namespace, ...(doc.validUntil ? { validUntil: doc.validUntil } : {}), listeners: entries };
    this.wakeAll();
    return this.doc.version;
  }

  acksOf(version: number): Ack[] {
    return this.acks.filter((a) => a.version >= version && a.status === 204);
  }

  /** A SIGKILLed sidecar: its port closed, its connections (long polls in flight) cut. */
  async kill(): Promise<void> {
    this.dead = true;
    this.wakeAll();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    await closed;
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private reply(res: http.ServerResponse, code: number, body: string, type: string): void {
    const bytes = Buffer.from(body);
    res.writeHead(code, { "Content-Type": type, "Content-Length": bytes.length });
    res.end(bytes);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.dead) {
      req.socket.destroy();
      return;
    }
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    const params = query(q < 0 ? "" : target.slice(q + 1));
    if (req.method === "GET") {
      if (path === "/healthz") return this.reply(res, 200, "ok\n", "text/plain");
      if (path !== "/listeners") return this.reply(res, 404, USAGE, "text/plain");
      const wait = params.get("wait") ?? "";
      if (!DIGITS.test(wait)) return this.answer(res);
      const after = Number(wait);
      this.polls.push(after);
      const deadline = performance.now() + LONG_POLL_MS;
      const check = (): void => {
        if (this.dead) {
          req.socket.destroy();
        } else if (this.doc.version > after || performance.now() >= deadline) {
          clearTimeout(timer);
          this.answer(res);
        } else {
          this.waiters.push(check);
        }
      };
      const timer = setTimeout(check, LONG_POLL_MS);
      req.socket.once("close", () => clearTimeout(timer));
      check();
      return;
    }
    if (req.method === "POST") {
      if (path !== "/ack") return this.reply(res, 404, USAGE, "text/plain");
      const v = params.get("version") ?? "";
      if (!DIGITS.test(v)) return this.reply(res, 400, "POST /ack?version=<version>\n", "text/plain");
      const version = Number(v);
      if (version > this.doc.version) {
        this.acks.push({ version, status: 409, at: performance.now() });
        return this.reply(res, 409, `version ${v} was never published (current: ${this.doc.version})\n`, "text/plain");
      }
      this.acked = Math.max(this.acked, version);
      this.acks.push({ version, status: 204, at: performance.now() });
      res.writeHead(204, { "Content-Type": "text/plain" });
      res.end();
      return;
    }
    this.reply(res, 404, USAGE, "text/plain");
  }

  private answer(res: http.ServerResponse): void {
    if (res.writableEnded || res.destroyed) return;
    this.reply(res, 200, JSON.stringify(this.doc, null, 2) + "\n", "application/json");
  }
}
