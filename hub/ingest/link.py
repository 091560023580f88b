"""The seam between the HTTP/relay side and the broker connection (fakeable in tests)."""

from __future__ import annotations

from typing import Protocol

from glimpser.shared.models import Command, Demand


class BrokerLink(Protocol):
    """What the rest of the hub needs from the MQTT connection."""

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        ...

    async def publish_command(self, agent: str, stream: str, command: Command) -> None:
        """Send ``command`` on ``<prefix>/<agent>/<stream>/set``; TransportError if offline."""
        ...

    async def publish_demand(self, agent: str, stream: str, demand: Demand) -> None:
        """Send ``demand`` on ``<prefix>/<agent>/<stream>/demand``; TransportError if offline."""
        ...

    async def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish ``payload`` retained with QoS 1 on ``topic``; TransportError if offline."""
        ...
