"""BrowserManager: crash recovery, bounded processes and temp dirs, leftovers, bad setups."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from aiohttp import web

from glimpser.agent.sources import browser as browser_module
from glimpser.agent.sources.browser import (
    PRIVATE_PREFIX,
    PROFILE_PREFIX,
    BrowserManager,
    BrowserSettings,
    find_chromium,
    sweep_leftovers,
)
from glimpser.agent.sources.website import WebsiteCapturer
from glimpser.shared.errors import SourceError
from glimpser.shared.models import Template
from tests.conftest import skip_or_fail
from tests.helpers import wait_for

PAGE = """<!doctype html><html><body style="margin:0;background:#0000ff">
<div id="n" style="font:40px sans-serif;color:#fff">{n}</div></body></html>"""


@pytest.fixture
def chromium() -> str:
    """The system Chromium; skipped locally (failed on CI) when it is not installed."""
    path = find_chromium()
    if path is None:
        skip_or_fail("Chromium is not installed: apt-get install chromium")
    assert path is not None
    return path


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    """URL of a small page on 127.0.0.1 that shows a new number on every load."""
    count = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        return web.Response(text=PAGE.format(n=count), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


def template(url: str, name: str = "web", **source: object) -> Template:
    """A small website template (the smallest viewport the model allows)."""
    spec = {"kind": "website", "url": url, "viewport_width": 200, "viewport_height": 200}
    spec.update(source)
    return Template(id=name, name=name, source=spec)


def our_chromium_pids() -> set[int]:
    """Live Chromium processes that descend from this test process (through the driver)."""
    pids: set[int] = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "chrom" in proc.name():
                pids.add(proc.pid)
        except psutil.Error:
            continue
    return pids


def profile_dirs_of(pids: set[int]) -> list[Path]:
    """Playwright profile dirs in the temp dir whose Chromium lock names one of ``pids``."""
    host = socket.gethostname()
    found: list[Path] = []
    for entry in Path(tempfile.gettempdir()).glob(f"{PROFILE_PREFIX}*"):
        try:
            target = os.readlink(entry / "SingletonLock")
        except OSError:
            continue
        lock_host, _, pid = target.rpartition("-")
        if lock_host == host and pid.isdigit() and int(pid) in pids:
            found.append(entry)
    return found


def private_dirs() -> list[Path]:
    """This process's private browser temp dirs."""
    return list(Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}{os.getpid()}-*"))


# ---------------------------------------------------------------- lifecycle


async def test_lazy_start_one_browser_many_contexts_and_clean_close(
    chromium: str, page_url: str
) -> None:
    async with BrowserManager() as browsers:
        assert browsers.pid is None, "nothing starts before the first capture"
        caps = [WebsiteCapturer(browsers, template(page_url, f"s{i}")) for i in range(3)]
        # Three streams asking at once still share one launch.
        pages = await asyncio.gather(*(cap.capture() for cap in caps))
        assert [page.width for page in pages] == [200, 200, 200]
        health = browsers.health()
        assert health.running and health.pid is not None
        assert health.launches == 1 and health.contexts == 3
        assert health.executable == chromium
        pid = health.pid
        tree = {p.pid for p in browsers.processes()}
        assert pid in tree and tree <= our_chromium_pids()
        assert len(profile_dirs_of({pid})) == 1
        assert len(private_dirs()) == 1
        assert browsers.rss() > 10_000_000
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert our_chromium_pids() == set()
    assert profile_dirs_of({pid}) == []
    assert private_dirs() == []


@pytest.mark.slow
async def test_killed_browser_recovers_for_every_stream(page_url: str, chromium: str) -> None:
    settings = BrowserSettings(restart_base=0.2, restart_cap=1.0)
    async with BrowserManager(settings) as browsers:
        a = WebsiteCapturer(browsers, template(page_url, "a"))
        b = WebsiteCapturer(browsers, template(page_url, "b"))
        await a.capture()
        await b.capture()
        old_pid = browsers.pid
        assert old_pid is not None
        old_private = private_dirs()
        old_profiles = profile_dirs_of({old_pid})
        assert len(old_private) == 1 and len(old_profiles) == 1

        os.kill(old_pid, signal.SIGKILL)
        await wait_for(lambda: not browsers.health().running, timeout=10, message="no disconnect")

        for cap in (a, b):

            async def recovered(cap: WebsiteCapturer = cap) -> bool:
                try:
                    page = await cap.capture()
                except SourceError:
                    return False
                return page.width == 200

            await wait_for(recovered, timeout=30, interval=0.2, message="no recovery")
        health = browsers.health()
        assert health.running and health.pid not in (None, old_pid)
        assert health.crashes == 1 and health.launches == 2
        # The dead browser's files are gone (Chromium does not remove its socket dir when
        # killed; the manager removes the private dir that holds it).
        assert not any(d.exists() for d in old_private)
        assert not any(d.exists() for d in old_profiles)
        assert len(private_dirs()) == 1
    assert our_chromium_pids() == set()
    assert private_dirs() == []


