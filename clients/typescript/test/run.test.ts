// `run` against a fake sidecar: each rule of the application's contract.
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { performance } from "node:perf_hooks";

import { Backoff, type Listener, ListenerStopped, Listeners, type Options, run } from "../src/index.js";
import { FakeSidecar, listed } from "./fake_sidecar.js";
import { App, some, until } from "./helpers.js";

const A = "sxt/listener1";
const B = "sxt/listener2";
const C = "sxt/listener3";
/** The client's timer fires on time give or take the event loop's latency (a loaded machine). */
const LATE = 250;
const quiet = { debug() {}, info() {}, warn() {} };

let sidecar: FakeSidecar;
beforeEach(async () => {
  sidecar = await FakeSidecar.start();
});
afterEach(async () => {
  if (!sidecar.dead) await sidecar.kill();
});

function served(app: App, more: Partial<Options> = {}): Listeners {
  return run({
    url: sidecar.url,
    start: app.start,
    handleSigterm: false,
    backoff: new Backoff(20, 100),
    logger: quiet,
    ...more,
  });
}

/** Resolves with true once `p` has settled, false while it has not. */
function settled(p: Promise<unknown>): () => boolean {
  let done = false;
  void p.then(() => (done = true));
  return () => done;
}

test("runs what is listed with its token, and restarts it on a new token", async () => {
  const app = new App();
  const ls = served(app);
  sidecar.publish(listed("sxt", "listener1", 3, { config: "secret-1" }), listed("sxt", "listener2", 8));
  await until("both running", () => JSON.stringify(app.log.running()) === JSON.stringify({ [A]: 3, [B]: 8 }));
  // A handover and back gave listener1 a higher token: stop the old tenure, then start anew.
  const v = sidecar.publish(listed("sxt", "listener1", 4), listed("sxt", "listener2", 8));
  await until("listener1 on token 4", () => app.log.running()[A] === 4);
  const stop = app.log.of("stop", A)[0]!;
  const start = app.log.of("start", A)[1]!;
  assert.ok(stop.token === 3 && stop.at <= start.at);
  assert.equal(app.log.of("start", B).length, 1, "listener2 kept running");
  await until("version acknowledged", () => some(sidecar.acksOf(v)));
  assert.deepEqual(
    ls.running().map((r) => [r.listener, r.fencingToken, r.state]),
    [
      [A, 4, "running"],
      [B, 8, "running"],
    ],
  );
  await ls.close();
  assert.deepEqual(app.log.running(), {}, "close stops what runs");
});

test("start is given the listener's config and token, and an AbortSignal of its own", async () => {
  const seen: [Listener, AbortSignal][] = [];
  const ls = run({
    url: sidecar.url,
    handleSigterm: false,
    logger: quiet,
    start: (listener, signal) => {
      seen.push([listener, signal]);
      return new Promise((resolve) => signal.addEventListener("abort", () => resolve()));
    },
  });
  sidecar.publish(listed("sxt", "listener1", 3, { config: "secret-1" }), listed("sxt", "listener2", 8));
  await until("both started", () => seen.length === 2);
  const byName = new Map(seen.map(([l, s]) => [l.name, { l, s }]));
  assert.deepEqual(byName.get(A)!.l, { listenerSet: "sxt", id: "listener1", name: A, config: "secret-1", fencingToken: 3 });
  assert.equal(byName.get(B)!.l.config, null);
  sidecar.publish(listed("sxt", "listener2", 8));
  await until("listener1's signal aborted", () => byName.get(A)!.s.aborted);
  const reason: unknown = byName.get(A)!.s.reason;
  assert.ok(reason instanceof ListenerStopped && reason.reason === "unlisted" && reason.listener === A);
  assert.equal(byName.get(B)!.s.aborted, false);
  await ls.close();
  assert.ok(byName.get(B)!.s.aborted);
});

