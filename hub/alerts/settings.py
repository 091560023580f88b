"""Alert engine and dispatch settings (a section the lead can add to HubSettings as ``alerts``)."""

from __future__ import annotations

from pydantic import Field

from glimpser.shared.models import Model


class AlertSettings(Model):
    """Timers, retry policy and bounds of the alert engine."""

    offline_delay: float = Field(
        60.0, ge=0, le=86400, description="seconds an agent must stay offline before alerting"
    )
    retry_base: float = Field(2.0, gt=0, le=3600, description="first retry delay, seconds")
    retry_cap: float = Field(300.0, gt=0, le=86400, description="longest delay between retries")
    retry_window: float = Field(
        6 * 3600.0, gt=0, le=7 * 86400, description="give a delivery up after this many seconds"
    )
    send_timeout: float = Field(30.0, gt=0, le=600, description="seconds per webhook attempt")
    lease: float = Field(
        600.0, gt=0, le=86400, description="a claimed delivery is retried after this if unanswered"
    )
    max_parallel: int = Field(8, ge=1, le=128, description="deliveries in flight at once")
    queue_size: int = Field(10_000, ge=10, le=1_000_000, description="events waiting for rules")
    live_queue: int = Field(256, ge=1, le=100_000, description="SSE messages kept per listener")
    event_retention_days: float = Field(
        30.0, gt=0, le=3650, description="how long replayed event ids are still recognised"
    )