async def test_killed_renderer_rebuilds_only_that_context(page_url: str, chromium: str) -> None:
    async with BrowserManager() as browsers:
        cap = WebsiteCapturer(browsers, template(page_url))
        await cap.capture()
        pid = browsers.pid
        renderers = [p for p in browsers.processes() if "--type=renderer" in " ".join(p.cmdline())]
        assert renderers
        for proc in renderers:
            proc.send_signal(signal.SIGKILL)

        async def recovered() -> bool:
            try:
                return (await cap.capture()).width == 200
            except SourceError:
                return False

        await wait_for(recovered, timeout=20, interval=0.2, message="no recovery")
        assert browsers.pid == pid, "a renderer crash must not restart the browser"
        assert cap.lease.contexts_created == 2


@pytest.mark.slow
async def test_killed_driver_is_restarted_and_its_profile_removed(
    page_url: str, chromium: str
) -> None:
    settings = BrowserSettings(restart_base=0.2, restart_cap=1.0)
    async with BrowserManager(settings) as browsers:
        cap = WebsiteCapturer(browsers, template(page_url))
        await cap.capture()
        health = browsers.health()
        assert health.pid is not None and health.driver_pid is not None
        profiles = profile_dirs_of({health.pid})
        assert len(profiles) == 1
        # Chromium exits when its pipe closes, but the dead driver cannot remove the profile.
        os.kill(health.driver_pid, signal.SIGKILL)
        await wait_for(lambda: not browsers.health().running, timeout=10)

        async def recovered() -> bool:
            try:
                return (await cap.capture()).width == 200
            except SourceError:
                return False

        await wait_for(recovered, timeout=30, interval=0.2, message="no recovery")
        after = browsers.health()
        assert after.driver_pid not in (None, health.driver_pid)
        assert after.pid not in (None, health.pid)
        assert not profiles[0].exists()
    assert our_chromium_pids() == set()
    assert private_dirs() == []


@pytest.mark.slow
async def test_hung_browser_is_detected_and_replaced(page_url: str, chromium: str) -> None:
    settings = BrowserSettings(close_timeout=2, restart_base=0.2, restart_cap=1.0)
    async with BrowserManager(settings) as browsers:
        cap = WebsiteCapturer(browsers, template(page_url, timeout=2))
        await cap.capture()
        old_pid = browsers.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGSTOP)  # alive but answers nothing
        try:
            with pytest.raises(SourceError, match="timed out after 2 s"):
                await cap.capture()
        finally:
            if psutil.pid_exists(old_pid):
                os.kill(old_pid, signal.SIGCONT)
        page = await cap.capture()
        assert page.width == 200
        assert browsers.pid not in (None, old_pid)
        assert not psutil.pid_exists(old_pid) or (
            psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
        )
    assert our_chromium_pids() == set()


@pytest.mark.slow
async def test_hundreds_of_captures_keep_processes_and_dirs_constant(
    page_url: str, chromium: str
) -> None:
    settings = BrowserSettings(recycle_after=50)
    async with BrowserManager(settings) as browsers:
        caps = [WebsiteCapturer(browsers, template(page_url, f"s{i}")) for i in range(2)]
        for cap in caps:
            await cap.capture()
        pid = browsers.pid
        assert pid is not None
        baseline = len(our_chromium_pids())
        counts: list[int] = []
        for i in range(150):
            for cap in caps:
                await cap.capture()
            if i % 25 == 24:
                # A recycled context's renderer exits asynchronously: wait for it to settle.
                await wait_for(
                    lambda: len(our_chromium_pids()) <= baseline,
                    timeout=10,
                    message=lambda: f"{len(our_chromium_pids())} processes, baseline {baseline}",
                )
                counts.append(len(our_chromium_pids()))
                assert len(profile_dirs_of({pid})) == 1
                assert len(private_dirs()) == 1
        assert browsers.pid == pid, "the browser was never restarted"
        assert counts == [baseline] * len(counts)
        assert sum(cap.captures for cap in caps) == 302
        # 151 captures per stream with recycling every 50: four contexts each.
        assert [cap.lease.contexts_created for cap in caps] == [4, 4]
    assert our_chromium_pids() == set()
    assert private_dirs() == []


