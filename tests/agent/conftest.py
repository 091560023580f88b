"""Agent test helpers: a recording Publisher (our own seam) and MQTT peeking helpers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiomqtt
import pytest

from glimpser.shared.models import Event, StreamState, StreamStatus


@dataclass
class FakePublisher:
    """Records everything a runner publishes, with the monotonic time of each frame."""

    frames: list[tuple[float, bytes]] = field(default_factory=list)
    captures: list[tuple[float, bytes]] = field(default_factory=list)
    snapshots: list[bytes] = field(default_factory=list)
    states: list[StreamState] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    motion: list[bool] = field(default_factory=list)

    def publish_frame(self, stream_id: str, payload: bytes) -> None:
        self.frames.append((time.monotonic(), payload))

    def publish_capture(self, stream_id: str, payload: bytes) -> None:
        self.captures.append((time.monotonic(), payload))

    def publish_snapshot(self, stream_id: str, jpeg: bytes) -> None:
        self.snapshots.append(jpeg)

    def publish_stream_state(self, state: StreamState) -> None:
        self.states.append(state)

    def publish_event(self, event: Event) -> None:
        self.events.append(event)

    def publish_motion(self, stream_id: str, motion: bool) -> None:
        self.motion.append(motion)

    @property
    def last(self) -> StreamState:
        """The latest published state."""
        return self.states[-1]

    def status_is(self, status: StreamStatus) -> bool:
        """True when the latest published state has ``status``."""
        return bool(self.states) and self.states[-1].status is status

    def frames_since(self, t: float) -> int:
        """Frames published at or after monotonic time ``t``."""
        return sum(1 for at, _ in self.frames if at >= t)


@pytest.fixture
def publisher() -> FakePublisher:
    """A fresh recording publisher."""
    return FakePublisher()


async def retained(host: str, port: int, topic: str, within: float = 5.0) -> bytes:
    """The retained payload on ``topic`` (fails when there is none ``within`` seconds)."""
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(within):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
    raise AssertionError(f"no retained message on {topic}")
