"""The alert engine: turns events, agent availability and stream states into stored alerts.

Inputs (all wired by the hub's ingest):

- ``await handle_event(event, context)`` / ``submit(event, context)``: an agent's event;
- ``agent_availability(agent, online, at)``: ``agent_offline`` once an agent stays offline for
  ``offline_delay`` (a timer, cancelled if it returns first), ``agent_online`` when it returns
  after an offline alert;
- ``stream_status(agent, stream, status, error, at)``: every error report without an
  intervening ``active`` counts as one consecutive failure and emits ``stream_error`` with
  ``data["failures"]`` (rules fire once per outage when it reaches their ``min_failures``);
  ``active`` after an alerted outage emits ``stream_recovered`` and resolves the outage's alerts.

Restarts: the in-memory watch starts empty, and retained messages replay the fleet's state. An
alert still open (new or acknowledged) in the store stands for its outage, so a replayed
``offline`` or ``error`` does not alert twice, and a first ``online`` / ``active`` report after
a restart closes an outage that ended while the hub was down.

The sync inputs only update in-memory state and queue a job; one worker runs the jobs in order,
so a recovery is always judged after the failure reports before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from glimpser.hub.alerts.channels import redact, webhook_url
from glimpser.hub.alerts.clock import Clock
from glimpser.hub.alerts.live import Broadcaster
from glimpser.hub.alerts.models import Alert, AlertRule, AlertState, WebhookChannel
from glimpser.hub.alerts.rules import EventContext, Trigger, schedule_block, selects
from glimpser.hub.alerts.settings import AlertSettings
from glimpser.hub.alerts.store import AlertStore, Firing
from glimpser.hub.alerts.text import describe
from glimpser.shared.errors import GlimpserError
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import Event

__all__ = ["AlertEngine", "ContextProvider"]

log = logging.getLogger(__name__)

ContextProvider = Callable[[str, str | None], Awaitable[EventContext]]
"""(agent_id, stream_id or None) -> what the hub knows about that stream right now; async
because the stream's tags live in the template store (one read per evaluated trigger)."""

Job = Callable[[], Awaitable[None]]


async def _no_context(agent_id: str, stream_id: str | None) -> EventContext:
    return EventContext()


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: AlertRule
    targets: tuple[tuple[str, str], ...]  # (target with secrets, redacted)


def compile_rule(rule: AlertRule) -> _Compiled:
    """A rule with its channels resolved to delivery targets and their redacted forms."""
    targets: list[tuple[str, str]] = []
    for channel in rule.channels:
        target = (
            webhook_url(channel.url, channel.secret)
            if isinstance(channel, WebhookChannel)
            else channel
        )
        targets.append((target, redact(target)))
    return _Compiled(rule, tuple(targets))


@dataclass(slots=True)
class _AgentWatch:
    timer: asyncio.Task[None] | None = None
    offline: bool = False
    alerted: bool = False


@dataclass(slots=True)
class _Outage:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    failures: int = 0
    alerted: bool = False


