"""Alerts: rules over agent events, alert history, durable dispatch and live updates.

Wiring (see ``glimpser.hub.http.alerts`` for the routes and the cleanup context)::

    service = AlertService(db, AlertSettings(), contexts=..., resolve_stream=...)
    async with service:
        await service.engine.handle_event(event, context)
        service.engine.agent_availability(agent, online, at)
        service.engine.stream_status(agent, stream, status, error, at)
        service.publish("stream", {...})
"""

from glimpser.hub.alerts.clock import Clock, ManualClock, SystemClock
from glimpser.hub.alerts.engine import AlertEngine, ContextProvider
from glimpser.hub.alerts.live import Broadcaster
from glimpser.hub.alerts.models import EVENT_TYPES, Alert, AlertRule, AlertState, RuleSpec
from glimpser.hub.alerts.rules import EventContext
from glimpser.hub.alerts.service import AlertService
from glimpser.hub.alerts.settings import AlertSettings

__all__ = [
    "EVENT_TYPES",
    "Alert",
    "AlertEngine",
    "AlertRule",
    "AlertService",
    "AlertSettings",
    "AlertState",
    "Broadcaster",
    "Clock",
    "ContextProvider",
    "EventContext",
    "ManualClock",
    "RuleSpec",
    "SystemClock",
]
