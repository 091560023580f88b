"""Capped exponential backoff with full jitter, shared by every reconnect loop."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays for retry ``n``: uniform(base/2, min(cap, base * factor**n)).

    Jitter keeps a fleet of agents from hammering a broker in lockstep after it restarts.
    """

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """Delay before the next attempt; advances the attempt counter."""
        # Cap the exponent too: factor**attempts overflows a float after ~1024 failures.
        exponent = min(self.attempts, 64)
        ceiling = min(self.cap, self.base * self.factor**exponent)
        self.attempts += 1
        return self.rng.uniform(min(self.base / 2, ceiling), ceiling)

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.attempts = 0

    @property
    def first_failure(self) -> bool:
        """True before the first delay was handed out (log loudly once, then quietly)."""
        return self.attempts == 0
