"""Pure rule matching: which rules an event selects and whether a schedule holds it back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from glimpser.hub.alerts.models import WEEKDAYS, RuleSpec, Schedule, Suppression

__all__ = ["EventContext", "Trigger", "schedule_block", "selected", "selects", "stream_ref_matches"]


@dataclass(frozen=True, slots=True)
class EventContext:
    """What the hub knows about the event's stream: its name, tags and latest JPEG."""

    name: str | None = None
    tags: frozenset[str] = frozenset()
    snapshot: Callable[[], bytes | None] | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """An event as the engine evaluates it; agent events have no stream.

    ``dedupe_key`` is what a rule fires at most once for: the event id, or the outage id for
    ``stream_error`` so one outage alerts once however many error reports it produces.
    """

    id: str
    type: str
    agent_id: str
    stream_id: str | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str = ""

    @property
    def key(self) -> str:
        """The dedupe key (the event id unless set)."""
        return self.dedupe_key or self.id


def stream_ref_matches(ref: str, agent_id: str, stream_id: str) -> bool:
    """``ref`` is ``stream`` (any agent) or ``agent.stream``."""
    if "." in ref:
        return ref == f"{agent_id}.{stream_id}"
    return ref == stream_id


def selects(rule: RuleSpec, trigger: Trigger, ctx: EventContext) -> bool:
    """True when the rule is enabled and its type, place and threshold filters all pass."""
    if not rule.enabled or trigger.type not in rule.events:
        return False
    if rule.agents and trigger.agent_id not in rule.agents:
        return False
    if rule.streams and not (
        trigger.stream_id is not None
        and any(stream_ref_matches(r, trigger.agent_id, trigger.stream_id) for r in rule.streams)
    ):
        return False
    # Tags are groups: any shared tag is enough (case-insensitive, as tags are shown).
    if rule.tags and not {t.casefold() for t in rule.tags} & {t.casefold() for t in ctx.tags}:
        return False
    return _threshold(rule, trigger)


def _threshold(rule: RuleSpec, trigger: Trigger) -> bool:
    if rule.min_duration is not None and trigger.type not in ("stream_error", "stream_recovered"):
        duration = trigger.data.get("duration")
        # An event that does not say how long it lasted cannot prove it lasted long enough.
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            return False
        if duration < rule.min_duration:
            return False
    if trigger.type == "stream_error":
        failures = trigger.data.get("failures", 1)
        if not isinstance(failures, int) or failures < rule.min_failures:
            return False
    return True


def selected(rules: Iterable[RuleSpec], trigger: Trigger, ctx: EventContext) -> list[RuleSpec]:
    """The rules that select ``trigger``, in the given order."""
    return [rule for rule in rules if selects(rule, trigger, ctx)]


def schedule_block(schedule: Schedule | None, now: datetime) -> Suppression | None:
    """Why the schedule holds an alert back at ``now`` ("schedule", "quiet_hours"), or None."""
    if schedule is None:
        return None
    local = now.astimezone(ZoneInfo(schedule.timezone))
    if schedule.weekdays is not None and WEEKDAYS[local.weekday()] not in schedule.weekdays:
        return "schedule"
    quiet = schedule.quiet_hours
    if quiet is not None and _within(local.time(), _hhmm(quiet.start), _hhmm(quiet.end)):
        return "quiet_hours"
    return None


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _within(now: time, start: time, end: time) -> bool:
    now = now.replace(tzinfo=None)
    if start < end:
        return start <= now < end
    # Wraps midnight: 22:00-07:00 holds 23:30 and 06:59.
    return now >= start or now < end
