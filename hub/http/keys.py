"""Typed application state shared by the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from glimpser.hub.alerts.service import AlertService
from glimpser.hub.assign import Assigner
from glimpser.hub.config import HubSettings
from glimpser.hub.ingest.jobs import JobQueue
from glimpser.hub.ingest.link import BrokerLink
from glimpser.hub.ingest.persist import Persister
from glimpser.hub.ingest.router import Router
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.relay import Relay
from glimpser.hub.store.captures import CaptureStore
from glimpser.hub.store.db import Database
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.retention import RetentionWorker
from glimpser.hub.store.templates import SqliteTemplates


@dataclass(slots=True)
class Hub:
    """The hub's long-lived parts (the database opens in a cleanup_ctx, before serving)."""

    settings: HubSettings
    registry: Registry
    metrics: HubMetrics
    relay: Relay
    router: Router
    link: BrokerLink
    db: Database
    templates: SqliteTemplates
    captures: CaptureStore
    jobs: JobQueue
    persist: Persister
    assigner: Assigner
    retention: RetentionWorker
    alerts: AlertService


HUB = web.AppKey("hub", Hub)