# ---------------------------------------------------------------- leftovers and bad setups


def test_sweep_removes_only_dirs_of_dead_owners(tmp_path: Path) -> None:
    dead = psutil.Process().pid
    while psutil.pid_exists(dead):
        dead += 7919  # a pid nobody has
    host = socket.gethostname()
    mine = tmp_path / f"{PRIVATE_PREFIX}{os.getpid()}-abc"
    orphan = tmp_path / f"{PRIVATE_PREFIX}{dead}-abc"
    live_profile = tmp_path / f"{PROFILE_PREFIX}live"
    dead_profile = tmp_path / f"{PROFILE_PREFIX}dead"
    other_host = tmp_path / f"{PROFILE_PREFIX}otherhost"
    unlocked = tmp_path / f"{PROFILE_PREFIX}nolock"
    unrelated = tmp_path / "something-else"
    for d in (mine, orphan, live_profile, dead_profile, other_host, unlocked, unrelated):
        d.mkdir()
        (d / "file").write_text("x")
    os.symlink(f"{host}-{os.getpid()}", live_profile / "SingletonLock")
    os.symlink(f"{host}-{dead}", dead_profile / "SingletonLock")
    os.symlink(f"not-{host}-{dead}", other_host / "SingletonLock")

    removed = sweep_leftovers(tmp_path)

    assert sorted(removed) == sorted([orphan, dead_profile])
    assert not orphan.exists() and not dead_profile.exists()
    for kept in (mine, live_profile, other_host, unlocked, unrelated):
        assert kept.exists()


async def test_missing_executable_is_a_clear_source_error(page_url: str) -> None:
    settings = BrowserSettings(executable_path=Path("/nonexistent/chromium"))
    async with BrowserManager(settings) as browsers:
        with pytest.raises(SourceError, match="/nonexistent/chromium does not exist"):
            await WebsiteCapturer(browsers, template(page_url)).capture()
        assert browsers.health().last_error is not None


async def test_no_browser_at_all_says_what_to_install(
    page_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser_module, "SYSTEM_CHROMIUM", ("/nonexistent/chromium",))
    async with BrowserManager() as browsers:
        try:
            await browsers.browser()
        except SourceError as err:
            assert "apt-get install chromium" in str(err)
            assert "playwright install chromium" in str(err)
        else:  # Playwright's own Chromium is installed on this machine: that is a fine fallback
            assert browsers.health().executable != "/nonexistent/chromium"


async def test_launch_failure_backs_off_then_retries(
    tmp_path: Path, page_url: str, chromium: str
) -> None:
    executable = tmp_path / "chromium"
    executable.write_text("#!/bin/sh\nexit 3\n")
    executable.chmod(0o755)
    settings = BrowserSettings(executable_path=executable, restart_base=0.2, restart_cap=0.4)
    async with BrowserManager(settings) as browsers:
        cap = WebsiteCapturer(browsers, template(page_url, timeout=10))
        for _ in range(2):
            with pytest.raises(SourceError, match="cannot start Chromium"):
                await cap.capture()
        health = browsers.health()
        assert health.launches == 0 and health.launch_failures == 2
        assert health.last_error is not None and "cannot start Chromium" in health.last_error
        executable.unlink()
        executable.symlink_to(chromium)  # "the admin installs Chromium"
        assert (await cap.capture()).width == 200
        assert browsers.health().last_error is None
    assert private_dirs() == []


async def test_closing_twice_and_using_after_close(chromium: str, page_url: str) -> None:
    browsers = BrowserManager()
    async with browsers:
        await WebsiteCapturer(browsers, template(page_url)).capture()
    await browsers.aclose()
    with pytest.raises(SourceError, match="closed"):
        await browsers.browser()
    assert our_chromium_pids() == set()
