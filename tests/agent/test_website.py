"""WebsiteCapturer against real Chromium and pages served on 127.0.0.1 by aiohttp."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import ValidationError

from glimpser.agent.capture.change import ChangeDetector
from glimpser.agent.sources.browser import BrowserManager, BrowserSettings, find_chromium
from glimpser.agent.sources.website import CapturedPage, WebsiteCapturer, playwright_selector
from glimpser.shared.errors import SourceError
from glimpser.shared.models import Template, WebsiteSource
from tests.conftest import skip_or_fail

# One event loop for the module so that the shared browser outlives single tests.
module_loop = pytest.mark.asyncio(loop_scope="module")

BGR = tuple[int, int, int]
RED: BGR = (0, 0, 255)
GREEN: BGR = (0, 255, 0)
BLUE: BGR = (255, 0, 0)
YELLOW: BGR = (0, 255, 255)
WHITE: BGR = (255, 255, 255)
BLACK: BGR = (0, 0, 0)

# 400x400 viewport: blue body, red box top-left (100x50), green box at (200,100) 80x60,
# yellow banner across y 300..340. Known colours at known points.
LAYOUT = """<!doctype html><html><head><style>
html, body { margin: 0; background: #0000ff; }
#box { position: absolute; left: 0; top: 0; width: 100px; height: 50px; background: #ff0000; }
.green { position: absolute; left: 200px; top: 100px; width: 80px; height: 60px;
         background: #00ff00; }
.banner { position: absolute; left: 0; top: 300px; width: 100%; height: 40px;
          background: #ffff00; }
</style></head><body>
<div id="box"></div><div class="green"></div><div class="banner">cookies!</div>
</body></html>"""

TALL = """<!doctype html><html><body style="margin:0;background:#00ff00">
<div style="height:3000px;background:linear-gradient(#ff0000,#0000ff)"></div></body></html>"""

DARK = """<!doctype html><html><head><style>
body { margin: 0; background: #ffffff; }
@media (prefers-color-scheme: dark) { body { background: #000000; } }
</style></head><body></body></html>"""

LATE = """<!doctype html><html><body style="margin:0;background:#0000ff">
<script>setTimeout(() => { const d = document.createElement('div'); d.id = 'late';
d.style.cssText = 'width:100px;height:100px;background:#ff0000';
document.body.appendChild(d); }, 300);</script></body></html>"""


@dataclass
class Site:
    """The test web server: its base URL, what it saw, and knobs the tests turn."""

    base: str = ""
    requests: list[web.Request] = field(default_factory=list)
    release_slow: asyncio.Event = field(default_factory=asyncio.Event)
    counter: int = 0

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base + path


@pytest_asyncio.fixture(loop_scope="module")
async def site() -> AsyncIterator[Site]:
    """An aiohttp server on 127.0.0.1 serving the test pages."""
    state = Site()

    def html(text: str) -> web.Response:
        return web.Response(text=text, content_type="text/html")

    async def layout(request: web.Request) -> web.Response:
        state.requests.append(request)
        return html(LAYOUT)

    async def slow(request: web.Request) -> web.Response:
        await state.release_slow.wait()
        return html(LAYOUT)

    async def counter(request: web.Request) -> web.Response:
        # Each load shows the next colour of a cycle: the whole page changes every capture.
        state.counter += 1
        colour = ["#ff0000", "#00ff00", "#0000ff"][state.counter % 3]
        return html(f"<body style='margin:0;background:{colour}'>{state.counter}</body>")

    async def auth(request: web.Request) -> web.Response:
        state.requests.append(request)
        expected = "Basic " + base64.b64encode(b"viewer:s3cret-pw").decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        return html(LAYOUT)

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    def static(text: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return html(text)

        return handler

    app = web.Application()
    app.router.add_get("/", layout)
    app.router.add_get("/tall", static(TALL))
    app.router.add_get("/dark", static(DARK))
    app.router.add_get("/late", static(LATE))
    app.router.add_get("/slow", slow)
    app.router.add_get("/counter", counter)
    app.router.add_get("/auth", auth)
    app.router.add_get("/fail", fail)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release_slow.set()
        await runner.cleanup()


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium; skipped locally (failed on CI) when it is not installed."""
    path = find_chromium()
    if path is None:
        skip_or_fail("Chromium is not installed: apt-get install chromium")
    assert path is not None
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browsers(chromium: str) -> AsyncIterator[BrowserManager]:
    """One BrowserManager for the module (a launch per test would double the run time)."""
    async with BrowserManager(BrowserSettings(close_timeout=5)) as manager:
        yield manager


def template(url: str, quality: int = 90, **source: Any) -> Template:
    """A website template for ``url`` with a 400x400 viewport unless told otherwise."""
    spec: dict[str, Any] = {"kind": "website", "url": url, "viewport_width": 400}
    spec.setdefault("viewport_height", 400)
    spec.update(source)
    return Template(id="web", name="web", source=spec, quality=quality)


def decode(page: CapturedPage) -> npt.NDArray[np.uint8]:
    """The screenshot as a BGR array, checked against its reported size."""
    image = cv2.imdecode(np.frombuffer(page.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    assert (page.width, page.height) == (image.shape[1], image.shape[0])
    return np.asarray(image, dtype=np.uint8)


def near(image: npt.NDArray[np.uint8], x: int, y: int, colour: BGR, tol: int = 40) -> bool:
    """True when the pixel at (x, y) is within ``tol`` of ``colour`` on every channel."""
    pixel = image[y, x].astype(int)
    return bool(np.all(np.abs(pixel - np.array(colour)) <= tol))


async def shot(browsers: BrowserManager, tpl: Template) -> CapturedPage:
    """One capture with a fresh capturer."""
    async with WebsiteCapturer(browsers, tpl) as capturer:
        return await capturer.capture()


# ---------------------------------------------------------------- pixels and geometry


@module_loop
async def test_viewport_colours_and_size(browsers: BrowserManager, site: Site) -> None:
    image = decode(await shot(browsers, template(site.url("/"))))
    assert image.shape[:2] == (400, 400)
    assert near(image, 10, 10, RED)
    assert near(image, 240, 130, GREEN)
    assert near(image, 350, 50, BLUE)
    assert near(image, 200, 320, YELLOW)


@pytest.mark.parametrize(
    ("selector", "size"),
    [
        ("#box", (100, 50)),
        ("div.green", (80, 60)),
        ("//div[@class='green']", (80, 60)),
        ("/html/body/div[1]", (100, 50)),
        ("xpath=//div[@id='box']", (100, 50)),
    ],
)
@module_loop
async def test_clip_to_element(
    browsers: BrowserManager, site: Site, selector: str, size: tuple[int, int]
) -> None:
    page = await shot(browsers, template(site.url("/"), clip_selector=selector))
    image = decode(page)
    assert (page.width, page.height) == size
    colour = RED if size == (100, 50) else GREEN
    assert near(image, size[0] // 2, size[1] // 2, colour)


@module_loop
async def test_clip_selector_matching_nothing_is_a_source_error(
    browsers: BrowserManager, site: Site
) -> None:
    with pytest.raises(SourceError, match=r"clip selector '#nope' matches nothing"):
        await shot(browsers, template(site.url("/"), clip_selector="#nope", timeout=3))


@module_loop
async def test_hidden_and_removed_selectors_are_gone(browsers: BrowserManager, site: Site) -> None:
    tpl = template(site.url("/"), hide_selectors=[".banner"], remove_selectors=["#box"])
    image = decode(await shot(browsers, tpl))
    assert near(image, 200, 320, BLUE), "the yellow banner is still visible"
    assert near(image, 10, 10, BLUE), "the red box is still there"
    assert near(image, 240, 130, GREEN), "unrelated content must stay"


@module_loop
async def test_device_scale_doubles_the_size(browsers: BrowserManager, site: Site) -> None:
    page = await shot(browsers, template(site.url("/"), device_scale=2))
    image = decode(page)
    assert (page.width, page.height) == (800, 800)
    assert near(image, 20, 20, RED)
    assert near(image, 480, 260, GREEN)
    clipped = await shot(browsers, template(site.url("/"), device_scale=2, clip_selector="#box"))
    assert (clipped.width, clipped.height) == (200, 100)


@module_loop
async def test_full_page_honours_max_height(browsers: BrowserManager, site: Site) -> None:
    full = await shot(browsers, template(site.url("/tall"), full_page=True, max_height=5000))
    assert (full.width, full.height) == (400, 3000)
    capped = await shot(browsers, template(site.url("/tall"), full_page=True, max_height=1000))
    assert (capped.width, capped.height) == (400, 1000)
    image = decode(capped)
    assert near(image, 200, 5, RED, tol=60), "the cap keeps the top of the page"
    viewport = await shot(browsers, template(site.url("/tall")))
    assert (viewport.width, viewport.height) == (400, 400)


@pytest.mark.parametrize(("dark", "colour"), [(False, WHITE), (True, BLACK)])
@module_loop
async def test_dark_mode_sets_prefers_color_scheme(
    browsers: BrowserManager, site: Site, dark: bool, colour: BGR
) -> None:
    image = decode(await shot(browsers, template(site.url("/dark"), dark_mode=dark)))
    assert near(image, 200, 200, colour, tol=10)


@module_loop
async def test_inject_css_and_js(browsers: BrowserManager, site: Site) -> None:
    tpl = template(
        site.url("/"),
        inject_css=".green { background: #ff0000 !important; }",
        inject_js="document.getElementById('box').style.background = '#00ff00'",
    )
    image = decode(await shot(browsers, tpl))
    assert near(image, 240, 130, RED)
    assert near(image, 10, 10, GREEN)


@module_loop
async def test_wait_for_selector_waits_for_late_content(
    browsers: BrowserManager, site: Site
) -> None:
    image = decode(await shot(browsers, template(site.url("/late"), wait_for_selector="#late")))
    assert near(image, 50, 50, RED)


@module_loop
async def test_jpeg_quality_follows_the_template(browsers: BrowserManager, site: Site) -> None:
    low = await shot(browsers, template(site.url("/tall"), quality=10))
    high = await shot(browsers, template(site.url("/tall"), quality=95))
    assert len(low.jpeg) < len(high.jpeg)


# ---------------------------------------------------------------- what reaches the server


@module_loop
async def test_headers_and_cookies_reach_the_server(browsers: BrowserManager, site: Site) -> None:
    tpl = template(
        site.url("/"),
        headers={"X-Glimpser-Test": "hello"},
        cookies=[{"name": "session", "value": "abc123"}],
    )
    await shot(browsers, tpl)
    request = site.requests[-1]
    assert request.headers.get("X-Glimpser-Test") == "hello"
    assert request.cookies.get("session") == "abc123"


@module_loop
async def test_basic_auth_reaches_the_server(browsers: BrowserManager, site: Site) -> None:
    good = template(site.url("/auth"), basic_auth={"username": "viewer", "password": "s3cret-pw"})
    image = decode(await shot(browsers, good))
    assert near(image, 10, 10, RED)
    assert any(r.headers.get("Authorization", "").startswith("Basic ") for r in site.requests)


@module_loop
async def test_wrong_basic_auth_is_a_401_without_the_password(
    browsers: BrowserManager, site: Site
) -> None:
    bad = template(site.url("/auth"), basic_auth={"username": "viewer", "password": "hunter2-x"})
    with pytest.raises(SourceError) as info:
        await shot(browsers, bad)
    assert "HTTP 401 from" in str(info.value)
    assert "hunter2-x" not in str(info.value)


@module_loop
async def test_http_error_status_is_a_source_error(browsers: BrowserManager, site: Site) -> None:
    with pytest.raises(SourceError, match=r"HTTP 500 from http://127\.0\.0\.1:\d+/fail"):
        await shot(browsers, template(site.url("/fail")))


@module_loop
async def test_refused_connection_is_a_readable_source_error(
    browsers: BrowserManager, site: Site
) -> None:
    from tests.helpers import free_port

    url = f"http://user:topsecret@127.0.0.1:{free_port()}/x"
    with pytest.raises(SourceError) as info:
        await shot(browsers, template(url, timeout=5))
    message = str(info.value)
    assert "connection refused" in message
    assert "topsecret" not in message


# ---------------------------------------------------------------- timeouts and recovery


@pytest.mark.slow
@module_loop
async def test_page_that_never_loads_times_out_then_recovers(
    browsers: BrowserManager, site: Site
) -> None:
    url = site.url("/slow")
    async with WebsiteCapturer(browsers, template(url, timeout=2)) as capturer:
        with pytest.raises(SourceError, match=rf"timed out after 2 s loading {url}"):
            await capturer.capture()
        site.release_slow.set()
        image = decode(await capturer.capture())
        assert near(image, 10, 10, RED)


@module_loop
async def test_capturer_reuses_its_page_and_context(browsers: BrowserManager, site: Site) -> None:
    async with WebsiteCapturer(browsers, template(site.url("/"))) as capturer:
        for _ in range(3):
            await capturer.capture()
        assert capturer.lease.contexts_created == 1
        assert browsers.health().contexts == 1
    assert browsers.health().contexts == 0


# ---------------------------------------------------------------- change detection


@module_loop
async def test_changing_page_is_reported_changed(browsers: BrowserManager, site: Site) -> None:
    detector = ChangeDetector(threshold=0.05)
    async with WebsiteCapturer(browsers, template(site.url("/counter"))) as capturer:
        first = detector.update((await capturer.capture()).jpeg)
        assert first.first
        for _ in range(3):
            result = detector.update((await capturer.capture()).jpeg)
            assert result.changed and not result.identical
            assert result.fraction > 0.9


@module_loop
async def test_url_with_fragment_is_really_reloaded(browsers: BrowserManager, site: Site) -> None:
    # goto() to the URL the page already shows plus a #fragment loads nothing (same-document
    # navigation); the capturer must still fetch the page anew each time.
    async with WebsiteCapturer(browsers, template(site.url("/counter#top"))) as capturer:
        before = site.counter
        for _ in range(3):
            await capturer.capture()
        assert site.counter - before == 3


@module_loop
async def test_static_page_is_reported_identical(browsers: BrowserManager, site: Site) -> None:
    detector = ChangeDetector(threshold=0.01)
    async with WebsiteCapturer(browsers, template(site.url("/"))) as capturer:
        detector.update((await capturer.capture()).jpeg)
        for _ in range(3):
            result = detector.update((await capturer.capture()).jpeg)
            assert result.identical and not result.changed
            assert result.fraction == 0.0


# ---------------------------------------------------------------- validation (shared models)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https URLs can be captured, not 'file'"),
        ("javascript:alert(1)", "only http and https URLs can be captured, not 'javascript'"),
        ("not a url", "only http and https URLs can be captured, not ''"),
        ("ftp://example.com/x", "only http and https URLs can be captured, not 'ftp'"),
        ("http://", "the URL has no host name"),
        ("https:///path-only", "the URL has no host name"),
    ],
)
def test_bad_urls_are_rejected_by_validation(url: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        template(url)
    assert message in str(info.value)
    assert "source.website.url" in str(info.value)


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("viewport_width", 100_000),
        ("viewport_height", 0),
        ("viewport_width", -5),
        ("device_scale", 50),
        ("max_height", 10_000_000),
        ("timeout", 0),
    ],
)
def test_absurd_sizes_are_rejected_by_validation(field_name: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        overrides: dict[str, Any] = {field_name: value}
        template("http://example.com/", **overrides)
    assert field_name in str(info.value)


def test_header_injection_is_rejected() -> None:
    with pytest.raises(ValidationError, match="invalid HTTP header"):
        template("http://example.com/", headers={"X-A": "b\r\nX-Evil: 1"})


def test_non_website_template_is_refused() -> None:
    tpl = Template(id="cam", name="cam", source={"kind": "test"})
    with pytest.raises(TypeError, match="not a website template"):
        WebsiteCapturer(BrowserManager(), tpl)


@module_loop
async def test_runtime_scheme_check(browsers: BrowserManager) -> None:
    # Validation is the first line; the capturer refuses again if a spec is built unchecked.
    spec = WebsiteSource.model_construct(**{**WebsiteSource(url="http://x/").__dict__})
    object.__setattr__(spec, "url", "file:///etc/passwd")
    tpl = Template.model_construct(id="w", name="w", source=spec, quality=80)
    with pytest.raises(SourceError, match="only http and https"):
        await WebsiteCapturer(browsers, tpl).capture()


def test_selector_syntax() -> None:
    assert playwright_selector("#a .b") == "css=#a .b"
    assert playwright_selector("text=hello") == "css=text=hello"
    assert playwright_selector("//div") == "xpath=//div"
    assert playwright_selector("/html/body") == "xpath=/html/body"
    assert playwright_selector("(//div)[2]") == "xpath=(//div)[2]"
    assert playwright_selector("xpath=//p") == "xpath=//p"
