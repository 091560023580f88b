"""Agent settings, loaded once from YAML at the edge (CLI) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from glimpser.agent.publish.discovery import HomeAssistantSettings
from glimpser.agent.sources.browser import BrowserSettings
from glimpser.shared.config import BrokerSettings, load_yaml_model
from glimpser.shared.ids import Id
from glimpser.shared.models import Model, Template
from glimpser.shared.topics import HUB

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class AgentSettings(Model):
    """Everything one agent process needs: its id, the broker and its templates."""

    agent_id: Id
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    data_dir: Path
    templates: list[Template] = Field(default_factory=list)
    browser: BrowserSettings = Field(
        default_factory=BrowserSettings, description="the shared Chromium of website streams"
    )
    homeassistant: HomeAssistantSettings = Field(
        default_factory=HomeAssistantSettings, description="Home Assistant MQTT discovery"
    )
    state_interval: float = Field(15.0, ge=1, le=3600, description="seconds between agent states")
    capture_backlog: int = Field(
        200, ge=1, le=100_000, description="captures kept while the broker is away"
    )
    capture_backlog_bytes: int = Field(
        32 * 1024 * 1024, ge=1024 * 1024, description="byte bound of that backlog"
    )
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = "INFO"

    @field_validator("agent_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == HUB:
            raise ValueError(f"agent id {HUB!r} is reserved for the hub")
        return value

    @field_validator("templates")
    @classmethod
    def _unique_ids(cls, templates: list[Template]) -> list[Template]:
        seen: set[str] = set()
        for template in templates:
            if template.id in seen:
                raise ValueError(f"duplicate template id {template.id!r}")
            seen.add(template.id)
        return templates


def load_agent_settings(path: Path | str, overrides: dict[str, Any] | None = None) -> AgentSettings:
    """Load agent settings from YAML; ConfigError names every problem with its line."""
    return load_yaml_model(Path(path), AgentSettings, overrides)