class AlertEngine:
    """Async context manager owning the job worker and the offline timers."""

    def __init__(
        self,
        store: AlertStore,
        settings: AlertSettings,
        clock: Clock,
        *,
        live: Broadcaster | None = None,
        contexts: ContextProvider | None = None,
        wake_dispatcher: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._live = live
        self._contexts = contexts or _no_context
        self._wake = wake_dispatcher or (lambda: None)
        self._rules: tuple[_Compiled, ...] = ()
        self._jobs: asyncio.Queue[Job] = asyncio.Queue(settings.queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._agents: dict[str, _AgentWatch] = {}
        self._outages: dict[tuple[str, str], _Outage] = {}
        self._seen: set[tuple[str, str]] = set()  # streams reported since this hub started
        self._timers: set[asyncio.Task[None]] = set()
        self._rate_log = RateLimitedLog(log)
        self.dropped = 0
        self.alerts: Counter[str] = Counter()  # created alerts by state: new / suppressed

    async def __aenter__(self) -> Self:
        await self.reload_rules()
        self._worker = asyncio.create_task(self._work(), name="alert-engine")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks = [*self._timers]
        if self._worker is not None:
            tasks.append(self._worker)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
        self._timers.clear()

    async def reload_rules(self) -> None:
        """Re-read the rules from the store (after any rule change)."""
        self.set_rules(await self._store.list_rules())

    def set_rules(self, rules: Sequence[AlertRule]) -> None:
        """Use these rules from now on."""
        self._rules = tuple(compile_rule(rule) for rule in rules)

    # ------------------------------------------------------------------ inputs

    async def handle_event(self, event: Event, context: EventContext | None = None) -> list[Alert]:
        """Evaluate an agent's event now; the alerts it created ([] for a replayed id)."""
        return await self._process(_trigger(event), context)

    def submit(self, event: Event, context: EventContext | None = None) -> None:
        """Queue an event from sync code (the MQTT router); evaluated in arrival order."""

        async def job() -> None:
            await self._process(_trigger(event), context)

        self._enqueue(job)

    def agent_availability(self, agent_id: str, online: bool, at: datetime | None = None) -> None:
        """Record an agent's availability (its LWT/online message)."""
        first = agent_id not in self._agents
        watch = self._agents.setdefault(agent_id, _AgentWatch())
        when = at or self._clock.now()
        if not online:
            if watch.offline:
                return  # a repeated offline report: the timer already runs or fired
            watch.offline = True
            watch.timer = asyncio.create_task(self._offline_after(agent_id, watch, when))
            self._timers.add(watch.timer)
            watch.timer.add_done_callback(self._timers.discard)
            return
        if not watch.offline and not first:
            return
        watch.offline = False
        if watch.timer is not None and not watch.timer.done():
            watch.timer.cancel()  # back before the delay: nothing to tell anyone
        watch.timer = None

        async def back() -> None:
            # Runs after the offline job (FIFO), so ``alerted`` is already decided. On the
            # first report since this hub started, an alert still open from before the
            # restart counts: the agent came back while the hub was down.
            if first:
                watch.alerted = await self._store.has_open("agent_offline", agent_id, None)
            if not watch.alerted:
                return
            watch.alerted = False
            trigger = _synthetic("agent_online", agent_id, None, when, {})
            await self._process(trigger, None)
            await self._resolve("agent_offline", agent_id, None)

        self._enqueue(back)

    def stream_status(
        self,
        agent_id: str,
        stream_id: str,
        status: str,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record one stream state report (call it for every report, not only changes)."""
        key = (agent_id, stream_id)
        when = at or self._clock.now()
        first = key not in self._seen
        self._seen.add(key)
        if status == "error":
            outage = self._outages.setdefault(key, _Outage())
            outage.failures += 1
            data: dict[str, str | int | float | bool | None] = {"failures": outage.failures}
            if error:
                data["error"] = error[:500]
            trigger = _synthetic("stream_error", agent_id, stream_id, when, data, outage.id)

            async def failed() -> None:
                if data["failures"] == 1:
                    # An alert still open from before a hub restart means this is the outage
                    # it already told people about.
                    outage.alerted = await self._store.has_open("stream_error", *key)
                if outage.alerted:
                    return
                if await self._process(trigger, None):
                    outage.alerted = True

            self._enqueue(failed)
        elif status == "active" and (key in self._outages or first):
            # First report since the hub started: an outage may have ended while it was down.
            outage = self._outages.pop(key) if key in self._outages else _Outage(alerted=True)

            async def recovered() -> None:
                if first and not await self._store.has_open("stream_error", *key):
                    return
                if not outage.alerted:
                    return
                data = {"failures": outage.failures}
                trigger = _synthetic("stream_recovered", agent_id, stream_id, when, data)
                await self._process(trigger, None)
                await self._resolve("stream_error", agent_id, stream_id)

            self._enqueue(recovered)
        # starting/stopping/inactive neither count as failures nor end an outage: an agent's
        # reconnect attempts go error -> starting -> error and must keep counting.

    @property
    def depth(self) -> int:
        """Jobs waiting for the worker."""
        return self._jobs.qsize()

    async def drain(self) -> None:
        """Wait until every queued job has run (tests and orderly shutdown)."""
        await self._jobs.join()

    # ------------------------------------------------------------------ work

    def _enqueue(self, job: Job) -> None:
        try:
            self._jobs.put_nowait(job)
        except asyncio.QueueFull:
            # Drop the newest: the queue is only full when the DB is stuck, and old jobs
            # (an outage start) matter more than the latest repeat.
            self.dropped += 1
            self._rate_log.warning("queue", "alert queue full; %d jobs dropped", self.dropped)

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except GlimpserError as err:
                log.error("alert job failed: %s", err)
            except Exception:
                log.exception("alert job failed")
            finally:
                self._jobs.task_done()

    async def _offline_after(self, agent_id: str, watch: _AgentWatch, since: datetime) -> None:
        await self._clock.sleep(self._settings.offline_delay)

        async def offline() -> None:
            if await self._store.has_open("agent_offline", agent_id, None):
                watch.alerted = True  # told before a hub restart: the same outage
                return
            data = {"offline_since": since.isoformat()}
            trigger = _synthetic("agent_offline", agent_id, None, since, data)
            if await self._process(trigger, None):
                watch.alerted = True

        # Once the delay has passed the alert is decided: queue it so a return right now is
        # judged after it (and never cancels a half-written alert).
        self._enqueue(offline)

    async def _process(self, trigger: Trigger, context: EventContext | None) -> list[Alert]:
        if not self._rules:
            return []  # nothing can fire: skip the context lookup
        ctx = context or await self._contexts(trigger.agent_id, trigger.stream_id)
        chosen = [c for c in self._rules if selects(c.rule, trigger, ctx)]
        if not chosen:
            return []
        now = self._clock.now()
        firings = []
        for compiled in chosen:
            title, message = describe(trigger, ctx, compiled.rule.name)
            block = schedule_block(compiled.rule.schedule, now)
            firings.append(Firing(compiled.rule, block, compiled.targets, title, message))
        snapshot = None
        if ctx.snapshot is not None and any(f.block is None and f.targets for f in firings):
            snapshot = _safe_snapshot(ctx)
        alerts = await self._store.record(trigger, ctx.name, firings, now, snapshot)
        for alert in alerts:
            self.alerts[str(alert.state)] += 1
            self._publish("alert", alert)
        if any(a.state == AlertState.NEW for a in alerts):
            self._wake()
        return alerts

    async def _resolve(self, type_: str, agent_id: str, stream_id: str | None) -> None:
        for alert in await self._store.resolve_open(type_, agent_id, stream_id, self._clock.now()):
            self._publish("alert", alert)

    def _publish(self, kind: str, alert: Alert) -> None:
        if self._live is not None:
            self._live.publish(kind, alert.model_dump(mode="json"))


def _trigger(event: Event) -> Trigger:
    data = dict(event.data)
    return Trigger(event.id, event.type, event.agent_id, event.stream_id, event.at, data)


def _synthetic(
    type_: str,
    agent_id: str,
    stream_id: str | None,
    at: datetime,
    data: Mapping[str, Any],
    dedupe: str = "",
) -> Trigger:
    return Trigger(uuid.uuid4().hex, type_, agent_id, stream_id, at, dict(data), dedupe)


def _safe_snapshot(ctx: EventContext) -> bytes | None:
    assert ctx.snapshot is not None
    with contextlib.suppress(Exception):
        # A broken frame source must not cost the alert; it is sent without a picture.
        jpeg = ctx.snapshot()
        return jpeg if jpeg else None
    log.warning("could not fetch the snapshot for an alert; sending without it")
    return None
