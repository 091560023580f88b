"""wait_event and cancel_and_wait: cancellation-safe helpers for Python 3.11."""

from __future__ import annotations

import asyncio

import pytest

from glimpser.shared.aio import cancel_and_wait, wait_event


async def test_wait_event_returns_true_when_set_and_false_on_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 5) is True
    assert await wait_event(event, 0) is True  # already set, no wait


async def test_cancel_and_wait_finishes_a_normal_task() -> None:
    task = asyncio.create_task(asyncio.sleep(60))
    assert await cancel_and_wait(task) is True
    assert task.cancelled()
    assert await cancel_and_wait(None) is True


async def test_a_task_that_swallows_cancellation_is_abandoned_not_awaited_forever() -> None:
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                continue  # what a swallowed cancel looks like to the owner

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task, timeout=0.05) is False
    assert not task.done()
    stop.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)


async def test_a_failed_task_re_raises() -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(boom())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)


async def test_the_callers_own_cancellation_propagates() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(60)  # cleanup that takes long

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0.01)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    inner.cancel()
    await asyncio.wait({inner}, timeout=1)
