"""Typed application state shared by the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from glimpser.hub.config import HubSettings
from glimpser.hub.ingest.link import BrokerLink
from glimpser.hub.ingest.router import Router
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.relay import Relay
from glimpser.hub.store.registry import Registry


@dataclass(slots=True)
class Hub:
    """The hub's long-lived parts."""

    settings: HubSettings
    registry: Registry
    metrics: HubMetrics
    relay: Relay
    router: Router
    link: BrokerLink


HUB = web.AppKey("hub", Hub)
