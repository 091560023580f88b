"""Alert rules, alerts and deliveries as the API and the store see them (extra fields forbidden)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator, model_validator

from glimpser.hub.alerts.channels import check_channel_url, check_webhook_url
from glimpser.shared.ids import Id
from glimpser.shared.models import Model, Tag

EventType = Literal[
    "motion", "page_changed", "stream_error", "stream_recovered", "agent_offline", "agent_online"
]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
AGENT_EVENTS: frozenset[str] = frozenset({"agent_offline", "agent_online"})

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)

Suppression = Literal["quiet_hours", "schedule", "snoozed"]

HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])]
_STREAM_REF = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}(\.[a-z0-9][a-z0-9_-]{0,62})?$")


def _stream_ref(ref: str) -> str:
    if not _STREAM_REF.fullmatch(ref):
        raise ValueError("expected a stream id or agent.stream")
    return ref


StreamRef = Annotated[str, AfterValidator(_stream_ref)]
ChannelUrl = Annotated[str, Field(min_length=3, max_length=4096), AfterValidator(check_channel_url)]


class QuietHours(Model):
    """A daily window (local time) in which alerts are recorded but not sent; may wrap midnight."""

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class Schedule(Model):
    """When a rule may notify: active weekdays and quiet hours, in ``timezone``."""

    quiet_hours: QuietHours | None = None
    weekdays: list[Weekday] | None = Field(None, min_length=1, max_length=7)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {name!r}") from err
        return name


class WebhookChannel(Model):
    """Glimpser's signed webhook: JSON POST with an HMAC-SHA256 signature."""

    type: Literal["webhook"]
    url: Annotated[str, Field(max_length=4096), AfterValidator(check_webhook_url)]
    secret: Annotated[str, Field(min_length=16, max_length=512)]


Channel = ChannelUrl | WebhookChannel


class RuleSpec(Model):
    """What a user writes: which events, from where, when, and to which channels."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    channels: list[Channel] = Field(
        max_length=20, description="apprise URLs or webhooks; empty records alerts only"
    )
    streams: list[StreamRef] = Field(default_factory=list, max_length=500)
    agents: list[Id] = Field(default_factory=list, max_length=500)
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    cooldown: float = Field(300.0, ge=0, le=7 * 86400, description="seconds per stream")
    min_duration: float | None = Field(None, ge=0, le=86400, description="data.duration >= this")
    min_failures: int = Field(1, ge=1, le=1000, description="consecutive stream errors")
    schedule: Schedule | None = None
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError("the name must be a printable one-liner without outer spaces")
        return name

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[EventType]) -> list[EventType]:
        return list(dict.fromkeys(events))


class AlertRule(RuleSpec):
    """A stored rule."""

    id: str
    created_at: datetime
    updated_at: datetime
    snoozed_until: datetime | None = None


class AlertState(StrEnum):
    """Lifecycle of an alert; ``suppressed`` ones were recorded but never sent."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"


class Alert(Model):
    """One firing (or recorded suppression) of a rule for one event."""

    id: str
    rule_id: str
    rule_name: str
    type: str
    agent_id: str
    stream_id: str | None
    stream_name: str | None
    event_id: str
    event_at: datetime
    fired_at: datetime
    state: AlertState
    suppressed: Suppression | None = None
    repeats: int = Field(0, description="matching events folded in by the cooldown")
    title: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
    has_snapshot: bool = False
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


DeliveryStatus = Literal["pending", "sending", "sent", "failed"]


class DeliveryAttempt(Model):
    """One try to send one alert to one channel."""

    attempt: int
    status: Literal["ok", "error"]
    error: str | None = None
    at: datetime


class Delivery(Model):
    """An alert's delivery to one channel (secrets redacted) and its attempts."""

    id: int
    alert_id: str
    channel: str
    status: DeliveryStatus
    attempts: int
    next_at: datetime | None
    created_at: datetime
    last_error: str | None = None
    history: list[DeliveryAttempt] = Field(default_factory=list)


class AlertDetail(Alert):
    """An alert with its deliveries."""

    deliveries: list[Delivery] = Field(default_factory=list)


class AlertPage(Model):
    """A page of alerts, newest first; pass ``next`` as ``before`` for the following page."""

    items: list[Alert]
    next: str | None = None


class SnoozeBody(Model):
    """``POST .../snooze``: minutes to stay quiet; 0 ends a snooze."""

    minutes: int = Field(ge=0, le=30 * 24 * 60)


class ChannelTestBody(Model):
    """``POST /api/alert-channels/test``."""

    url: Channel
