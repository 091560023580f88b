"""Human-readable titles and messages for alerts (plain text: email, SMS and push alike)."""

from __future__ import annotations

from glimpser.hub.alerts.rules import EventContext, Trigger

_WHAT = {
    "motion": "Motion",
    "page_changed": "Page changed",
    "stream_error": "Stream failing",
    "stream_recovered": "Stream recovered",
    "agent_offline": "Agent offline",
    "agent_online": "Agent back online",
}


def describe(trigger: Trigger, ctx: EventContext, rule_name: str) -> tuple[str, str]:
    """(title, message) for one alert."""
    what = _WHAT.get(trigger.type, trigger.type.replace("_", " ").capitalize())
    if trigger.stream_id is None:
        where = f"agent {trigger.agent_id}"
        title = f"[Glimpser] {what}: {trigger.agent_id}"
    else:
        name = ctx.name or trigger.stream_id
        where = f"{name} (agent {trigger.agent_id}, stream {trigger.stream_id})"
        title = f"[Glimpser] {what}: {name}"
    lines = [f"{what} on {where} at {trigger.at:%Y-%m-%d %H:%M:%S %Z}."]
    lines += [f"{key}: {value}" for key, value in sorted(trigger.data.items())]
    lines.append(f"Rule: {rule_name}")
    return title, "\n".join(lines)
