"""Hub settings: loaded once at the edge (CLI) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from glimpser.shared.config import BrokerSettings, format_validation_error, load_yaml_model
from glimpser.shared.errors import ConfigError
from glimpser.shared.ids import Id
from glimpser.shared.models import Model

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class HttpSettings(Model):
    """Where the HTTP API listens (loopback by default: access control lands later)."""

    host: str = Field("127.0.0.1", description="address to bind the HTTP server to")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port")


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


def load_hub_settings(path: Path | None, overrides: dict[str, Any] | None = None) -> HubSettings:
    """Settings from ``path`` (or defaults) with ``overrides`` deep-merged on top."""
    base = load_yaml_model(path, HubSettings) if path is not None else HubSettings()
    if not overrides:
        return base
    merged = _deep_merge(base.model_dump(exclude_unset=True), overrides)
    try:
        return HubSettings.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, "command line")) from err


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
