"""A resource whose every call runs on one dedicated thread (SQLite, TinyDB, camera handles)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self, TypeVar

from glimpser.shared.errors import StorageError

T = TypeVar("T")


class ThreadOwned:
    """Async context manager: ``_open``/``_close`` and every ``_submit`` run on one thread.

    One thread keeps thread-bound handles (an sqlite3 connection) valid and serialises access,
    and the event loop never blocks on their I/O. Subclasses implement ``_open`` and ``_close``.
    """

    _thread_name = "owned"
    _what = "resource"

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    def _open(self) -> None:
        """Acquire the resource (runs on the owning thread)."""

    def _close(self) -> None:
        """Release the resource (runs on the owning thread)."""

    async def __aenter__(self) -> Self:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        try:
            await self._submit(self._open)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._executor is None:
            return
        try:
            await self._submit(self._close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _submit(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the owning thread; StorageError when not open."""
        if self._executor is None:
            name = type(self).__name__
            raise StorageError(f"{self._what} is not open (use 'async with {name}(...)')")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
