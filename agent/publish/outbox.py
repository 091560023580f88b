"""Outgoing messages waiting for the broker, each kind with a bounded, stated drop policy.

- states (QoS 1, retained): latest per topic wins; all are re-sent after every reconnect.
- snapshots (QoS 0, retained): latest per topic wins; re-sent after every reconnect.
- events (QoS 1): FIFO of at most ``max_events``; the oldest is dropped (counted) when full.
- frames (QoS 0): one slot per topic; a newer frame replaces a waiting one (counted as dropped).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Literal

Kind = Literal["state", "snapshot", "event", "frame"]


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication."""

    kind: Kind
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """Pending publications, handed out in priority order: states, events, snapshots, frames."""

    def __init__(self, max_events: int = 1000) -> None:
        self._latest: dict[str, Message] = {}  # every retained message ever put, for reconnects
        self._states: dict[str, Message] = {}
        self._snapshots: dict[str, Message] = {}
        self._events: deque[Message] = deque()
        self._frames: dict[str, Message] = {}
        self._max_events = max_events
        self._ready = asyncio.Event()
        self.frames_dropped = 0
        self.events_dropped = 0

    @property
    def depth(self) -> int:
        """Messages waiting to be sent."""
        return len(self._states) + len(self._snapshots) + len(self._events) + len(self._frames)

    def put(self, message: Message) -> None:
        """Queue ``message`` under its kind's drop policy."""
        if message.kind == "event":
            if len(self._events) >= self._max_events:
                self._events.popleft()
                self.events_dropped += 1
            self._events.append(message)
        elif message.kind == "frame":
            if message.topic in self._frames:
                self.frames_dropped += 1
            self._frames[message.topic] = message
        else:
            self._latest[message.topic] = message
            self._slots(message.kind)[message.topic] = message
        self._ready.set()

    def resend_retained(self) -> None:
        """Queue the latest of every retained message again (after a reconnect)."""
        for message in self._latest.values():
            self._slots(message.kind).setdefault(message.topic, message)
        if self._latest:
            self._ready.set()

    def latest(self, topic: str) -> Message | None:
        """The newest retained message put on ``topic``."""
        return self._latest.get(topic)

    def take(self) -> Message | None:
        """Remove and return the most urgent message, or None when empty."""
        if self._states:
            return self._states.pop(next(iter(self._states)))
        if self._events:
            return self._events.popleft()
        if self._snapshots:
            return self._snapshots.pop(next(iter(self._snapshots)))
        if self._frames:
            return self._frames.pop(next(iter(self._frames)))
        return None

    def give_back(self, message: Message) -> None:
        """Return a message whose publication failed; frames are dropped instead."""
        if message.kind == "event":
            self._events.appendleft(message)
        elif message.kind == "frame":
            self.frames_dropped += 1
        else:
            self._slots(message.kind).setdefault(message.topic, self._latest[message.topic])

    def drop_frames(self) -> None:
        """Discard waiting frames (counted): they are stale once the link is down."""
        self.frames_dropped += len(self._frames)
        self._frames.clear()

    async def wait(self) -> None:
        """Return once something may be waiting (a spurious wake-up is possible)."""
        if self.depth == 0:
            self._ready.clear()
            await self._ready.wait()

    def wake(self) -> None:
        """Wake a waiting sender without a message (so it can notice a shutdown)."""
        self._ready.set()

    def _slots(self, kind: Kind) -> dict[str, Message]:
        return self._states if kind == "state" else self._snapshots
