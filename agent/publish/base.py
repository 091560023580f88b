"""The seam between stream runners and the transport: what a runner may send."""

from __future__ import annotations

from typing import Protocol

from glimpser.shared.models import AgentConfig, Command, Demand, Event, StreamState


class Publisher(Protocol):
    """Outgoing side. Every method is non-blocking: the transport queues or drops (latest wins)."""

    def publish_frame(self, stream_id: str, payload: bytes) -> None:
        """Send one codec-encoded frame (QoS 0, not retained); may be dropped under load."""
        ...

    def publish_capture(self, stream_id: str, payload: bytes) -> None:
        """Send one codec-encoded capture (QoS 1); kept while offline up to a bound."""
        ...

    def publish_snapshot(self, stream_id: str, jpeg: bytes) -> None:
        """Replace the retained snapshot thumbnail of a stream."""
        ...

    def publish_stream_state(self, state: StreamState) -> None:
        """Replace the retained state of a stream (QoS 1)."""
        ...

    def publish_event(self, event: Event) -> None:
        """Send an event (QoS 1), queued while offline."""
        ...

    def publish_motion(self, stream_id: str, motion: bool) -> None:
        """Replace the retained ``ON``/``OFF`` motion state of a stream (QoS 1)."""
        ...


class MessageHandler(Protocol):
    """Incoming side: the transport hands validated messages to the app through this."""

    def has_stream(self, stream_id: str) -> bool:
        """True when this agent runs ``stream_id`` (others are rejected as unknown)."""
        ...

    def on_command(self, stream_id: str, command: Command) -> None:
        """A validated command for a known stream."""
        ...

    def on_demand(self, stream_id: str, demand: Demand) -> None:
        """A validated demand lease for a known stream."""
        ...

    def on_config(self, config: AgentConfig) -> None:
        """A validated AgentConfig; raise ProtocolError to reject it (the transport counts it)."""
        ...

    def on_connected(self) -> None:
        """The link (re)connected to the broker."""
        ...

    def on_rejected(self) -> None:
        """A malformed or unknown message was rejected (the transport counted it)."""
        ...