test("a stop is acknowledged only once the listener has stopped", async () => {
  const app = new App(true);
  const ls = served(app);
  const first = sidecar.publish(listed("sxt", "listener1", 3), listed("sxt", "listener2", 5));
  await until("running", () => Object.keys(app.log.running()).length === 2);
  await until("the first version acknowledged", () => some(sidecar.acksOf(first)));
  const dropped = sidecar.publish(listed("sxt", "listener2", 5));
  await until("listener1 stopping", () => app.stopping.includes(A));
  // The client has the new version (it long-polls past it) while listener1 is still stopping.
  await until("a poll past the new version", () => sidecar.polls.includes(dropped));
  const heldFrom = performance.now();
  // A stop that takes 300 ms: the client must not acknowledge meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(sidecar.acksOf(dropped), [], "acknowledged while listener1 was still stopping");
  assert.deepEqual(
    ls.running().filter((r) => r.listener === A).map((r) => r.state),
    ["stopping"],
  );
  app.release();
  const [ack] = await until("the acknowledgement", () => some(sidecar.acksOf(dropped)));
  const [stopped] = app.log.of("stop", A);
  assert.ok(heldFrom < stopped!.at && stopped!.at <= ack!.at);
  await ls.close();
});

test("a listener stops at validUntil while the sidecar is silent", async () => {
  const app = new App();
  const ls = served(app);
  const published = performance.now();
  sidecar.publish(listed("sxt", "listener1", 3, { validForMs: 600 }), listed("sxt", "listener2", 4, { validForMs: 30_000 }));
  await until("running", () => Object.keys(app.log.running()).length === 2);
  const version = sidecar.version;
  const [stop] = await until("listener1 stopped", () => some(app.log.of("stop", A)), 3000);
  // The sidecar answered nothing new: the client's own timer stopped it, on time.
  assert.equal(sidecar.version, version);
  assert.ok(published + 600 - 2 <= stop!.at && stop!.at <= published + 600 + LATE, `stopped ${stop!.at - published} ms after`);
  assert.deepEqual(app.log.running(), { [B]: 4 });
  // Listed again with a later validUntil (the agent renewed): it runs again, same token.
  sidecar.publish(listed("sxt", "listener1", 3, { validForMs: 30_000 }), listed("sxt", "listener2", 4, { validForMs: 30_000 }));
  await until("listener1 running again", () => app.log.running()[A] === 3);
  assert.equal(app.log.of("start", A)[1]!.token, 3);
  await ls.close();
});

test("with the sidecar gone, listeners run on until validUntil, then stop", async () => {
  const app = new App();
  const ls = served(app);
  const published = performance.now();
  sidecar.publish(listed("sxt", "listener1", 3, { validForMs: 1000 }), listed("sxt", "listener2", 4, { validForMs: 1500 }));
  await until("running", () => Object.keys(app.log.running()).length === 2);
  await sidecar.kill();
  await until("the client sees the sidecar gone", () => !ls.sidecarReachable);
  // Connection refused is neither "stop nothing" nor "stop everything now".
  assert.deepEqual(app.log.running(), { [A]: 3, [B]: 4 });
  const [a] = await until("listener1 stopped", () => some(app.log.of("stop", A)), 3000);
  assert.ok(published + 1000 - 2 <= a!.at && a!.at <= published + 1000 + LATE, `stopped ${a!.at - published} ms after`);
  assert.deepEqual(app.log.running(), { [B]: 4 });
  const [b] = await until("listener2 stopped", () => some(app.log.of("stop", B)), 3000);
  assert.ok(published + 1500 - 2 <= b!.at && b!.at <= published + 1500 + LATE, `stopped ${b!.at - published} ms after`);
  assert.equal(ls.sidecarReachable, false);
  await ls.close();
});

test("a restarted sidecar is followed, and its empty document acknowledged", async () => {
  const app = new App(true);
  const ls = served(app);
  const old = sidecar.publish(listed("sxt", "listener1", 3, { validForMs: 20_000 }));
  await until("running", () => app.log.running()[A] === 3);
  await until("acknowledged", () => some(sidecar.acksOf(old)));
  await sidecar.kill();
  await until("the client sees the sidecar gone", () => !ls.sidecarReachable);
  // The container restarts: same port, an empty document, versions from the wall clock.
  const fresh = await FakeSidecar.start(sidecar.port);
  try {
    assert.ok(fresh.version > old);
    await until("listener1 stopping", () => app.stopping.includes(A));
    await until("a poll of the new sidecar", () => fresh.polls.length > 0);
    assert.deepEqual(fresh.acksOf(fresh.firstVersion), [], "acknowledged before listener1 stopped");
    app.release();
    const [ack] = await until("the new sidecar's empty document acknowledged", () => some(fresh.acksOf(fresh.firstVersion)));
    assert.ok(app.log.of("stop", A)[0]!.at <= ack!.at);
    // The new sidecar renewed the Lease: it lists listener1 again.
    fresh.publish(listed("sxt", "listener1", 3, { validForMs: 20_000 }));
    await until("listener1 runs again", () => app.log.running()[A] === 3);
    await ls.close();
  } finally {
    await fresh.kill();
  }
});

