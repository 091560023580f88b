"""One shared headless Chromium per agent, driven by Playwright; one context per website stream.

The manager owns the browser's whole life: lazy launch, crash detection, restart with backoff,
bounded shutdown and the temp files Chromium leaves behind (the original project leaked
thousands of profile directories, see docs/original notes, issue #8).

Where Chromium's files go:

- the profile (``--user-data-dir``) is created by the Playwright driver as
  ``$TMPDIR/playwright_chromiumdev_profile-*`` and removed by the driver whenever the browser
  process exits, a crash included; it survives only when the driver itself is killed, so the
  manager sweeps profiles whose ``SingletonLock`` names a dead process of this host;
- Chromium's own temp files (``org.chromium.Chromium.*`` holding ``SingletonSocket``, which
  Chromium does not remove when it is killed, and the shared-memory files that
  ``--disable-dev-shm-usage`` moves to the temp dir) and Playwright's artifacts go to a private
  directory per launch, ``glimpser-browser-<agent pid>-*``, which the manager removes when that
  browser is gone, and sweeps at start when its agent pid is dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import psutil
from playwright.async_api import (
    Browser,
    BrowserContext,
    HttpCredentials,
    Page,
    Playwright,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from pydantic import Field

from glimpser.shared.backoff import Backoff
from glimpser.shared.errors import SourceError
from glimpser.shared.models import Model

if TYPE_CHECKING:
    # The cookie TypedDict is not re-exported by playwright.async_api; types only.
    from playwright._impl._api_structures import SetCookieParam

log = logging.getLogger(__name__)

# Where distributions put the real Chromium binary; /usr/bin/chromium on Debian is a shell
# wrapper that adds flags from /etc/chromium.d: the binary itself is launched by default.
SYSTEM_CHROMIUM = (
    "/usr/lib/chromium/chromium",  # Debian, Raspberry Pi OS bookworm
    "/usr/lib/chromium-browser/chromium-browser",  # older Raspberry Pi OS
)

# --no-sandbox: we run as root in a container, where Chromium's sandbox cannot start.
# The background-networking family stops Chromium from phoning home (component updates,
# variations, sync): on an offline edge box those requests only retry forever.
# --disable-dev-shm-usage: Docker's /dev/shm is 64 MB and Chromium crashes when it fills
# (https://github.com/microsoft/playwright/issues/4761 and the Puppeteer troubleshooting guide).
DEFAULT_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

PRIVATE_PREFIX = "glimpser-browser-"
PROFILE_PREFIX = "playwright_chromiumdev_profile-"
PROBE_TIMEOUT = 5.0
# A browser that lived this long before it died was healthy: restart it without a long wait.
STABLE_UPTIME = 60.0


class BrowserSettings(Model):
    """How the agent's shared Chromium is started and recycled."""

    executable_path: Path | None = Field(
        None, description="Chromium binary; None finds Debian's, else Playwright's own"
    )
    extra_args: list[str] = Field(default_factory=list, max_length=50)
    recycle_after: int = Field(
        100, ge=1, le=100_000, description="captures before a stream's context is replaced"
    )
    launch_timeout: float = Field(30.0, ge=1, le=300)
    close_timeout: float = Field(10.0, ge=0.5, le=120)
    restart_base: float = Field(0.5, gt=0, le=60, description="first restart delay, seconds")
    restart_cap: float = Field(30.0, gt=0, le=3600, description="longest restart delay")


@dataclass(frozen=True, slots=True)
class ContextOptions:
    """What one stream's browser context looks like (viewport, scheme, auth, headers)."""

    viewport_width: int
    viewport_height: int
    device_scale: float = 1.0
    dark_mode: bool = False
    http_credentials: HttpCredentials | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    cookies: Sequence[SetCookieParam] = field(default_factory=tuple, repr=False)


@dataclass(frozen=True, slots=True)
class BrowserHealth:
    """A snapshot of the shared browser's state, for agent state reports and tests."""

    running: bool
    pid: int | None
    driver_pid: int | None
    executable: str | None
    version: str | None
    launches: int
    crashes: int
    launch_failures: int
    contexts: int
    last_error: str | None


