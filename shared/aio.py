"""Small asyncio helpers that are safe on Python 3.11."""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set.

    Not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 wait_for swallows a
    cancellation that races the event being set (python/cpython#86296), so a task cancelled
    at that moment keeps running and its owner waits forever. ``asyncio.timeout`` counts
    cancellations correctly.
    """
    if timeout is not None and timeout <= 0:
        return event.is_set()
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished; a no-op for None.

    Unlike ``with suppress(CancelledError): await task``, this does not swallow a cancellation
    of the *calling* task that arrives while it waits, so a shutdown stays cancellable.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
