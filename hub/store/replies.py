"""Waiters for command answers: an agent answers a command in its stream state's request_id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from glimpser.shared.models import StreamState

StreamKey = tuple[str, str]


class ReplyWaiters:
    """Futures keyed by (agent, stream, request_id), resolved by the matching StreamState."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, str], asyncio.Future[StreamState]] = {}

    @contextmanager
    def expect(self, key: StreamKey, request_id: str) -> Iterator[asyncio.Future[StreamState]]:
        """A future for the answer to ``request_id``; forgotten when the block exits."""
        slot = (key[0], key[1], request_id)
        future: asyncio.Future[StreamState] = asyncio.get_running_loop().create_future()
        self._waiting[slot] = future
        try:
            yield future
        finally:
            self._waiting.pop(slot, None)
            future.cancel()

    def resolve(self, state: StreamState) -> None:
        """Complete the waiter whose request_id this state answers, if any."""
        if state.request_id is None:
            return
        future = self._waiting.get((state.agent_id, state.stream_id, state.request_id))
        if future is not None and not future.done():
            future.set_result(state)

    def __len__(self) -> int:
        return len(self._waiting)


T = TypeVar("T")
Slot = tuple[str, str, str]


class KeyedWaiters(Generic[T]):
    """Futures keyed by (agent, stream, request_id), resolved by whoever sees the answer."""

    def __init__(self) -> None:
        self._waiting: dict[Slot, asyncio.Future[T]] = {}

    @contextmanager
    def expect(self, slot: Slot) -> Iterator[asyncio.Future[T]]:
        """A future for ``slot``'s answer; forgotten when the block exits."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting[slot] = future
        try:
            yield future
        finally:
            self._waiting.pop(slot, None)
            future.cancel()

    def resolve(self, slot: Slot, value: T) -> None:
        """Complete the waiter for ``slot``, if any."""
        future = self._waiting.get(slot)
        if future is not None and not future.done():
            future.set_result(value)

    def __len__(self) -> int:
        return len(self._waiting)