test("a slow stop delays the acknowledgement of every later version", async () => {
  let releaseA: () => void = () => {};
  const stoppedAt: Record<string, number> = {};
  const ls = run({
    url: sidecar.url,
    handleSigterm: false,
    logger: quiet,
    start: async (listener, signal) => {
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      if (listener.name === A) await new Promise<void>((resolve) => (releaseA = resolve));
      stoppedAt[listener.name] = performance.now();
    },
  });
  sidecar.publish(listed("sxt", "listener1", 3), listed("sxt", "listener2", 4), listed("sxt", "listener3", 5));
  await until("running", () => ls.running().length === 3);
  const dropA = sidecar.publish(listed("sxt", "listener2", 4), listed("sxt", "listener3", 5));
  await until("listener1 stopping", () => ls.running().some((r) => r.listener === A && r.state === "stopping"));
  const dropB = sidecar.publish(listed("sxt", "listener3", 5));
  await until("listener2 stopped", () => stoppedAt[B]);
  await until("a poll past the later version", () => sidecar.polls.includes(dropB));
  assert.deepEqual(sidecar.acksOf(dropA), [], "acknowledged while listener1 was still stopping");
  releaseA();
  const [ack] = await until("the acknowledgement", () => some(sidecar.acksOf(dropB)));
  assert.ok(stoppedAt[A]! <= ack!.at);
  await ls.close();
});

test("a version is acknowledged once its stops have settled, without waiting for a later version's", async () => {
  const release: Record<string, () => void> = {};
  const stoppedAt: Record<string, number> = {};
  const ls = run({
    url: sidecar.url,
    handleSigterm: false,
    logger: quiet,
    start: async (listener, signal) => {
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      if (listener.name !== C) await new Promise<void>((resolve) => (release[listener.name] = resolve));
      stoppedAt[listener.name] = performance.now();
    },
  });
  const all = sidecar.publish(listed("sxt", "listener1", 3), listed("sxt", "listener2", 4), listed("sxt", "listener3", 5));
  await until("running", () => ls.running().length === 3);
  await until("the first version acknowledged", () => some(sidecar.acksOf(all)));
  const dropA = sidecar.publish(listed("sxt", "listener2", 4), listed("sxt", "listener3", 5));
  await until("listener1 stopping", () => release[A]);
  const dropB = sidecar.publish(listed("sxt", "listener3", 5));
  await until("listener2 stopping", () => release[B]);
  await until("a poll past the later version", () => sidecar.polls.includes(dropB));
  assert.deepEqual(sidecar.acksOf(dropA), [], "acknowledged while listener1 was still stopping");
  // listener1 stopped, listener2 still stopping: the version that dropped listener1 is acknowledged.
  release[A]!();
  const [ack] = await until("the version that dropped listener1 acknowledged", () => some(sidecar.acksOf(dropA)));
  assert.equal(ack!.version, dropA);
  assert.ok(stoppedAt[A]! <= ack!.at);
  assert.equal(stoppedAt[B], undefined);
  assert.deepEqual(sidecar.acksOf(dropB), [], "acknowledged while listener2 was still stopping");
  await until("the client records it", () => ls.ackedVersion === dropA);
  assert.deepEqual(
    ls.running().map((r) => [r.listener, r.state]),
    [
      [B, "stopping"],
      [C, "running"],
    ],
  );
  // listener2 stopped: the later version is acknowledged too.
  release[B]!();
  const [later] = await until("the version that dropped listener2 acknowledged", () => some(sidecar.acksOf(dropB)));
  assert.equal(later!.version, dropB);
  assert.ok(stoppedAt[B]! <= later!.at);
  await ls.close();
});