@dataclass(slots=True)
class _Launch:
    """One running Chromium and what must be cleaned when it is gone."""

    browser: Browser
    proc: psutil.Process | None
    driver: psutil.Process | None
    profile_dir: Path | None
    private_dir: Path
    generation: int
    started: float

    @property
    def alive(self) -> bool:
        """Connected, and neither the browser nor the Playwright driver process has died."""
        # A killed driver closes the pipe without a "disconnected" event: is_connected() stays
        # True and every call fails with "Target page, context or browser has been closed".
        return self.browser.is_connected() and _running(self.proc) and _running(self.driver)

    @property
    def driver_pid(self) -> int | None:
        """PID of the Playwright driver (node) that launched the browser."""
        return self.driver.pid if self.driver is not None else None

    @property
    def pid(self) -> int | None:
        """The browser's PID, None when it could not be read."""
        return self.proc.pid if self.proc is not None else None


def find_chromium(explicit: Path | str | None = None) -> str | None:
    """The Chromium binary to launch, or None to use Playwright's bundled browser."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise SourceError(f"browser executable {path} does not exist")
        # A wrapper script is fine (Debian's /usr/bin/chromium ends in `exec`): the PID is read
        # from Chromium itself over CDP, never from the process Playwright spawned.
        return str(path)
    for candidate in SYSTEM_CHROMIUM:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _running(proc: psutil.Process | None) -> bool:
    """True for a live process (unknown counts as live); False once exited or a zombie."""
    if proc is None:
        return True
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def sweep_leftovers(tmp: Path | None = None) -> list[Path]:
    """Remove temp dirs of browsers whose owner is dead; return what was removed.

    Only directories that name their owner are touched: our private dirs carry the agent's
    pid, and Chromium's profile ``SingletonLock`` is a symlink to ``<hostname>-<pid>``.
    """
    root = tmp or Path(tempfile.gettempdir())
    host = socket.gethostname()
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            owner: int | None = None
            if entry.name.startswith(PRIVATE_PREFIX):
                pid_text = entry.name[len(PRIVATE_PREFIX) :].split("-", 1)[0]
                owner = int(pid_text) if pid_text.isdigit() else None
            elif entry.name.startswith(PROFILE_PREFIX):
                try:
                    target = os.readlink(entry / "SingletonLock")
                except OSError:
                    continue  # no lock yet (being created) or not Chromium's: not ours to judge
                lock_host, _, pid_text = target.rpartition("-")
                if lock_host == host and pid_text.isdigit():
                    owner = int(pid_text)
            if owner is None or _pid_alive(owner) or not entry.is_dir():
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _kill_tree(root: psutil.Process, timeout: float) -> None:
    """SIGKILL a process and all its descendants, waiting up to ``timeout`` for them to exit."""
    procs = process_tree(root)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)  # psutil checks the PID was not reused meanwhile
    psutil.wait_procs(procs, timeout=timeout)


def process_tree(root: psutil.Process | None) -> list[psutil.Process]:
    """The live (non-zombie) processes of a browser: itself and its descendants.

    ``root`` is the Process object taken at launch: its creation time guards against the PID
    having been reused by an unrelated process since the browser exited.
    """
    if root is None or not root.is_running():
        return []
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    live: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
    return live


def tree_rss(root: psutil.Process | None) -> int:
    """Resident memory in bytes summed over a browser's process tree (0 when not running)."""
    total = 0
    for proc in process_tree(root):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


