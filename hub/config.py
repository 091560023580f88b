"""Hub settings: loaded once at the edge (CLI) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from glimpser.hub.alerts.settings import AlertSettings
from glimpser.shared.config import (
    BrokerSettings,
    deep_merge,
    format_validation_error,
    load_yaml_model,
)
from glimpser.shared.errors import ConfigError
from glimpser.shared.ids import Id
from glimpser.shared.models import Model, RetentionPolicy, Template

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class HttpSettings(Model):
    """Where the HTTP API listens (loopback by default: access control lands later)."""

    host: str = Field("127.0.0.1", description="address to bind the HTTP server to")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port")


class RetentionSettingsBlock(Model):
    """Hub-wide capture retention; each template's ``capture.retention`` applies on top."""

    policy: RetentionPolicy = Field(
        default_factory=lambda: RetentionPolicy(), description="global limits on all captures"
    )
    min_free_bytes: int = Field(
        0, ge=0, description="delete the oldest unpinned captures while the disk has less free"
    )
    interval: float = Field(300.0, ge=1, le=86400, description="seconds between retention passes")
    fresh_seconds: float = Field(
        10.0, ge=0, le=3600, description="captures younger than this are never deleted"
    )


class HubSettings(Model):
    """Everything the hub process needs."""

    hub_id: Id = Field("main", description="this hub's id, used to key demand leases")
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    broker: BrokerSettings = Field(default_factory=lambda: BrokerSettings())
    embedded_broker: bool = Field(
        True, description="run an amqtt broker inside the hub on broker.host:broker.port"
    )
    data_dir: Path = Field(Path("data"), description="directory for the hub's files")
    lease_ttl: float = Field(10.0, gt=0, le=300, description="seconds a viewer demand lease lasts")
    command_timeout: float = Field(
        5.0, gt=0, le=120, description="seconds to wait for an agent to answer a command"
    )
    max_viewers_per_stream: int = Field(100, ge=1, le=10000)
    mjpeg_write_timeout: float = Field(
        30.0, gt=0, le=600, description="drop an MJPEG viewer whose socket stalls this long"
    )
    log_level: LogLevel = "INFO"
    retention: RetentionSettingsBlock = Field(default_factory=lambda: RetentionSettingsBlock())
    agents: list[Id] = Field(
        default_factory=list,
        description="agents templates may be assigned to before they first connect",
    )
    seed_templates: list[Template] = Field(
        default_factory=list,
        description="hub-managed templates created once, when the template table is empty",
    )
    job_queue_size: int = Field(
        1000, ge=10, le=100_000, description="ingest writes waiting for the database, at most"
    )
    alerts: AlertSettings = Field(
        default_factory=lambda: AlertSettings(),
        description="alert engine timers (offline_delay), delivery retries and bounds",
    )


def load_hub_settings(path: Path | None, overrides: dict[str, Any] | None = None) -> HubSettings:
    """Settings from ``path`` (or defaults) with ``overrides`` deep-merged on top."""
    base = load_yaml_model(path, HubSettings) if path is not None else HubSettings()
    if not overrides:
        return base
    merged = deep_merge(base.model_dump(exclude_unset=True), overrides)
    try:
        return HubSettings.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, "command line")) from err


