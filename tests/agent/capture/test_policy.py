"""Publish policy and fps meter, driven with explicit times (no sleeping)."""

from __future__ import annotations

from glimpser.agent.capture.policy import FpsMeter, PublishPolicy
from glimpser.shared.models import Demand


def _published(policy: PublishPolicy, start: float, end: float, period: float) -> int:
    count, t = 0, start
    while t < end:
        if policy.frame_due(t):
            policy.frame_sent(t)
            count += 1
        t += period
    return count


def test_idle_sends_one_frame_per_keepalive() -> None:
    policy = PublishPolicy(period=0.1, keepalive=2.0)
    assert _published(policy, 0.0, 9.95, 0.1) == 5  # at 0, 2, 4, 6, 8 s


def test_any_live_lease_means_full_rate_until_it_expires() -> None:
    policy = PublishPolicy(period=0.1, keepalive=2.0)
    policy.add_lease(Demand(hub_id="hub-a", ttl=1.0), now=0.0)
    policy.add_lease(Demand(hub_id="hub-b", ttl=3.0), now=0.0)
    assert policy.demanded(2.5)
    assert _published(policy, 0.0, 3.0, 0.1) == 30
    assert not policy.demanded(3.01)


def test_lease_fps_is_honoured_and_the_highest_wins() -> None:
    policy = PublishPolicy(period=0.05, keepalive=5.0)
    policy.add_lease(Demand(hub_id="hub-a", ttl=10, fps=2), now=0.0)
    policy.add_lease(Demand(hub_id="hub-b", ttl=10, fps=5), now=0.0)
    assert 9 <= _published(policy, 0.0, 2.0, 0.05) <= 11


def test_snapshot_cadence_is_keepalive() -> None:
    policy = PublishPolicy(period=0.1, keepalive=1.0)
    assert policy.snapshot_due(0.0)
    policy.snapshot_sent(0.0)
    assert not policy.snapshot_due(0.5)
    assert policy.snapshot_due(0.95)


def test_fps_meter_measures_and_decays() -> None:
    meter = FpsMeter(window=5.0)
    for i in range(50):
        meter.tick(i * 0.1)
    assert abs(meter.fps(4.9) - 10.0) < 0.01
    assert meter.fps(100.0) == 0.0
