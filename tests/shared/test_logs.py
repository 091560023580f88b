"""Logging setup and the rate-limited warning helper."""

from __future__ import annotations

import logging

import pytest

from glimpser.shared.logs import RateLimitedLog, setup_logging


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("glimpser.shared.logs.time.monotonic", c)
    return c


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_first_occurrence_logs_then_repeats_are_suppressed(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log = RateLimitedLog(logging.getLogger("t.rate"), every=60)
    with caplog.at_level(logging.WARNING, "t.rate"):
        log.warning("bad-topic", "bad topic %s", "a")
        clock.now += 1
        log.warning("bad-topic", "bad topic %s", "b")
        clock.now += 58
        log.warning("bad-topic", "bad topic %s", "c")
    assert messages(caplog) == ["bad topic a"]


def test_repeat_after_the_interval_reports_the_suppressed_count(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log = RateLimitedLog(logging.getLogger("t.rate2"), every=10)
    with caplog.at_level(logging.WARNING, "t.rate2"):
        log.warning("k", "broker down")
        for _ in range(3):
            clock.now += 1
            log.warning("k", "broker down")
        clock.now += 10
        log.warning("k", "broker down")
        clock.now += 10
        log.warning("k", "broker down")
    assert messages(caplog) == [
        "broker down",
        "broker down (3 similar messages suppressed)",
        "broker down",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_keys_are_independent(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger("t.rate3"), every=60)
    with caplog.at_level(logging.WARNING, "t.rate3"):
        log.warning("a", "first %d", 1)
        log.warning("b", "second %d", 2)
        log.warning("a", "first %d", 3)
    assert messages(caplog) == ["first 1", "second 2"]


def test_setup_logging_sets_levels() -> None:
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    quiet = {
        name: logging.getLogger(name).level for name in ("amqtt", "transitions", "aiohttp.access")
    }
    try:
        setup_logging("debug")
        assert root.level == logging.DEBUG
        assert logging.getLogger("amqtt").level == logging.WARNING
        setup_logging("error")
        assert logging.getLogger("aiohttp.access").level == logging.ERROR
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
