"""When to publish: every capture while a viewer holds a demand lease, else keep-alive frames."""

from __future__ import annotations

from collections import deque

from glimpser.shared.models import Demand


class FpsMeter:
    """Measured rate of completed captures over a sliding window of ``window`` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        self._window = window
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        """Record one completed capture at monotonic time ``now``."""
        self._times.append(now)
        self._trim(now)

    def fps(self, now: float) -> float:
        """Captures per second over the window; 0 when captures stopped."""
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        """Forget past captures."""
        self._times.clear()

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self._window:
            self._times.popleft()


class PublishPolicy:
    """Decides which captures become published frames and snapshots (DESIGN §3).

    Leases are keyed by hub id and timed on the agent's monotonic clock from receipt, so hub/agent
    clock skew cannot stretch or shorten them. Any live lease counts; the highest rate wins.
    """

    def __init__(self, period: float, keepalive: float) -> None:
        self._period = period
        self._keepalive = keepalive
        self._leases: dict[str, tuple[float, float | None]] = {}  # hub -> (expiry, fps)
        self._frame_at: float | None = None
        self._snapshot_at: float | None = None

    def add_lease(self, demand: Demand, now: float) -> None:
        """Renew or add the lease of ``demand.hub_id`` for ``demand.ttl`` seconds from ``now``."""
        self._leases[demand.hub_id] = (now + demand.ttl, demand.fps)

    def demanded(self, now: float) -> bool:
        """True while any lease is live."""
        self._leases = {hub: lease for hub, lease in self._leases.items() if lease[0] > now}
        return bool(self._leases)

    def frame_due(self, now: float) -> bool:
        """True when a capture at ``now`` should be published as a frame."""
        interval = self._demand_interval(now) if self.demanded(now) else self._keepalive
        return self._due(self._frame_at, interval, now)

    def keepalive_due(self, now: float) -> bool:
        """True when a frame is owed as the keep-alive, even if nothing changed since the last."""
        return self._due(self._frame_at, self._keepalive, now)

    def snapshot_due(self, now: float) -> bool:
        """True when the retained snapshot should be refreshed (keep-alive cadence)."""
        return self._due(self._snapshot_at, self._keepalive, now)

    def frame_lost(self) -> None:
        """Make the next capture a frame again (the last one may never have left the agent)."""
        self._frame_at = None

    def frame_sent(self, now: float) -> None:
        """Record that a frame was published at ``now``."""
        self._frame_at = now

    def snapshot_sent(self, now: float) -> None:
        """Record that a snapshot was published at ``now``."""
        self._snapshot_at = now

    def _demand_interval(self, now: float) -> float:
        rates = [fps for _expiry, fps in self._leases.values()]
        if any(fps is None for fps in rates):
            return 0.0
        return 1.0 / max(fps for fps in rates if fps is not None)

    def _due(self, last: float | None, interval: float, now: float) -> bool:
        # Half a capture period of slack: captures land on a grid, and without it a cadence
        # that is a multiple of the period would slip one capture late every time.
        return last is None or now - last >= interval - self._period / 2
