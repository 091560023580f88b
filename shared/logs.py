"""One logging setup for every Glimpser process, and a helper that logs repeats quietly."""

from __future__ import annotations

import logging
import sys
import time


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr in a journald-friendly one-line format."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    # Third-party chatter that says nothing an operator can act on.
    for name in ("amqtt", "transitions", "aiohttp.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


_MAX_KEYS = 1024


class RateLimitedLog:
    """Logs the first occurrence of each key loudly and repeats at most once per ``every`` s."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger = logger
        self._every = every
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log at WARNING unless ``key`` was logged less than ``every`` seconds ago."""
        now = time.monotonic()
        if len(self._last) >= _MAX_KEYS and key not in self._last:
            # Keys can come from hostile input (topics): forget old ones instead of growing.
            self._last.clear()
            self._suppressed.clear()
        last = self._last.get(key)
        if last is not None and now - last < self._every:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        skipped = self._suppressed.pop(key, 0)
        self._last[key] = now
        if skipped:
            msg += f" ({skipped} similar messages suppressed)"
        self._logger.warning(msg, *args)
