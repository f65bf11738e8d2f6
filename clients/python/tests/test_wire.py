"""The sidecar's document, as the agent writes it, and validUntil on the monotonic clock."""

from __future__ import annotations

import datetime
import json
import math

import pytest

from baton_listeners import ListenerId, parse_document, parse_time
from fake_sidecar import rfc3339_millis

# The agent's document as docs/listeners.md shows it, pretty-printed as the agent renders it.
AGENT_DOC = json.dumps(
    {
        "version": 7,
        "pod": "user-service-0-7d4a",
        "namespace": "default",
        "listeners": [
            {
                "listenerSet": "sxt",
                "id": "listener1",
                "config": "token…",
                "fencingToken": 4,
                "validUntil": "2026-01-10T10:00:04.500Z",
            },
            {"listenerSet": "sxt", "id": "listener2", "fencingToken": 9, "validUntil": "2026-01-10T10:00:03.250Z"},
        ],
        "validUntil": "2026-01-10T10:00:03.250Z",
    },
    indent=2,
    ensure_ascii=False,
).encode() + b"\n"


def test_the_agents_document_is_read_with_each_listener_and_token() -> None:
    doc = parse_document(AGENT_DOC, mono_now=100.0, wall_now=parse_time("2026-01-10T10:00:00Z").timestamp())
    assert (doc.version, doc.pod, doc.namespace) == (7, "user-service-0-7d4a", "default")
    first, second = doc.listeners
    assert first.listener == ListenerId("sxt", "listener1") and str(first.listener) == "sxt/listener1"
    assert (first.config, first.fencing_token) == ("token…", 4)
    assert second.config is None and second.fencing_token == 9


def test_valid_until_becomes_the_time_left_on_the_monotonic_clock() -> None:
    # Received at wall 10:00:00.000, monotonic 100: 4.5 s and 3.25 s left.
    doc = parse_document(AGENT_DOC, mono_now=100.0, wall_now=parse_time("2026-01-10T10:00:00Z").timestamp())
    assert doc.listeners[0].deadline == pytest.approx(104.5)
    assert doc.listeners[1].deadline == pytest.approx(103.25)
    assert doc.listeners[0].valid_until == datetime.datetime(2026, 1, 10, 10, 0, 4, 500000, datetime.timezone.utc)
    # Already past when it arrives: a deadline behind the monotonic clock.
    late = parse_document(AGENT_DOC, mono_now=100.0, wall_now=parse_time("2026-01-10T10:00:05Z").timestamp())
    assert late.listeners[0].deadline == pytest.approx(99.5)


def test_times_in_every_rfc3339_spelling() -> None:
    t = datetime.datetime(2026, 1, 10, 10, 0, 4, 500000, datetime.timezone.utc)
    for text in ["2026-01-10T10:00:04.500Z", "2026-01-10T10:00:04.5Z", "2026-01-10T10:00:04.500000000Z",
                 "2026-01-10T11:00:04.500+01:00", "2026-01-10t10:00:04.500z".upper()]:
        assert parse_time(text) == t, text
    with pytest.raises(ValueError):
        parse_time("2026-01-10T10:00:04.500")  # no zone: not the node's UTC


def test_the_fake_sidecar_writes_valid_until_as_the_agent_does() -> None:
    # jiff's "%Y-%m-%dT%H:%M:%S%.3fZ": UTC, milliseconds truncated (never later than the instant).
    epoch = parse_time("2025-01-10T10:00:12.345999Z").timestamp()
    assert rfc3339_millis(epoch) == "2025-01-10T10:00:12.345Z"
    assert rfc3339_millis(parse_time("2025-01-10T10:00:12Z").timestamp()) == "2025-01-10T10:00:12.000Z"


def test_an_entry_without_valid_until_never_expires() -> None:
    body = b'{"version": 1, "pod": "p", "namespace": "n", "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": 1}]}'
    (entry,) = parse_document(body, mono_now=0.0, wall_now=0.0).listeners
    assert entry.valid_until is None and math.isinf(entry.deadline)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"not json",
        b'{"version": "7", "listeners": []}',
        b'{"version": 7}',
        b'{"version": 7, "listeners": [{"listenerSet": "s", "id": "a"}]}',
        b'{"version": 7, "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": true}]}',
        b'{"version": 7, "listeners": [{"listenerSet": "s", "id": "a", "fencingToken": 1, "validUntil": "soon"}]}',
    ],
)
def test_what_is_not_a_document_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_document(body, mono_now=0.0, wall_now=0.0)