test("a listener that ends on its own is started again, with backoff", async () => {
  const starts: number[] = [];
  const ls = run({
    url: sidecar.url,
    handleSigterm: false,
    logger: quiet,
    backoff: new Backoff(10, 50),
    start: async (listener, signal) => {
      starts.push(listener.fencingToken);
      if (starts.length === 1) throw new Error("the upstream hung up");
      if (starts.length === 2) return; // ended on its own
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  });
  sidecar.publish(listed("sxt", "listener1", 6));
  await until("three starts", () => starts.length === 3);
  assert.deepEqual(starts, [6, 6, 6]);
  assert.deepEqual(ls.running().map((r) => r.state), ["running"]);
  await ls.close();
});

test("on SIGTERM it follows the sidecar until it lists nothing, then finishes", async () => {
  const app = new App();
  const ls = run({ url: sidecar.url, start: app.start, logger: quiet });
  const finished = settled(ls.finished);
  sidecar.publish(listed("sxt", "listener1", 3), listed("sxt", "listener2", 4));
  await until("running", () => Object.keys(app.log.running()).length === 2);
  process.kill(process.pid, "SIGTERM");
  // Still listed: keep running (the sidecar stops them one version at a time).
  const one = sidecar.publish(listed("sxt", "listener2", 4));
  await until("listener1 stopped", () => JSON.stringify(app.log.running()) === JSON.stringify({ [B]: 4 }));
  await until("its version acknowledged", () => some(sidecar.acksOf(one)));
  await until("a poll past it", () => sidecar.polls.includes(one));
  assert.equal(finished(), false, "finished while the sidecar still lists listener2");
  const empty = sidecar.publish();
  await until("finished", finished);
  assert.deepEqual(app.log.running(), {});
  assert.ok(sidecar.acksOf(empty).length > 0, "finished before acknowledging the empty document");
  assert.equal(process.listenerCount("SIGTERM"), 0, "the SIGTERM handler is removed");
});

test("drained with the sidecar gone, it finishes once every validUntil has passed", async () => {
  const app = new App();
  const ls = served(app);
  const finished = settled(ls.finished);
  const published = performance.now();
  sidecar.publish(listed("sxt", "listener1", 3, { validForMs: 1000 }));
  await until("running", () => app.log.running()[A] === 3);
  await sidecar.kill();
  void ls.drain();
  await until("the client sees the sidecar gone", () => !ls.sidecarReachable);
  assert.ok(!finished() && app.log.running()[A] === 3, "drained before validUntil");
  await until("finished", finished, 3000);
  const [stop] = app.log.of("stop", A);
  assert.ok(published + 1000 - 2 <= stop!.at && stop!.at <= published + 1000 + LATE, `stopped ${stop!.at - published} ms after`);
});

test("drained before it ever reached the sidecar, it finishes at once", async () => {
  await sidecar.kill();
  const app = new App();
  const ls = served(app);
  await until("the client sees the sidecar gone", () => !ls.sidecarReachable && ls.version === null);
  await ls.drain();
  assert.deepEqual(app.log.events, []);
});

test("listeners waiting to be started again are stopped and started anew on new tokens", async () => {
  const starts: [string, number][] = [];
  const ls = run({
    url: sidecar.url,
    handleSigterm: false,
    logger: quiet,
    backoff: new Backoff(60_000, 60_000), // ended on their own: started again only in a minute
    start: async (listener, signal) => {
      starts.push([listener.name, listener.fencingToken]);
      if (listener.fencingToken < 10) return; // the first tenures end at once
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  });
  sidecar.publish(listed("sxt", "listener1", 3), listed("sxt", "listener2", 4));
  await until("both started and ended", () => starts.length === 2);
  const v = sidecar.publish(listed("sxt", "listener1", 13), listed("sxt", "listener2", 14));
  await until("the new version acknowledged", () => some(sidecar.acksOf(v)));
  assert.deepEqual(starts.slice(2).sort(), [
    [A, 13],
    [B, 14],
  ]);
  assert.deepEqual(
    ls.running().map((r) => [r.listener, r.fencingToken, r.state]),
    [
      [A, 13, "running"],
      [B, 14, "running"],
    ],
  );
  await ls.close();
});
