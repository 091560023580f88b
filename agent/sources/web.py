"""A website template behind the blocking Source protocol the stream runner drives.

Playwright objects belong to the event loop that created them, so the page is driven on the
agent's loop; the runner's worker thread only waits for each screenshot to finish there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from glimpser.agent.capture.change import ChangeDetector, ChangeResult
from glimpser.agent.sources.base import CapturedFrame, redact_url
from glimpser.agent.sources.browser import BrowserManager
from glimpser.agent.sources.website import WebsiteCapturer
from glimpser.shared.errors import SourceError
from glimpser.shared.models import Template, WebsiteSource

T = TypeVar("T")
# Beyond the page's own timeout the manager may spend a few seconds probing and replacing a
# hung browser (see BrowserManager.check); past this grace the wait is abandoned.
_GRACE = 20.0


class PageSource:
    """Screenshots of one web page; ``last_change`` tells how the last one differed."""

    def __init__(
        self, template: Template, browsers: BrowserManager, loop: asyncio.AbstractEventLoop
    ) -> None:
        if not isinstance(template.source, WebsiteSource):
            raise SourceError(f"template {template.id!r} is not a website template")
        self._spec = template.source
        self._template = template
        self._browsers = browsers
        self._loop = loop
        self._capturer: WebsiteCapturer | None = None
        self._detector = ChangeDetector(self._spec.change_threshold)
        self.last_change: ChangeResult | None = None

    @property
    def name(self) -> str:
        """The page URL, without any password."""
        return redact_url(self._spec.url)

    def open(self) -> None:
        """Prepare the page's browser context (the browser starts on first use)."""
        capturer = WebsiteCapturer(self._browsers, self._template)
        self._wait(capturer.__aenter__(), self._spec.timeout + _GRACE)
        self._capturer = capturer

    def read(self) -> CapturedFrame:
        """Load and screenshot the page; compare it with the previous screenshot."""
        if self._capturer is None:
            raise SourceError(f"{self.name}: read before open")
        page = self._wait(self._capturer.capture(), self._spec.timeout + _GRACE)
        try:
            self.last_change = self._detector.update(page.jpeg)
        except ValueError:
            self.last_change = None
        return CapturedFrame(width=page.width, height=page.height, jpeg=page.jpeg)

    def close(self) -> None:
        """Close the page's context; safe to call twice."""
        capturer, self._capturer = self._capturer, None
        if capturer is not None:
            self._wait(capturer.aclose(), 15.0)

    def _wait(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop.is_closed():
            coro.close()
            raise SourceError(f"{self.name}: the agent is shutting down")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout as err:
            future.cancel()
            raise SourceError(f"{self.name}: no answer from the browser in {timeout:g} s") from err
