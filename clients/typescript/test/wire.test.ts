// The sidecar's document, as the agent writes it, and validUntil on the monotonic clock.
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseDocument, parseTime } from "../src/index.js";
import { rfc3339Millis } from "./fake_sidecar.js";

// The agent's document as docs/listeners.md shows it, pretty-printed as the agent renders it.
const AGENT_DOC =
  JSON.stringify(
    {
      version: 7,
      pod: "user-service-0-7d4a",
      namespace: "default",
      validUntil: "2026-01-10T10:00:03.250Z",
      listeners: [
        { listenerSet: "sxt", id: "listener1", config: "token…", fencingToken: 4, validUntil: "2026-01-10T10:00:04.500Z" },
        { listenerSet: "sxt", id: "listener2", fencingToken: 9, validUntil: "2026-01-10T10:00:03.250Z" },
      ],
    },
    null,
    2,
  ) + "\n";

test("the agent's document is read with each listener and its token", () => {
  const doc = parseDocument(AGENT_DOC, 0, 0);
  assert.deepEqual([doc.version, doc.pod, doc.namespace], [7, "user-service-0-7d4a", "default"]);
  const [first, second] = doc.listeners;
  assert.equal(first!.name, "sxt/listener1");
  assert.deepEqual([first!.listenerSet, first!.id, first!.config, first!.fencingToken], ["sxt", "listener1", "token…", 4]);
  assert.deepEqual([second!.config, second!.fencingToken], [null, 9]);
});

test("validUntil becomes the time left on the monotonic clock", () => {
  const wall = parseTime("2026-01-10T10:00:00Z").getTime();
  const doc = parseDocument(AGENT_DOC, 100_000, wall);
  assert.equal(doc.listeners[0]!.deadline, 104_500);
  assert.equal(doc.listeners[1]!.deadline, 103_250);
  assert.equal(doc.listeners[0]!.validUntil!.toISOString(), "2026-01-10T10:00:04.500Z");
  // Already past when it arrives: a deadline behind the monotonic clock.
  const late = parseDocument(AGENT_DOC, 100_000, parseTime("2026-01-10T10:00:05Z").getTime());
  assert.equal(late.listeners[0]!.deadline, 99_500);
});

test("times in every RFC 3339 spelling", () => {
  const t = Date.UTC(2026, 0, 10, 10, 0, 4, 500);
  for (const text of [
    "2026-01-10T10:00:04.500Z",
    "2026-01-10T10:00:04.5Z",
    "2026-01-10T10:00:04.500999999Z",
    "2026-01-10T11:00:04.500+01:00",
    "2026-01-10t10:00:04.500z",
  ]) {
    assert.equal(parseTime(text).getTime(), t, text);
  }
  assert.throws(() => parseTime("2026-01-10T10:00:04.500")); // no zone: not the node's UTC
  assert.throws(() => parseTime("soon"));
});

test("the fake sidecar writes validUntil as the agent does", () => {
  // jiff's "%Y-%m-%dT%H:%M:%S%.3fZ": UTC, milliseconds truncated (never later than the instant).
  assert.equal(rfc3339Millis(parseTime("2025-01-10T10:00:12.345Z").getTime() + 0.999), "2025-01-10T10:00:12.345Z");
  assert.equal(rfc3339Millis(parseTime("2025-01-10T10:00:12Z").getTime()), "2025-01-10T10:00:12.000Z");
});

test("an entry without validUntil never expires", () => {
  const body = '{"version": 1, "pod": "p", "namespace": "n", "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": 1}]}';
  const [entry] = parseDocument(body, 0, 0).listeners;
  assert.equal(entry!.validUntil, null);
  assert.equal(entry!.deadline, Infinity);
});

test("what is not a document is refused", () => {
  for (const body of [
    "[]",
    "not json",
    '{"version": "7", "listeners": []}',
    '{"version": 7}',
    '{"version": 7, "listeners": [{"listenerSet": "s", "id": "a"}]}',
    '{"version": 7, "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": true}]}',
    '{"version": 7, "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": 1.5}]}',
    '{"version": 7, "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": 1, "validUntil": "soon"}]}',
  ]) {
    assert.throws(() => parseDocument(body, 0, 0), Error, body);
  }
});
