"""Retries wait a jittered, growing, capped time."""

from __future__ import annotations

import random

import pytest

from baton_listeners import Backoff


def test_each_delay_lies_between_half_the_ceiling_and_the_ceiling() -> None:
    b = Backoff(base=0.05, cap=1.0)
    rng = random.Random(7)
    for attempt in range(1, 40):
        ceiling = min(1.0, 0.05 * 2 ** (attempt - 1))
        assert b.ceiling(attempt) == pytest.approx(ceiling)
        assert b.delay(attempt, lambda: 0.0) == pytest.approx(ceiling / 2)
        assert b.delay(attempt, lambda: 1.0) == pytest.approx(ceiling)
        for _ in range(200):
            d = b.delay(attempt, rng.random)
            assert ceiling / 2 <= d <= ceiling


def test_delays_grow_to_the_cap_and_stay_there() -> None:
    b = Backoff(base=0.05, cap=1.0)
    ceilings = [b.ceiling(n) for n in range(1, 10)]
    assert ceilings[:5] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])
    assert ceilings[5:] == [1.0] * 4
    assert b.ceiling(10_000) == 1.0  # no overflow however long the sidecar is gone


def test_delays_are_spread_so_clients_do_not_retry_in_lockstep() -> None:
    b = Backoff(base=0.05, cap=1.0)
    delays = [b.delay(8) for _ in range(500)]
    assert max(delays) - min(delays) > 0.3  # the whole [0.5, 1.0] band is used
    assert len({round(d, 6) for d in delays}) > 450
