"""Small helpers every test may use: free ports and polling instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now.

    The kernel picks it (bind to port 0); another process could still take it before the caller
    binds, which is why the broker fixtures retry with a new port when a start fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = ...,
    interval: float = ...,
    message: str | Callable[[], str] = ...,
) -> T: ...


@overload
async def wait_for(
    predicate: Callable[[], T],
    timeout: float = ...,
    interval: float = ...,
    message: str | Callable[[], str] = ...,
) -> T: ...


async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 5.0,
    interval: float = 0.02,
    message: str | Callable[[], str] = "",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value and return that value.

    Raises TimeoutError after ``timeout`` seconds; ``message`` (or its callable, evaluated at
    failure time) is added to the error so a failing test says what it was waiting for.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = message() if callable(message) else message
            name = getattr(predicate, "__name__", repr(predicate))
            suffix = f": {detail}" if detail else ""
            raise TimeoutError(f"condition {name} not met within {timeout:.1f}s{suffix}")
        await asyncio.sleep(interval)
