"""Reconnect backoff: exponential, capped, jittered, reset after success."""

from __future__ import annotations

import random

from glimpser.shared.backoff import Backoff


def test_delays_stay_within_the_exponential_window() -> None:
    b = Backoff(base=0.5, cap=30.0, factor=2.0, rng=random.Random(1))
    for n in range(20):
        ceiling = min(30.0, 0.5 * 2.0**n)
        delay = b.next_delay()
        assert min(0.25, ceiling) <= delay <= ceiling
    assert b.attempts == 20


def test_delays_grow_then_are_capped() -> None:
    b = Backoff(base=1.0, cap=10.0, rng=random.Random(2))
    delays = [b.next_delay() for _ in range(50)]
    assert max(delays) <= 10.0
    assert max(delays[10:]) > 5.0  # reaches the cap region
    assert all(d <= 1.0 for d in delays[:1])


def test_jitter_spreads_a_fleet() -> None:
    # Many agents failing at once must not retry in lockstep.
    third = []
    for seed in range(50):
        b = Backoff(rng=random.Random(seed))
        b.next_delay()
        b.next_delay()
        third.append(b.next_delay())
    assert len({round(d, 6) for d in third}) > 40


def test_same_seed_same_delays() -> None:
    a = Backoff(rng=random.Random(7))
    b = Backoff(rng=random.Random(7))
    assert [a.next_delay() for _ in range(10)] == [b.next_delay() for _ in range(10)]


def test_reset_and_first_failure() -> None:
    b = Backoff(base=1.0, cap=60.0, rng=random.Random(3))
    assert b.first_failure
    for _ in range(8):
        b.next_delay()
    assert not b.first_failure
    b.reset()
    assert b.first_failure
    assert b.attempts == 0
    assert b.next_delay() <= 1.0


def test_cap_below_half_base_is_still_honoured() -> None:
    b = Backoff(base=10.0, cap=1.0, rng=random.Random(4))
    assert all(d <= 1.0 for d in (b.next_delay() for _ in range(5)))


def test_long_outage_never_overflows() -> None:
    b = Backoff(rng=random.Random(5))
    for _ in range(1100):
        assert b.next_delay() <= b.cap
