"""Builds the aiohttp app; ties storage, broker, ingest and relay lifecycles to it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from glimpser.hub.alerts.context import StreamContexts
from glimpser.hub.alerts.service import AlertService
from glimpser.hub.assign import Assigner
from glimpser.hub.broker import EmbeddedBroker
from glimpser.hub.config import HubSettings
from glimpser.hub.http import agents, captures, templates
from glimpser.hub.http.alerts import ALERTS, alert_routes, alerts_ctx, close_live
from glimpser.hub.http.errors import error_middleware
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.http.routes import routes
from glimpser.hub.ingest.feed import StreamFeed
from glimpser.hub.ingest.jobs import JobQueue
from glimpser.hub.ingest.link import BrokerLink
from glimpser.hub.ingest.mqtt import MqttIngest
from glimpser.hub.ingest.persist import Persister
from glimpser.hub.ingest.router import Router
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.demand import DemandLeases
from glimpser.hub.relay.relay import Relay
from glimpser.hub.store.captures import CaptureStore, SqliteCaptureIndex
from glimpser.hub.store.db import Database
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.retention import RetentionSettings, RetentionWorker, template_policies
from glimpser.hub.store.templates import SqliteTemplates
from glimpser.shared.errors import ConfigError, TransportError
from glimpser.shared.models import Command, Demand, SnoozeRequest
from glimpser.shared.topics import Topics

_LOGGER = logging.getLogger(__name__)
DB_FILE = "hub.db"


class _LateLink:
    """Forwards to the real link once the ingest is up (the app exists before it connects)."""

    def __init__(self) -> None:
        self.target: BrokerLink | None = None

    @property
    def connected(self) -> bool:
        return self.target is not None and self.target.connected

    async def publish_command(self, agent: str, stream: str, command: Command) -> None:
        await self._get().publish_command(agent, stream, command)

    async def publish_demand(self, agent: str, stream: str, demand: Demand) -> None:
        await self._get().publish_demand(agent, stream, demand)

    async def publish_retained(self, topic: str, payload: bytes) -> None:
        await self._get().publish_retained(topic, payload)

    def _get(self) -> BrokerLink:
        if self.target is None:
            raise TransportError("the hub is not connected to a broker yet")
        return self.target


def create_app(settings: HubSettings, *, link: BrokerLink | None = None) -> web.Application:
    """The hub app; with ``link`` given, no broker or MQTT client is started (tests feed
    ``app[HUB].router`` directly). The database lives in ``settings.data_dir`` either way."""
    late = _LateLink()
    hub = _build(settings, link if link is not None else late)
    app = web.Application(middlewares=[error_middleware])
    app[HUB] = hub
    app[ALERTS] = hub.alerts
    app.add_routes(agents.routes)
    app.add_routes(templates.routes)
    app.add_routes(captures.routes)
    app.add_routes(alert_routes)
    app.add_routes(routes)
    app.cleanup_ctx.append(_storage_ctx)
    # After the database opens and before ingest starts: the router feeds the engine.
    app.cleanup_ctx.append(alerts_ctx)
    app.cleanup_ctx.append(_retention_ctx)
    if link is None:
        app.cleanup_ctx.append(_mqtt_ctx(hub, late))
    else:
        app.cleanup_ctx.append(_fake_link_ctx)
    app.cleanup_ctx.append(_relay_ctx)
    app.on_shutdown.append(_close_viewers)
    app.on_shutdown.append(close_live)
    return app


def _build(settings: HubSettings, link: BrokerLink) -> Hub:
    metrics = HubMetrics()
    registry = Registry()
    topics = Topics(settings.broker.prefix)
    demand = DemandLeases(link.publish_demand, settings.hub_id, settings.lease_ttl)
    relay = Relay(demand, metrics, settings.max_viewers_per_stream)
    db = Database(settings.data_dir / DB_FILE)
    store = SqliteTemplates(db)
    capture_store = CaptureStore(SqliteCaptureIndex(db), settings.data_dir)
    jobs = JobQueue(metrics, settings.job_queue_size)
    persist = Persister(jobs, store, capture_store, registry, metrics)
    alerts = AlertService(
        db,
        settings.alerts,
        contexts=StreamContexts(registry, store),
        resolve_stream=lambda ref: "{}.{}".format(*registry.resolve(ref)),
    )
    feed = StreamFeed(registry, alerts.publish, relay.viewers)
    router = Router(
        topics,
        registry,
        metrics,
        relay.publish,
        sink=persist,
        alerts=alerts.engine,
        feed=feed,
        snoozer=lambda request: _snooze_later(jobs, alerts, request),
    )
    retention = RetentionWorker(
        capture_store,
        lambda: template_policies(store),
        RetentionSettings(
            global_policy=settings.retention.policy,
            min_free_bytes=settings.retention.min_free_bytes,
            fresh_seconds=settings.retention.fresh_seconds,
        ),
        interval=settings.retention.interval,
    )
    return Hub(
        settings=settings,
        registry=registry,
        metrics=metrics,
        relay=relay,
        router=router,
        link=link,
        db=db,
        templates=store,
        captures=capture_store,
        jobs=jobs,
        persist=persist,
        assigner=Assigner(store, link, topics),
        retention=retention,
        alerts=alerts,
    )


async def _storage_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    await asyncio.to_thread(_make_dir, hub.settings.data_dir)
    async with hub.db, hub.jobs:
        seeded = await hub.templates.seed_once(hub.settings.seed_templates)
        if seeded:
            _LOGGER.info("created %d seed templates: %s", len(seeded), ", ".join(seeded))
        try:
            yield
        finally:
            await hub.assigner.aclose()


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    async with app[HUB].retention:
        yield


def _mqtt_ctx(hub: Hub, late: _LateLink) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = hub.settings
        async with AsyncExitStack() as stack:
            if settings.embedded_broker:
                await stack.enter_async_context(
                    EmbeddedBroker(settings.broker.host, settings.broker.port)
                )
            late.target = await stack.enter_async_context(
                MqttIngest(
                    settings.broker,
                    hub.router,
                    client_id=f"glimpser-hub-{settings.hub_id}",
                    on_connect=hub.assigner.reconnected,
                )
            )
            yield
            late.target = None

    return ctx


async def _fake_link_ctx(app: web.Application) -> AsyncIterator[None]:
    # A link handed in by a test is connected from the start: publish the configs as a fresh
    # broker connection would.
    hub = app[HUB]
    if hub.link.connected:
        hub.assigner.reconnected()
    yield


async def _relay_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[HUB].relay.aclose()


async def _close_viewers(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers: ending MJPEG loops here keeps
    # shutdown from waiting the whole shutdown_timeout on never-ending responses.
    app[HUB].relay.close_viewers()


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create data directory {path}: {err.strerror}") from err


def _snooze_later(jobs: JobQueue, alerts: AlertService, request: SnoozeRequest) -> None:
    """Apply an MQTT snooze request on the job worker (the router itself never awaits)."""

    async def job() -> None:
        if request.rule is not None:
            await alerts.snooze_rule(request.rule, request.minutes)
        elif request.stream is not None:
            await alerts.snooze_stream(request.stream, request.minutes)
        _LOGGER.info(
            "snoozed %s for %d min over MQTT", request.rule or request.stream, request.minutes
        )

    jobs.submit("snooze", job)