class BrowserManager:
    """One Chromium per agent, launched on first use and shared by every website stream.

    Use as ``async with BrowserManager(settings) as browsers:``; streams take a
    :class:`PageLease` with :meth:`lease`. A crashed or unresponsive browser is replaced on the
    next use after a backoff delay; leases notice and rebuild their contexts by themselves.
    """

    def __init__(self, settings: BrowserSettings | None = None) -> None:
        self.settings = settings or BrowserSettings()
        self._playwright: Playwright | None = None
        self._launch: _Launch | None = None
        self._dead: list[_Launch] = []
        self._lock = asyncio.Lock()
        self._leases: set[PageLease] = set()
        self._backoff = Backoff(base=self.settings.restart_base, cap=self.settings.restart_cap)
        self._not_before = 0.0
        self._generation = 0
        self._launches = 0
        self._crashes = 0
        self._launch_failures = 0
        self._last_error: str | None = None
        self._executable: str | None = None
        self._version: str | None = None
        self._closed = False
        self._entered = False
        self._driver_dead = False

    async def __aenter__(self) -> Self:
        """Sweep leftovers of dead agents; the browser itself starts on first use."""
        if self._entered:
            raise RuntimeError("a BrowserManager can be entered only once")
        self._entered = True
        removed = await asyncio.to_thread(sweep_leftovers)
        if removed:
            log.info("removed %d browser temp dirs left by dead processes", len(removed))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close every lease, the browser and the driver; bounded by ``close_timeout`` each."""
        await self.aclose()

    # ------------------------------------------------------------------ public API

    def lease(self, options: ContextOptions, name: str = "page") -> PageLease:
        """A stream's own context and page, created on first use and rebuilt when stale."""
        if self._closed:
            raise SourceError("the browser manager is closed")
        lease = PageLease(self, options, name)
        self._leases.add(lease)
        return lease

    @property
    def pid(self) -> int | None:
        """PID of the running browser process, None when none is running."""
        launch = self._launch
        return launch.pid if launch is not None else None

    @property
    def generation(self) -> int:
        """Increases on every launch; a context from an older generation is dead."""
        return self._generation

    def health(self) -> BrowserHealth:
        """Whether the browser runs, its PIDs, and launch/crash counters."""
        launch = self._launch
        running = launch is not None and launch.alive
        return BrowserHealth(
            running=running,
            pid=launch.pid if launch else None,
            driver_pid=launch.driver_pid if launch else None,
            executable=self._executable,
            version=self._version,
            launches=self._launches,
            crashes=self._crashes,
            launch_failures=self._launch_failures,
            contexts=sum(1 for lease in self._leases if lease.has_context),
            last_error=self._last_error,
        )

    def processes(self) -> list[psutil.Process]:
        """The browser's live processes (browser, zygotes, renderers, utilities)."""
        launch = self._launch
        return process_tree(launch.proc if launch is not None else None)

    def rss(self) -> int:
        """Resident bytes summed over the browser's process tree."""
        launch = self._launch
        return tree_rss(launch.proc if launch is not None else None)

    async def browser(self) -> Browser:
        """The running browser, launching it (after any backoff delay) when there is none."""
        if self._closed:
            raise SourceError("the browser manager is closed")
        launch = self._launch
        if launch is not None and launch.alive:
            return launch.browser
        async with self._lock:
            launch = self._launch
            if launch is not None and launch.alive:
                return launch.browser
            if launch is not None:
                # Dead without a "disconnected" event: it can lag the failing call, and never
                # comes when the driver itself died.
                self._mark_dead(launch, "browser or Playwright driver process died")
            await self._reap_dead()
            delay = self._not_before - time.monotonic()
            if delay > 0:
                log.info("waiting %.1f s before restarting Chromium", delay)
                await asyncio.sleep(delay)
            return (await self._start()).browser

    async def check(self) -> bool:
        """Probe the browser over CDP; restart it when it does not answer in time."""
        launch = self._launch
        if launch is None:
            return False
        if not launch.alive:
            self._mark_dead(launch, "browser or Playwright driver process died")
            await self._reap_dead()
            return False
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                session = await launch.browser.new_browser_cdp_session()
                await session.send("Browser.getVersion")
                await session.detach()
            return True
        except (TimeoutError, PlaywrightError) as err:
            reason = _first_line(err) if str(err) else f"no answer within {PROBE_TIMEOUT:g} s"
            log.warning("Chromium (pid %s) is unresponsive (%s); restarting it", launch.pid, reason)
            self._mark_dead(launch, f"browser unresponsive: {reason}")
            await self._reap_dead()
            return False

    async def aclose(self) -> None:
        """Close everything; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        timeout = self.settings.close_timeout
        for lease in list(self._leases):
            await lease.aclose()
        async with self._lock:
            if self._launch is not None:
                await self._stop(self._launch)
                self._launch = None
            await self._reap_dead()
            if self._playwright is not None:
                playwright, self._playwright = self._playwright, None
                try:
                    async with asyncio.timeout(timeout):
                        await playwright.stop()
                except (TimeoutError, PlaywrightError, OSError) as err:
                    log.warning("Playwright driver did not stop cleanly: %s", err)

    # ------------------------------------------------------------------ internals

    async def _start(self) -> _Launch:
        """Launch Chromium (the caller holds the lock); SourceError when it cannot."""
        if self._driver_dead:
            await self._drop_driver()
        try:
            if self._playwright is None:
                starter = async_playwright()
                async with asyncio.timeout(self.settings.launch_timeout):
                    self._playwright = await starter.start()
                _consume_driver_error(starter)
            executable = self._executable or self._resolve_executable(self._playwright)
        except SourceError as err:
            self._launch_failed(str(err))
            raise
        except (TimeoutError, PlaywrightError, OSError) as err:
            self._launch_failed(f"cannot start the Playwright driver: {_first_line(err)}")
            raise SourceError(self._last_error or "") from err
        private = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))
        # TMPDIR is read by Chromium itself (socket dir, shm files); the environment is read
        # here, at launch time, never at import.
        env: dict[str, str | float | bool] = {**os.environ, "TMPDIR": str(private)}
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=executable,
                args=[*DEFAULT_ARGS, *self.settings.extra_args],
                env=env,
                artifacts_dir=private,
                timeout=self.settings.launch_timeout * 1000,
                # The agent handles signals and closes the browser itself.
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except PlaywrightError as err:
            shutil.rmtree(private, ignore_errors=True)
            await self._drop_driver()
            self._launch_failed(f"cannot start Chromium ({executable}): {_first_line(err)}")
            raise SourceError(self._last_error or "") from err
        self._executable = executable
        pid = await self._browser_pid(browser)
        proc: psutil.Process | None = None
        driver: psutil.Process | None = None
        profile: Path | None = None
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                driver = proc.parent()
                for arg in proc.cmdline():
                    if arg.startswith("--user-data-dir="):
                        profile = Path(arg.split("=", 1)[1])
        self._generation += 1
        launch = _Launch(
            browser, proc, driver, profile, private, self._generation, time.monotonic()
        )
        browser.on("disconnected", lambda _: self._on_disconnected(launch))
        self._launch = launch
        self._launches += 1
        self._version = browser.version
        self._last_error = None
        log.info("Chromium %s started (pid %s)", browser.version, pid)
        return launch

    def _resolve_executable(self, playwright: Playwright) -> str:
        found = find_chromium(self.settings.executable_path)
        if found is not None:
            return found
        bundled = playwright.chromium.executable_path
        if bundled and os.access(bundled, os.X_OK):
            return bundled
        raise SourceError(
            "no Chromium found: install Debian's package (apt-get install chromium), "
            "or Playwright's browser (python -m playwright install chromium), "
            "or set browser.executable_path"
        )

    async def _browser_pid(self, browser: Browser) -> int | None:
        """The browser process id, asked over CDP (Playwright does not expose it)."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                session = await browser.new_browser_cdp_session()
                info = await session.send("SystemInfo.getProcessInfo")
                await session.detach()
        except (TimeoutError, PlaywrightError) as err:
            log.warning("cannot read the browser PID: %s", err)
            return None
        for proc in info.get("processInfo", []):
            if proc.get("type") == "browser":
                return int(proc["id"])
        return None

    def _launch_failed(self, reason: str) -> None:
        self._launch_failures += 1
        self._last_error = reason
        delay = self._backoff.next_delay()
        self._not_before = time.monotonic() + delay
        log.warning("%s; retrying in %.1f s", reason, delay)

    def _on_disconnected(self, launch: _Launch) -> None:
        if self._launch is launch and not self._closed:
            log.warning("Chromium (pid %s) disconnected; it restarts on next use", launch.pid)
            self._mark_dead(launch, "browser disconnected (crashed or killed)")

    def _mark_dead(self, launch: _Launch, reason: str) -> None:
        """Forget a launch that died by itself; cleanup happens in the next owner call."""
        if self._launch is not launch:
            return
        self._launch = None
        self._dead.append(launch)
        self._crashes += 1
        if not _running(launch.driver):
            log.warning("the Playwright driver (pid %s) died; it restarts too", launch.driver_pid)
            self._driver_dead = True
        self._last_error = reason
        if time.monotonic() - launch.started > STABLE_UPTIME:
            self._backoff.reset()
        self._not_before = time.monotonic() + self._backoff.next_delay()

    async def _reap_dead(self) -> None:
        """Finish off dead launches: close handles, kill stragglers, remove private dirs."""
        while self._dead:
            await self._stop(self._dead.pop())

    async def _stop(self, launch: _Launch) -> None:
        """Close one browser within ``close_timeout``, killing it when that is exceeded."""
        timeout = self.settings.close_timeout
        try:
            async with asyncio.timeout(timeout):
                await launch.browser.close()
        except (TimeoutError, PlaywrightError) as err:
            log.warning("Chromium (pid %s) did not close cleanly: %s", launch.pid, err)
        if launch.proc is not None and process_tree(launch.proc):
            log.warning("killing Chromium (pid %s) and its children", launch.pid)
            await asyncio.to_thread(_kill_tree, launch.proc, timeout)
        await asyncio.to_thread(shutil.rmtree, launch.private_dir, True)
        if launch.profile_dir is not None and not process_tree(launch.proc):
            # The driver removes the profile when the browser exits, unless the driver is
            # what died: then it is ours to remove, now that no process of it is left.
            await asyncio.to_thread(shutil.rmtree, launch.profile_dir, True)

    async def _drop_driver(self) -> None:
        """Stop the driver after a failed launch so the next attempt starts from scratch."""
        self._driver_dead = False
        playwright, self._playwright = self._playwright, None
        if playwright is None:
            return
        with contextlib.suppress(TimeoutError, PlaywrightError, OSError):
            async with asyncio.timeout(self.settings.close_timeout):
                await playwright.stop()

    def _forget(self, lease: PageLease) -> None:
        self._leases.discard(lease)


