"""Website streams: load a page in the shared browser and screenshot it as JPEG."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import HttpCredentials, Page, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from glimpser.agent.sources.base import redact_url
from glimpser.agent.sources.browser import BrowserManager, ContextOptions, PageLease
from glimpser.shared.codec import jpeg_size
from glimpser.shared.errors import ProtocolError, SourceError
from glimpser.shared.models import Template, WebsiteSource

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam

log = logging.getLogger(__name__)

Navigation = Literal["reload", "goto"]

# Hiding keeps the layout (visibility), removal reflows the page; both must beat the page's own
# `!important` rules, hence the inline `important` priority.
_HIDE_JS = "els => els.forEach(e => e.style.setProperty('visibility', 'hidden', 'important'))"
_REMOVE_JS = "els => els.forEach(e => e.remove())"
_PAGE_HEIGHT_JS = (
    "() => Math.max(document.documentElement.scrollHeight,"
    " document.body ? document.body.scrollHeight : 0)"
)
_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")


@dataclass(frozen=True, slots=True)
class CapturedPage:
    """One screenshot: JPEG bytes and their pixel size."""

    jpeg: bytes
    width: int
    height: int


def playwright_selector(selector: str) -> str:
    """A selector string in Playwright's engine syntax: XPath for ``/…`` or ``xpath=…``, else CSS.

    The explicit ``css=`` prefix stops Playwright from reading a CSS selector such as
    ``text=…`` as one of its own engines (https://playwright.dev/docs/other-locators).
    """
    text = selector.strip()
    if text.startswith("xpath="):
        return text
    if text.startswith("/") or text.startswith("(/"):
        return f"xpath={text}"
    return f"css={text}"


def context_options(spec: WebsiteSource) -> ContextOptions:
    """The browser context a website template needs (viewport, auth, headers, cookies)."""
    parts = urlsplit(spec.url)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    origin = f"{parts.scheme}://{netloc}"
    credentials: HttpCredentials | None = None
    if spec.basic_auth is not None:
        # `origin` keeps the password from being offered to any other host the page loads from.
        credentials = {
            "username": spec.basic_auth.username,
            "password": spec.basic_auth.password,
            "origin": origin,
        }
    cookies: list[SetCookieParam] = []
    for cookie in spec.cookies:
        if cookie.domain:
            cookies.append(
                {
                    "name": cookie.name,
                    "value": cookie.value,
                    "domain": cookie.domain,
                    "path": cookie.path,
                }
            )
        else:
            # Playwright wants either a url or domain+path; the page's origin scopes it.
            cookies.append(
                {"name": cookie.name, "value": cookie.value, "url": origin + cookie.path}
            )
    return ContextOptions(
        viewport_width=spec.viewport_width,
        viewport_height=spec.viewport_height,
        device_scale=spec.device_scale,
        dark_mode=spec.dark_mode,
        http_credentials=credentials,
        headers=dict(spec.headers),
        cookies=tuple(cookies),
    )


class WebsiteCapturer:
    """Screenshots one website template, reusing its page between captures.

    ``navigation="reload"`` (default) reloads the page when it already shows the URL and the
    last capture succeeded; otherwise it navigates again. bench/web_capture.py measured both
    on a 1280x720 page: the same median (~100 ms a shot here), reload with the lower p95. Reload
    is also the only one that refreshes a URL with a #fragment: goto() to the URL the page
    already shows plus a fragment is a same-document navigation that loads nothing.
    """

    def __init__(
        self,
        browsers: BrowserManager,
        template: Template,
        navigation: Navigation = "reload",
    ) -> None:
        spec = template.source
        if not isinstance(spec, WebsiteSource):
            raise TypeError(f"template {template.id!r} is not a website template")
        self.template = template
        self.spec = spec
        self.navigation = navigation
        self._browsers = browsers
        self._lease: PageLease = browsers.lease(context_options(spec), self.name)
        self._loaded = False  # the page shows the URL from a successful load: reload is enough
        self._loaded_url = ""
        self.captures = 0

    @property
    def name(self) -> str:
        """Human description for messages and logs (never contains a password)."""
        return f"web page {redact_url(self.spec.url)}"

    @property
    def lease(self) -> PageLease:
        """The stream's context/page lease in the shared browser."""
        return self._lease

    async def __aenter__(self) -> Self:
        """Nothing to open: the page is created on the first capture."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream's browser context."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream's context; the shared browser keeps running."""
        await self._lease.aclose()

    async def capture(self) -> CapturedPage:
        """Load (or reload) the page and screenshot it; SourceError with a readable reason."""
        spec = self.spec
        if urlsplit(spec.url).scheme not in ("http", "https"):
            raise SourceError(f"only http and https pages can be captured, not {self.name}")
        self._step = "waiting for the browser"
        # The page's timeout starts once the browser is ready: a (re)launch after a crash is
        # bounded by the manager's own launch_timeout and must not eat the page's budget.
        guard = self._browsers.settings.launch_timeout + spec.timeout + 1.0
        try:
            # The outer guard covers our own waits (browser start, delay, evaluate); Playwright
            # calls get the remaining budget so their own TimeoutError names the slow step.
            async with asyncio.timeout(guard):
                jpeg = await self._capture(spec.timeout)
        except TimeoutError as err:
            self._loaded = False
            await self._lease.reset()
            raise SourceError(self._timeout_message(self._step)) from err
        except PlaywrightTimeoutError as err:
            self._loaded = False
            # A hung browser also looks like a slow page: probe it (restarts it if hung).
            if await self._browsers.check():
                # The timed-out navigation is still pending in the page and would interrupt
                # the next one ("interrupted by another navigation"): start from a new context.
                await self._lease.reset()
            raise SourceError(self._timeout_message(self._step)) from err
        except PlaywrightError as err:
            self._loaded = False
            raise await self._error(err) from err
        finally:
            self._lease.used()
            self.captures += 1
        try:
            width, height = jpeg_size(jpeg)
        except ProtocolError as err:
            raise SourceError(f"the browser returned a broken JPEG for {self.name}") from err
        return CapturedPage(jpeg, width, height)

    # ------------------------------------------------------------------ steps

    async def _capture(self, timeout: float) -> bytes:
        page = await self._page()
        deadline = asyncio.get_running_loop().time() + timeout
        await self._load(page, deadline)
        await self._prepare(page, deadline)
        jpeg = await self._screenshot(page, deadline)
        await self._lease.close_strays()
        return jpeg

    async def _page(self) -> Page:
        before = self._lease.contexts_created
        page = await self._lease.page()
        if self._lease.contexts_created != before:
            self._loaded = False  # a fresh context starts on about:blank
            page.on("response", self._on_response)
        return page

    def _on_response(self, response: Response) -> None:
        # Chromium turns an error status with an empty body into ERR_HTTP_RESPONSE_CODE_FAILURE
        # and goto() then raises without a Response: keep the status to report it.
        with contextlib.suppress(PlaywrightError):  # a frame can detach meanwhile
            request = response.request
            if request.is_navigation_request() and request.frame.parent_frame is None:
                self._status = response.status

    async def _load(self, page: Page, deadline: float) -> None:
        spec = self.spec
        self._step = f"loading {redact_url(spec.url)} (until {spec.wait_until})"
        timeout = _remaining_ms(deadline)
        self._status = None
        response: Response | None
        if self.navigation == "reload" and self._loaded and page.url == self._loaded_url:
            response = await page.reload(wait_until=spec.wait_until, timeout=timeout)
        else:
            self._loaded = False
            response = await page.goto(spec.url, wait_until=spec.wait_until, timeout=timeout)
        if response is not None and response.status >= 400:
            raise self._http_error(response.status)
        self._loaded = True
        self._loaded_url = page.url  # as Chromium normalised it, after any redirect

    async def _prepare(self, page: Page, deadline: float) -> None:
        spec = self.spec
        if spec.wait_for_selector:
            self._step = f"waiting for selector {spec.wait_for_selector!r} on {self._url}"
            await page.wait_for_selector(
                playwright_selector(spec.wait_for_selector), timeout=_remaining_ms(deadline)
            )
        if spec.delay:
            self._step = f"waiting {spec.delay:g} s of delay on {self._url}"
            await asyncio.sleep(spec.delay)
        # CSS and JS go in before hide/remove so that removal also catches what a script added
        # (a consent dialog it opened) and hiding wins over injected styles.
        self._step = f"preparing {self._url}"
        if spec.inject_css:
            await page.add_style_tag(content=spec.inject_css)
        if spec.inject_js:
            # evaluate() runs in the page's main world and is not subject to its CSP, unlike an
            # added <script> tag (https://playwright.dev/python/docs/evaluating).
            await page.evaluate(spec.inject_js)
        for selector in spec.remove_selectors:
            await page.locator(playwright_selector(selector)).evaluate_all(_REMOVE_JS)
        for selector in spec.hide_selectors:
            await page.locator(playwright_selector(selector)).evaluate_all(_HIDE_JS)

    async def _screenshot(self, page: Page, deadline: float) -> bytes:
        spec = self.spec
        quality = self.template.quality
        if spec.clip_selector:
            self._step = f"taking a screenshot of {spec.clip_selector!r} on {self._url}"
            element = page.locator(playwright_selector(spec.clip_selector)).first
            if await element.count() == 0:
                raise SourceError(
                    f"clip selector {spec.clip_selector!r} matches nothing on {self._url}"
                )
            return await element.screenshot(
                type="jpeg", quality=quality, timeout=_remaining_ms(deadline)
            )
        self._step = f"taking a screenshot of {self._url}"
        if spec.full_page:
            height = int(await page.evaluate(_PAGE_HEIGHT_JS))
            if height > spec.max_height:
                # With full_page the clip is in page coordinates, so this keeps the top part.
                return await page.screenshot(
                    type="jpeg",
                    quality=quality,
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": spec.viewport_width, "height": spec.max_height},
                    timeout=_remaining_ms(deadline),
                )
        return await page.screenshot(
            type="jpeg", quality=quality, full_page=spec.full_page, timeout=_remaining_ms(deadline)
        )

    # ------------------------------------------------------------------ errors

    _step = "capturing"
    _status: int | None = None

    @property
    def _url(self) -> str:
        return redact_url(self.spec.url)

    def _timeout_message(self, step: str) -> str:
        return f"timed out after {self.spec.timeout:g} s {step}"

    async def _error(self, err: PlaywrightError) -> SourceError:
        """A readable SourceError for a Playwright error; rebuild the context if it is dead."""
        text = self._scrub(str(err))
        net = _NET_ERROR.search(text)
        if net and self._status is not None and self._status >= 400:
            return self._http_error(self._status)
        if net:
            reason = net.group(1).removeprefix("ERR_").replace("_", " ").lower()
            return SourceError(f"cannot load {self._url}: {reason} ({net.group(1)})")
        if "closed" in text or "crash" in text.lower() or not self._browser_alive():
            await self._lease.reset()
            return SourceError(f"the browser went away while {self._step}")
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        return SourceError(f"browser error while {self._step}: {first}")

    def _http_error(self, status: int) -> SourceError:
        hint = " (check basic_auth)" if status == 401 else ""
        return SourceError(f"HTTP {status} from {self._url}{hint}")

    def _browser_alive(self) -> bool:
        return self._browsers.health().running

    def _scrub(self, text: str) -> str:
        """``text`` without the template's secrets (basic-auth and URL passwords)."""
        secrets = []
        if self.spec.basic_auth is not None and self.spec.basic_auth.password:
            secrets.append(self.spec.basic_auth.password)
        with contextlib.suppress(ValueError):
            url_password = urlsplit(self.spec.url).password
            if url_password:
                secrets.append(url_password)
        text = text.replace(self.spec.url, self._url)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text


def _remaining_ms(deadline: float) -> float:
    """Milliseconds left until ``deadline`` (at least 1: Playwright reads 0 as no timeout)."""
    remaining = deadline - asyncio.get_running_loop().time()
    return max(1.0, remaining * 1000)
