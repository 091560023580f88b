#!/usr/bin/env python3
"""Web capture benchmark: a warm shared Chromium screenshotting a local page N times.

Serves a dashboard-like page on 127.0.0.1 (text, a table, a CSS gradient, a clock that changes
every load), warms the browser, then captures it SHOTS times through WebsiteCapturer. Prints the
median and p95 per-shot latency, ChangeDetector cost, and the browser's memory summed over its
process tree (RSS, which counts pages shared between Chromium processes once per process, and
PSS, which splits them) at start, every 100 shots and at the end. ``--navigation both`` runs
reload and re-goto back to back on the same browser to compare them.

    python bench/web_capture.py --shots 500 --width 1280 --height 720 --navigation both
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from datetime import UTC, datetime

import psutil
from aiohttp import web

from glimpser.agent.capture.change import ChangeDetector
from glimpser.agent.sources.browser import BrowserManager, BrowserSettings
from glimpser.agent.sources.website import Navigation, WebsiteCapturer
from glimpser.shared.models import Template

PAGE = """<!doctype html><html><head><title>status</title><style>
body {{ margin: 0; font: 16px sans-serif; background: linear-gradient(#123, #345); color: #eee; }}
header {{ padding: 16px; font-size: 32px; background: #0a3; }}
table {{ margin: 16px; border-collapse: collapse; width: 90%; }}
td {{ border: 1px solid #567; padding: 6px; }}
.clock {{ font-size: 48px; padding: 16px; }}
</style></head><body>
<header>Glimpser bench dashboard</header>
<div class="clock">{now}</div>
<table>{rows}</table>
</body></html>"""


def render() -> str:
    """The page with the current time and a 30-row table."""
    now = datetime.now(UTC).strftime("%H:%M:%S.%f")
    rows = "".join(
        f"<tr><td>sensor {i}</td><td>{i * 7 % 100} %</td><td>ok</td></tr>" for i in range(30)
    )
    return PAGE.format(now=now, rows=rows)


def memory(browsers: BrowserManager) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, process count) over the browser's process tree."""
    rss = pss = 0
    procs = browsers.processes()
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return rss / 1e6, pss / 1e6, len(procs)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    args: argparse.Namespace, url: str, browsers: BrowserManager, mode: Navigation
) -> None:
    """Capture ``args.shots`` times with one navigation mode and print the figures."""
    tpl = Template(
        id=f"bench-{mode}",
        name="bench",
        quality=args.quality,
        source={
            "kind": "website",
            "url": url,
            "viewport_width": args.width,
            "viewport_height": args.height,
            "wait_until": args.wait_until,
        },
    )
    detector = ChangeDetector(0.01)
    async with WebsiteCapturer(browsers, tpl, navigation=mode) as capturer:
        for _ in range(args.warmup):
            await capturer.capture()
        rss, pss, nproc = memory(browsers)
        print(f"[{mode}] start: browser RSS {rss:.0f} MB, PSS {pss:.0f} MB, {nproc} processes")
        latencies: list[float] = []
        window: list[float] = []
        change_cost: list[float] = []
        size = 0
        for i in range(1, args.shots + 1):
            started = time.perf_counter()
            page = await capturer.capture()
            elapsed = time.perf_counter() - started
            latencies.append(elapsed)
            window.append(elapsed)
            size = len(page.jpeg)
            started = time.perf_counter()
            detector.update(page.jpeg)
            change_cost.append(time.perf_counter() - started)
            if i % 100 == 0 or i == args.shots:
                rss, pss, nproc = memory(browsers)
                median = statistics.median(window) * 1000
                p95 = pct(window, 0.95) * 1000
                print(
                    f"[{mode}] {i:5d} shots: last {len(window)} median {median:.1f} ms,"
                    f" p95 {p95:.1f} ms; RSS {rss:.0f} MB, PSS {pss:.0f} MB, {nproc} processes"
                )
                window = []
    health = browsers.health()
    print(
        f"[{mode}] total {len(latencies)} shots of {args.width}x{args.height} (~{size // 1024} KB):"
        f" median {statistics.median(latencies) * 1000:.1f} ms,"
        f" p95 {pct(latencies, 0.95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms;"
        f" change detection median {statistics.median(change_cost) * 1000:.2f} ms;"
        f" contexts made {capturer.lease.contexts_created}; browser launches {health.launches}"
    )


async def main_async(args: argparse.Namespace) -> None:
    """Serve the page, start one browser, run the chosen navigation modes."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=render(), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    modes: list[Navigation] = ["reload", "goto"] if args.navigation == "both" else [args.navigation]
    try:
        settings = BrowserSettings(recycle_after=args.recycle_after)
        async with BrowserManager(settings) as browsers:
            for mode in modes:
                await run(args, url, browsers, mode)
    finally:
        await runner.cleanup()


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shots", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--recycle-after", type=int, default=100)
    parser.add_argument(
        "--wait-until", default="load", choices=["load", "domcontentloaded", "networkidle"]
    )
    parser.add_argument("--navigation", default="both", choices=["reload", "goto", "both"])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
