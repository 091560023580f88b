"""One stream's MJPEG fan-out: each part is built once; every viewer takes only the newest."""

from __future__ import annotations

import asyncio

BOUNDARY = "frame"
CONTENT_TYPE = f"multipart/x-mixed-replace;boundary={BOUNDARY}"


def build_part(jpeg: bytes) -> bytes:
    """The multipart bytes for one frame: boundary, Content-Type, Content-Length, JPEG."""
    head = (
        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    ).encode("ascii")
    return b"".join((head, jpeg, b"\r\n"))


class FrameChannel:
    """Latest-frame-wins broadcast: publishing never waits for viewers, memory holds one part.

    Viewers remember the generation they last sent; a slow one simply finds a newer generation
    when it comes back and skips everything in between.
    """

    def __init__(self) -> None:
        self._part: bytes | None = None
        self._generation = 0
        self._changed = asyncio.Event()
        self._closed = False
        self.viewers = 0

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def publish(self, part: bytes) -> None:
        """Make ``part`` the newest and wake every waiting viewer (no awaiting)."""
        self._part = part
        self._generation += 1
        self._wake()

    def close(self) -> None:
        """End every viewer's iteration (shutdown, or the stream went away)."""
        self._closed = True
        self._wake()

    async def next_part(self, seen: int) -> tuple[int, bytes] | None:
        """The newest part after generation ``seen``, waiting if needed; None once closed."""
        while not self._closed:
            if self._part is not None and self._generation != seen:
                return self._generation, self._part
            await self._changed.wait()
        return None

    def _wake(self) -> None:
        # Swap the event rather than clear it: viewers already woken by this set() keep their
        # wake-up, later waiters block on the fresh event.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
