"""The alerts facade the hub wires in: store, engine, dispatcher and live updates together."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from glimpser.hub.alerts.channels import webhook_url
from glimpser.hub.alerts.clock import Clock, SystemClock
from glimpser.hub.alerts.dispatch import Dispatcher
from glimpser.hub.alerts.engine import AlertEngine, ContextProvider
from glimpser.hub.alerts.live import Broadcaster
from glimpser.hub.alerts.models import (
    Alert,
    AlertRule,
    AlertState,
    Channel,
    RuleSpec,
    WebhookChannel,
)
from glimpser.hub.alerts.settings import AlertSettings
from glimpser.hub.alerts.store import AlertStore, Claimed
from glimpser.hub.store.db import Database

__all__ = ["AlertService"]

StreamResolver = Callable[[str], str]
"""Maps a stream reference from a URL to the canonical ``agent.stream`` (NotFoundError if
unknown); the default keeps the reference as given (``stream`` or ``agent.stream``)."""


class AlertService:
    """Async context manager: migrates the alert tables, runs the engine and the dispatcher."""

    def __init__(
        self,
        db: Database,
        settings: AlertSettings | None = None,
        *,
        clock: Clock | None = None,
        contexts: ContextProvider | None = None,
        resolve_stream: StreamResolver | None = None,
    ) -> None:
        self.settings = settings or AlertSettings()
        self.clock: Clock = clock or SystemClock()
        self.store = AlertStore(db)
        self.live = Broadcaster(self.settings.live_queue)
        self.dispatcher = Dispatcher(
            self.store, self.settings, self.clock, on_attempt=self._attempted
        )
        self.engine = AlertEngine(
            self.store,
            self.settings,
            self.clock,
            live=self.live,
            contexts=contexts,
            wake_dispatcher=self.dispatcher.wake,
        )
        self._resolve_stream = resolve_stream or (lambda ref: ref)
        self.deliveries: Counter[str] = Counter()  # attempts by outcome: sent/retrying/failed
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        await self.store.migrate()
        retention = timedelta(days=self.settings.event_retention_days)
        await self.store.prune(self.clock.now() - retention)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.dispatcher)
            await stack.enter_async_context(self.engine)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.close()
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    def publish(self, kind: str, data: Any) -> None:
        """Push a live update (e.g. ``"stream"`` state changes) to every SSE listener."""
        self.live.publish(kind, data)

    # ------------------------------------------------------------------ rules

    async def create_rule(self, spec: RuleSpec) -> AlertRule:
        """Store a rule and start using it."""
        rule = await self.store.create_rule(spec, self.clock.now())
        await self._rules_changed()
        return rule

    async def replace_rule(self, rule_id: str, spec: RuleSpec) -> AlertRule:
        """Replace a rule's spec."""
        rule = await self.store.replace_rule(rule_id, spec, self.clock.now())
        await self._rules_changed()
        return rule

    async def delete_rule(self, rule_id: str) -> None:
        """Delete a rule (its alert history stays)."""
        await self.store.delete_rule(rule_id)
        await self._rules_changed()

    async def snooze_rule(self, rule_id: str, minutes: int) -> AlertRule:
        """Hold a rule's notifications for ``minutes`` (0 ends the snooze)."""
        await self.store.get_rule(rule_id)  # NotFoundError before writing anything
        await self.store.snooze("rule", rule_id, self._until(minutes))
        await self._rules_changed()
        return await self.store.get_rule(rule_id)

    async def snooze_stream(self, ref: str, minutes: int) -> dict[str, Any]:
        """Hold every rule's notifications for one stream; returns the canonical ref and until."""
        target = self._resolve_stream(ref)
        until = self._until(minutes)
        await self.store.snooze("stream", target, until)
        return {"stream": target, "snoozed_until": until.isoformat() if until else None}

    # ------------------------------------------------------------------ alerts

    async def set_state(self, alert_id: str, state: AlertState) -> Alert:
        """Acknowledge or resolve an alert and tell live listeners."""
        alert = await self.store.set_state(alert_id, state, self.clock.now())
        self.live.publish("alert", alert.model_dump(mode="json"))
        return alert

    async def test_channel(self, channel: Channel) -> str | None:
        """Send a test message; the channel's error, or None when it was accepted."""
        target = (
            webhook_url(channel.url, channel.secret)
            if isinstance(channel, WebhookChannel)
            else channel
        )
        return await self.dispatcher.send_test(target)

    # ------------------------------------------------------------------ internals

    def _until(self, minutes: int) -> Any:
        return self.clock.now() + timedelta(minutes=minutes) if minutes > 0 else None

    async def _rules_changed(self) -> None:
        await self.engine.reload_rules()

    def _attempted(self, claimed: Claimed, error: str | None, retrying: bool) -> None:
        status = "sent" if error is None else ("retrying" if retrying else "failed")
        self.deliveries[status] += 1
        self.live.publish(
            "delivery",
            {
                "id": claimed.id,
                "alert_id": claimed.alert_id,
                "channel": claimed.channel,
                "attempt": claimed.attempt,
                "status": status,
                "error": error,
            },
        )
