"""Outgoing messages waiting for the broker, each kind with a bounded, stated drop policy.

- states (QoS 1, retained): latest per topic wins; all are re-sent after every reconnect.
- clears (QoS 1, retained, empty): one per topic, sent once; a newer retained message on the
  same topic cancels it (the new value overwrites the retained one anyway).
- snapshots (QoS 0, retained): latest per topic wins; re-sent after every reconnect.
- events (QoS 1): FIFO of at most ``max_events``; the oldest is dropped (counted) when full.
- captures (QoS 1): FIFO of at most ``max_captures`` messages and ``max_capture_bytes``; kept
  while offline; the oldest is dropped (counted, WARNING) when full.
- frames (QoS 0): one slot per topic; a newer frame replaces a waiting one (counted as dropped).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal

from glimpser.shared.logs import RateLimitedLog

Kind = Literal["state", "clear", "snapshot", "event", "capture", "frame"]

log = logging.getLogger(__name__)
MAX_CAPTURES = 200
MAX_CAPTURE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication."""

    kind: Kind
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """Pending publications, handed out in priority order.

    States and clears first, then events, captures, snapshots and frames.
    """

    def __init__(
        self,
        max_events: int = 1000,
        max_captures: int = MAX_CAPTURES,
        max_capture_bytes: int = MAX_CAPTURE_BYTES,
    ) -> None:
        self._latest: dict[str, Message] = {}  # every retained message ever put, for reconnects
        self._states: dict[str, Message] = {}
        self._clears: dict[str, Message] = {}
        self._snapshots: dict[str, Message] = {}
        self._events: deque[Message] = deque()
        self._captures: deque[Message] = deque()
        self._capture_bytes = 0
        self._frames: dict[str, Message] = {}
        self._max_events = max_events
        self._max_captures = max_captures
        self._max_capture_bytes = max_capture_bytes
        self._ready = asyncio.Event()
        self._rlog = RateLimitedLog(log)
        self.frames_dropped = 0
        self.events_dropped = 0
        self.captures_dropped = 0

    @property
    def depth(self) -> int:
        """Messages waiting to be sent."""
        return (
            len(self._states)
            + len(self._clears)
            + len(self._snapshots)
            + len(self._events)
            + len(self._captures)
            + len(self._frames)
        )

    @property
    def captures_waiting(self) -> int:
        """Captures not yet acknowledged by the broker."""
        return len(self._captures)

    def put(self, message: Message) -> None:
        """Queue ``message`` under its kind's drop policy."""
        if message.kind == "event":
            if len(self._events) >= self._max_events:
                self._events.popleft()
                self.events_dropped += 1
            self._events.append(message)
        elif message.kind == "capture":
            self._put_capture(message)
        elif message.kind == "frame":
            if message.topic in self._frames:
                self.frames_dropped += 1
            self._frames[message.topic] = message
        elif message.kind == "clear":
            self.forget(message.topic)
            self._clears[message.topic] = message
        else:
            self._clears.pop(message.topic, None)
            self._latest[message.topic] = message
            self._slots(message.kind)[message.topic] = message
        self._ready.set()

    def forget(self, topic: str) -> None:
        """Stop sending and re-sending the retained message of ``topic``."""
        self._latest.pop(topic, None)
        self._states.pop(topic, None)
        self._snapshots.pop(topic, None)

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
        if self._clears:
            return self._clears.pop(next(iter(self._clears)))
        if self._events:
            return self._events.popleft()
        if self._captures:
            message = self._captures.popleft()
            self._capture_bytes -= len(message.payload)
            return message
        if self._snapshots:
            return self._snapshots.pop(next(iter(self._snapshots)))
        if self._frames:
            return self._frames.pop(next(iter(self._frames)))
        return None

    def give_back(self, message: Message) -> None:
        """Return a message whose publication failed; frames are dropped instead."""
        if message.kind == "event":
            self._events.appendleft(message)
        elif message.kind == "capture":
            self._captures.appendleft(message)
            self._capture_bytes += len(message.payload)
        elif message.kind == "frame":
            self.frames_dropped += 1
        elif message.kind == "clear":
            self._clears.setdefault(message.topic, message)
        elif message.topic in self._latest:  # not forgotten meanwhile
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

    def _put_capture(self, message: Message) -> None:
        self._captures.append(message)
        self._capture_bytes += len(message.payload)
        dropped = 0
        # Keep at least the newest capture even when it alone exceeds the byte bound.
        while len(self._captures) > 1 and (
            len(self._captures) > self._max_captures
            or self._capture_bytes > self._max_capture_bytes
        ):
            self._capture_bytes -= len(self._captures.popleft().payload)
            dropped += 1
        if dropped:
            self.captures_dropped += dropped
            self._rlog.warning(
                "captures-dropped",
                "capture backlog full (%d captures, %d bytes): dropped the oldest; "
                "%d dropped so far",
                len(self._captures),
                self._capture_bytes,
                self.captures_dropped,
            )

    def _slots(self, kind: Kind) -> dict[str, Message]:
        return self._states if kind == "state" else self._snapshots
