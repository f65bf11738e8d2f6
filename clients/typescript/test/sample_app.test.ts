// examples/sample_app.ts as a process, against the fake sidecar: the log lines the end-to-end
// tests read, /healthz, and SIGTERM.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { createInterface } from "node:readline";

import { FakeSidecar, listed } from "./fake_sidecar.js";
import { some, until } from "./helpers.js";

const APP = fileURLToPath(new URL("../examples/sample_app.js", import.meta.url));

/** The process's output lines, each waited for at most `timeoutMs`. */
class Lines {
  private readonly lines: string[] = [];

  constructor(proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on("line", (line) => this.lines.push(line.trim()));
  }

  async next(timeoutMs = 5000): Promise<string> {
    await until("a line from the app", () => this.lines.length > 0, timeoutMs);
    return this.lines.shift()!;
  }
}

test("the sample app logs its listeners and exits after the sidecar emptied", async () => {
  const sidecar = await FakeSidecar.start();
  const proc = spawn(process.execPath, [APP], {
    env: { ...process.env, BATON_AGENT_URL: sidecar.url, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = once(proc, "exit");
  try {
    const lines = new Lines(proc);
    const first = (await lines.next()).split(" ");
    assert.deepEqual(first.slice(0, 4), ["serving", "/healthz", "on", "port"]);
    const port = Number(first[4]);
    sidecar.publish(listed("sxt", "listener1", 3), listed("sxt", "listener2", 7));
    const starts = [await lines.next(), await lines.next()].sort();
    assert.deepEqual(starts, ["start sxt/listener1 token=3", "start sxt/listener2 token=7"]);
    const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
      sidecar: boolean;
      running: { listener: string; fencingToken: number }[];
    };
    assert.equal(health.sidecar, true);
    assert.deepEqual(
      health.running.map((e) => [e.listener, e.fencingToken]).sort(),
      [
        ["sxt/listener1", 3],
        ["sxt/listener2", 7],
      ],
    );
    proc.kill("SIGTERM");
    const one = sidecar.publish(listed("sxt", "listener2", 7)); // the sidecar stops them one by one
    assert.equal(await lines.next(), "stop sxt/listener1");
    await until("its acknowledgement", () => some(sidecar.acksOf(one)));
    assert.equal(proc.exitCode, null, "exited while the sidecar still lists listener2");
    const empty = sidecar.publish();
    assert.equal(await lines.next(), "stop sxt/listener2");
    assert.equal(await lines.next(), "every listener stopped; exiting");
    const [code] = await exited;
    assert.equal(code, 0);
    assert.ok(sidecar.acksOf(empty).length > 0);
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
    await sidecar.kill();
  }
});
