"""Pure parts: rule selection, schedules, channel parsing and redaction, webhook signing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from glimpser.hub.alerts.channels import check_channel_url, redact, webhook_target, webhook_url
from glimpser.hub.alerts.models import RuleSpec, Schedule
from glimpser.hub.alerts.rules import EventContext, Trigger, schedule_block, selects
from glimpser.hub.alerts.webhook import body, sign, verify

SECRET = "0123456789abcdef"


def spec(**kw: Any) -> RuleSpec:
    return RuleSpec.model_validate({"name": "r", "events": ["motion"], "channels": [], **kw})


def trig(type_: str = "motion", stream: str | None = "cam", **data: Any) -> Trigger:
    return Trigger("e1", type_, "a1", stream, datetime(2024, 1, 1, tzinfo=UTC), data)


@pytest.mark.parametrize(
    ("rule", "trigger", "expected"),
    [
        ({}, trig(), True),
        ({"enabled": False}, trig(), False),
        ({}, trig("page_changed"), False),
        ({"streams": ["cam"]}, trig(), True),
        ({"streams": ["a1.cam"]}, trig(), True),
        ({"streams": ["a2.cam"]}, trig(), False),
        ({"agents": ["a2"]}, trig(), False),
        ({"min_duration": 5}, trig(duration=5), True),
        ({"min_duration": 5}, trig(duration=4.9), False),
        ({"min_duration": 5}, trig(duration=True), False),
        ({"events": ["stream_error"], "min_failures": 3}, trig("stream_error", failures=2), False),
        ({"events": ["stream_error"], "min_failures": 3}, trig("stream_error", failures=3), True),
        ({"events": ["agent_offline"], "streams": ["cam"]}, trig("agent_offline", None), False),
    ],
)
def test_selects(rule: dict[str, Any], trigger: Trigger, expected: bool) -> None:
    assert selects(spec(**rule), trigger, EventContext()) is expected


def test_tags_match_any_case_insensitively() -> None:
    rule = spec(tags=["Garden", "yard"])
    assert selects(rule, trig(), EventContext(tags=frozenset({"garden"})))
    assert not selects(rule, trig(), EventContext(tags=frozenset({"indoor"})))


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2024-01-01T20:59", None),  # 21:59 Berlin
        ("2024-01-01T21:00", "quiet_hours"),  # 22:00
        ("2024-01-02T05:59", "quiet_hours"),  # 06:59, after midnight
        ("2024-01-02T06:00", None),  # 07:00
        ("2024-01-06T12:00", "schedule"),  # Saturday
    ],
)
def test_schedule(utc: str, expected: str | None) -> None:
    schedule = Schedule.model_validate(
        {
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            "timezone": "Europe/Berlin",
        }
    )
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert schedule_block(schedule, now) == expected


def test_channel_urls() -> None:
    assert check_channel_url("json://localhost:8080/hook")
    assert check_channel_url("ntfy://my-topic")
    with pytest.raises(ValueError, match="unknown channel scheme"):
        check_channel_url("gopher://x")
    hook = webhook_url("https://example.com/in?a=1", SECRET)
    target = webhook_target(hook)
    assert target is not None and target.url == "https://example.com/in?a=1"
    assert target.secret == SECRET
    assert webhook_target("json://x") is None


def test_redaction_hides_secrets() -> None:
    assert SECRET not in redact(f"glimpser-webhook://h:1/p?secret={SECRET}")
    masked = redact("mailto://user:hunter2@mail.example.com?to=a@example.com")
    assert "hunter2" not in masked and masked.startswith("mailto")
    assert "tok" not in redact("unknown://user:tok@host/tokpath")


def test_signature_roundtrip_and_replay_guard() -> None:
    now = int(time.time())
    raw = body(
        kind="test", delivery="d1", timestamp=now, title="t", message="m", alert=None,
        snapshot=b"\xff\xd8",
    )  # fmt: skip
    headers = {"X-Glimpser-Signature": sign(SECRET, raw), "X-Glimpser-Timestamp": str(now)}
    assert verify(SECRET, raw, headers, now=now)["delivery"] == "d1"
    with pytest.raises(ValueError, match="signature"):
        verify("another-secret-xx", raw, headers, now=now)
    with pytest.raises(ValueError, match="timestamp"):
        verify(SECRET, raw, {**headers, "X-Glimpser-Timestamp": str(now + 1)}, now=now)
    with pytest.raises(ValueError, match="stale"):
        verify(SECRET, raw, headers, now=now + 3600)
