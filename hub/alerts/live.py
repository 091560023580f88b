"""Fan-out of live updates (alerts, deliveries, stream state) to SSE listeners.

Each listener owns a bounded deque: ``publish`` appends to every deque without awaiting
anyone, dropping a slow listener's oldest message (and counting it), so one stalled client
never slows the others or grows memory (DESIGN §9: never broadcast by awaiting each client).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Broadcaster", "Listener", "Message"]


@dataclass(frozen=True, slots=True)
class Message:
    """One live update; ``data`` is encoded once and shared by every listener."""

    seq: int
    kind: str
    data: str


class Listener:
    """One subscriber's bounded, drop-oldest queue."""

    def __init__(self, size: int) -> None:
        self._queue: deque[Message] = deque(maxlen=size)
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, message: Message) -> None:
        """Queue without blocking; the oldest message goes when full."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(message)
        self._ready.set()

    def close(self) -> None:
        """End the listener's iteration after what is queued."""
        self.closed = True
        self._ready.set()

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message; None on timeout or once closed and drained."""
        while not self._queue:
            if self.closed:
                return None
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()

    @property
    def pending(self) -> int:
        """Messages waiting."""
        return len(self._queue)


class Broadcaster:
    """Publishes to every current listener; listeners come and go with ``listen()``."""

    def __init__(self, queue_size: int = 256) -> None:
        self._size = queue_size
        self._listeners: set[Listener] = set()
        self._seq = itertools.count(1)
        self._closed = False

    def publish(self, kind: str, data: Any) -> None:
        """Send ``data`` (JSON-able) as event ``kind`` to every listener; never blocks."""
        message = Message(next(self._seq), kind, json.dumps(data, default=str))
        for listener in self._listeners:
            listener.put(message)

    def listen(self) -> _Subscription:
        """``async with broadcaster.listen() as listener``: subscribed for the block."""
        return _Subscription(self)

    def close(self) -> None:
        """End every listener (at shutdown, so SSE handlers return)."""
        self._closed = True
        for listener in self._listeners:
            listener.close()

    @property
    def listeners(self) -> int:
        """How many listeners are subscribed."""
        return len(self._listeners)

    def _add(self) -> Listener:
        listener = Listener(self._size)
        if self._closed:
            listener.close()
        self._listeners.add(listener)
        return listener

    def _remove(self, listener: Listener) -> None:
        self._listeners.discard(listener)


class _Subscription:
    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster
        self._listener: Listener | None = None

    async def __aenter__(self) -> Listener:
        self._listener = self._broadcaster._add()
        return self._listener

    async def __aexit__(self, *exc: object) -> None:
        if self._listener is not None:
            self._broadcaster._remove(self._listener)


async def messages(listener: Listener, heartbeat: float) -> AsyncIterator[Message | None]:
    """Yield messages, and None after each ``heartbeat`` seconds of silence, until closed."""
    while True:
        message = await listener.get(heartbeat)
        if message is None and listener.closed and not listener.pending:
            return
        yield message
