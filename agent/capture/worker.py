"""A single daemon thread per source that runs its blocking calls in order."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class Worker:
    """Runs blocking source/OpenCV/JPEG calls off the event loop, one at a time.

    Unlike ThreadPoolExecutor, whose threads are joined at interpreter exit, this thread is a
    daemon: a camera read stuck in a dead network connection cannot hold up process shutdown.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker thread and return (or raise) its outcome."""
        if self._closed:
            raise RuntimeError("worker is shut down")
        if not self._thread.is_alive():
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, future, loop))
        return await future

    def shutdown(self) -> None:
        """Let the thread exit after the job it is running, if any."""
        self._closed = True
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, future, loop = job
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as err:  # noqa: BLE001 - handed to the awaiting coroutine
                outcome = (False, err)
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the awaiting task was cancelled meanwhile
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
