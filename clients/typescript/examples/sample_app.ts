/**
 * The sample user-service on the TypeScript client: clients/python/examples/sample_app.py's
 * behaviour (the app config/samples runs), on the TypeScript client.
 *
 * "Running a listener" is a log line (`start <set>/<id> token=<n>`, `stop <set>/<id>`), written
 * when it starts and when it has stopped (before the stop is acknowledged); a real service opens
 * its connection there. Serves GET /healthz on $PORT (0: any free port, printed) with what runs.
 * $BATON_AGENT_URL is the sidecar (default http://127.0.0.1:8686); $STOP_SECONDS (default 0) is
 * how long closing a listener's connection takes; with $STOP_FAILS=1 the close then throws (the
 * connection is gone all the same), as the conformance suite asks. On SIGTERM it follows the
 * sidecar until everything is stopped and acknowledged, then exits.
 */

import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

import { type Listener, Listeners } from "../src/index.js";

const STOP_MS = Number(process.env["STOP_SECONDS"] ?? "0") * 1000;
const STOP_FAILS = process.env["STOP_FAILS"] === "1";

function log(message: string): void {
  // One write per line.
  process.stdout.write(message + "\n");
}

async function listen(listener: Listener, signal: AbortSignal): Promise<void> {
  log(`start ${listener.name} token=${listener.fencingToken}`);
  // A real listener: connect with `listener.config`, write with `listener.fencingToken`.
  await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  await sleep(STOP_MS); // closing the connection
  log(`stop ${listener.name}`);
  if (STOP_FAILS) throw new Error(`closing ${listener.name} failed`);
}

const listeners = new Listeners({ start: listen }); // $BATON_AGENT_URL; drains on SIGTERM

const health = http.createServer((_req, res) => {
  const body =
    JSON.stringify({
      sidecar: listeners.sidecarReachable,
      running: listeners.running().map((r) => ({ listener: r.listener, fencingToken: r.fencingToken, state: r.state })),
    }) + "\n";
  res.writeHead(200, { "Content-Type": "application/json", Connection: "close" });
  res.end(body);
});
await new Promise<void>((resolve) => health.listen(Number(process.env["PORT"] ?? "8080"), "0.0.0.0", resolve));
log(`serving /healthz on port ${(health.address() as AddressInfo).port}`);
listeners.start(); // what `run({ start: listen })` does

await listeners.finished;
health.close();
health.closeAllConnections();
log("every listener stopped; exiting");
