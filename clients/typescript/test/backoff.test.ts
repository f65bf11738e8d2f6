// Retries wait a jittered, growing, capped time.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "../src/index.js";

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
}

test("each delay lies between half the ceiling and the ceiling", () => {
  const b = new Backoff(50, 1000);
  for (let attempt = 1; attempt < 40; attempt++) {
    const ceiling = Math.min(1000, 50 * 2 ** (attempt - 1));
    assert.ok(close(b.ceiling(attempt), ceiling), `ceiling of attempt ${attempt}`);
    assert.ok(close(b.delay(attempt, () => 0), ceiling / 2));
    assert.ok(close(b.delay(attempt, () => 1), ceiling));
    for (let i = 0; i < 200; i++) {
      const d = b.delay(attempt);
      assert.ok(ceiling / 2 <= d && d <= ceiling, `${d} outside [${ceiling / 2}, ${ceiling}]`);
    }
  }
});

test("delays grow to the cap and stay there", () => {
  const b = new Backoff(50, 1000);
  const ceilings = Array.from({ length: 9 }, (_, i) => b.ceiling(i + 1));
  assert.deepEqual(ceilings, [50, 100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  assert.equal(b.ceiling(10_000), 1000); // no overflow however long the sidecar is gone
  assert.equal(b.ceiling(0), 50);
});

test("delays are spread so that clients do not retry in lockstep", () => {
  const b = new Backoff(50, 1000);
  const delays = Array.from({ length: 500 }, () => b.delay(8));
  assert.ok(Math.max(...delays) - Math.min(...delays) > 300); // the whole [500, 1000] band is used
  assert.ok(new Set(delays.map((d) => d.toFixed(6))).size > 450);
});
