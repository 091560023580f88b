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


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout: float | None = None) -> bool:
    """Cancel ``task`` and wait until it has finished (at most ``timeout`` s); a no-op for None.

    Returns False when the task is still running after ``timeout``: third-party code that
    swallows cancellation (``wait_for`` on 3.11, cpython#86296) must not hang a shutdown.
    Unlike ``with suppress(CancelledError): await task``, a cancellation of the *calling* task
    still propagates. A task that failed re-raises its exception here.
    """
    if task is None:
        return True
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        return False
    if not task.cancelled() and (exc := task.exception()) is not None:
        raise exc
    return True
