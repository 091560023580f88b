"""Builds the aiohttp application and ties the broker, ingest and relay lifecycles to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

from aiohttp import web

from glimpser.hub.broker import EmbeddedBroker
from glimpser.hub.config import HubSettings
from glimpser.hub.http.errors import error_middleware
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.http.routes import routes
from glimpser.hub.ingest.link import BrokerLink
from glimpser.hub.ingest.mqtt import MqttIngest
from glimpser.hub.ingest.router import Router
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.demand import DemandLeases
from glimpser.hub.relay.relay import Relay
from glimpser.hub.store.registry import Registry
from glimpser.shared.errors import TransportError
from glimpser.shared.models import Command, Demand
from glimpser.shared.topics import Topics


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

    def _get(self) -> BrokerLink:
        if self.target is None:
            raise TransportError("the hub is not connected to a broker yet")
        return self.target


def create_app(settings: HubSettings, *, link: BrokerLink | None = None) -> web.Application:
    """The hub app; with ``link`` given, no broker or MQTT client is started (tests feed
    ``app[HUB].router`` directly)."""
    metrics = HubMetrics()
    registry = Registry()
    late = _LateLink()
    active: BrokerLink = link if link is not None else late
    demand = DemandLeases(active.publish_demand, settings.hub_id, settings.lease_ttl)
    relay = Relay(demand, metrics, settings.max_viewers_per_stream)
    router = Router(Topics(settings.broker.prefix), registry, metrics, relay.publish)
    hub = Hub(settings, registry, metrics, relay, router, active)

    app = web.Application(middlewares=[error_middleware])
    app[HUB] = hub
    app.add_routes(routes)
    if link is None:
        app.cleanup_ctx.append(_mqtt_ctx(hub, late))
    app.cleanup_ctx.append(_relay_ctx)
    app.on_shutdown.append(_close_viewers)
    return app


def _mqtt_ctx(hub: Hub, late: _LateLink) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = hub.settings
        async with AsyncExitStack() as stack:
            if settings.embedded_broker:
                await stack.enter_async_context(
                    EmbeddedBroker(settings.broker.host, settings.broker.port)
                )
            late.target = await stack.enter_async_context(
                MqttIngest(settings.broker, hub.router, client_id=f"glimpser-hub-{settings.hub_id}")
            )
            yield
            late.target = None

    return ctx


async def _relay_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[HUB].relay.aclose()


async def _close_viewers(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers: ending MJPEG loops here keeps
    # shutdown from waiting the whole shutdown_timeout on never-ending responses.
    app[HUB].relay.close_viewers()