class PageLease:
    """One stream's context and page in the shared browser.

    The context is rebuilt after ``recycle_after`` uses (so memory stays bounded), after a
    browser restart, a renderer crash or :meth:`reset`.
    """

    def __init__(self, manager: BrowserManager, options: ContextOptions, name: str) -> None:
        self._manager = manager
        self.options = options
        self.name = name
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._generation = -1
        self._uses = 0
        self._broken = False
        self.contexts_created = 0

    @property
    def has_context(self) -> bool:
        """True while a context is open for this lease."""
        return self._context is not None

    @property
    def uses(self) -> int:
        """Captures done with the current context."""
        return self._uses

    async def page(self) -> Page:
        """The stream's page, making a fresh context when the old one is stale or dead."""
        manager = self._manager
        browser = await manager.browser()
        stale = (
            self._page is None
            or self._broken
            or self._generation != manager.generation
            or self._uses >= manager.settings.recycle_after
            or self._page.is_closed()
        )
        if not stale and self._page is not None:
            return self._page
        await self.reset()
        context = await self._new_context(browser)
        self._context = context
        self._generation = manager.generation
        self._uses = 0
        self._broken = False
        self.contexts_created += 1
        try:
            page = await context.new_page()
        except PlaywrightError as err:
            await self.reset()
            raise SourceError(f"cannot open a page for {self.name}: {_first_line(err)}") from err
        # A renderer crash leaves the page unusable: rebuild on next use.
        page.on("crash", lambda _: self._mark_broken("renderer crashed"))
        self._page = page
        return page

    def used(self) -> None:
        """Count one capture against the recycle limit."""
        self._uses += 1

    async def reset(self) -> None:
        """Close the context now; the next :meth:`page` makes a new one."""
        context, self._context, self._page = self._context, None, None
        if context is None:
            return
        try:
            async with asyncio.timeout(self._manager.settings.close_timeout):
                await context.close()
        except (TimeoutError, PlaywrightError) as err:
            # A context of a dead browser cannot close; the browser's own cleanup covers it.
            log.debug("context of %s did not close cleanly: %s", self.name, err)

    async def aclose(self) -> None:
        """Close the context and release the lease; safe to call twice."""
        await self.reset()
        self._manager._forget(self)

    def _mark_broken(self, reason: str) -> None:
        log.warning("%s: %s; its context will be rebuilt", self.name, reason)
        self._broken = True

    async def _new_context(self, browser: Browser) -> BrowserContext:
        opts = self.options
        try:
            context = await browser.new_context(
                viewport={"width": opts.viewport_width, "height": opts.viewport_height},
                device_scale_factor=opts.device_scale,
                color_scheme="dark" if opts.dark_mode else "light",
                http_credentials=opts.http_credentials,
                extra_http_headers=dict(opts.headers) or None,
                accept_downloads=False,
                # A service worker can answer from its cache and hide what the server serves.
                service_workers="block",
            )
            if opts.cookies:
                await context.add_cookies(list(opts.cookies))
        except PlaywrightError as err:
            raise SourceError(
                f"cannot create a browser context for {self.name}: {_first_line(err)}"
            ) from err
        return context

    async def close_strays(self) -> int:
        """Close pages the site opened itself (window.open, target=_blank); return how many."""
        context, page = self._context, self._page
        if context is None:
            return 0
        closed = 0
        for other in context.pages:
            if other is not page:
                # They would pile up unseen, each a renderer's worth of memory.
                with contextlib.suppress(PlaywrightError):
                    await other.close()
                    closed += 1
        return closed


def _consume_driver_error(starter: object) -> None:
    """Make sure the exception Playwright stores when its driver dies is retrieved.

    Playwright awaits its transport's error future only while connecting, so after a driver
    death asyncio logs "Future exception was never retrieved" at garbage collection. This reads
    private attributes of ``async_playwright()``'s context manager, best effort: if Playwright
    renames them, nothing worse than that log line happens.
    """
    transport = getattr(getattr(starter, "_client", None), "_transport", None)
    future = getattr(transport, "on_error_future", None)
    if isinstance(future, asyncio.Future):
        future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


def _first_line(err: BaseException) -> str:
    """First line of a Playwright error without its ``Call log`` (may hold URLs and steps)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
