"""``python -m glimpser.hub``: parse flags, load settings, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from glimpser.hub.broker import ensure_port_free
from glimpser.hub.config import HubSettings, load_hub_settings
from glimpser.hub.http.app import create_app
from glimpser.shared.errors import ConfigError, GlimpserError, PortInUseError
from glimpser.shared.logs import setup_logging

_LOGGER = logging.getLogger(__name__)
# aiohttp waits this long for open requests after on_shutdown closed the MJPEG viewers.
SHUTDOWN_TIMEOUT = 5.0


def main(argv: list[str] | None = None) -> int:
    """Run the hub; 0 after a clean shutdown, 2 for bad config or a taken port."""
    args = _parser().parse_args(argv)
    try:
        settings = load_hub_settings(args.config, _overrides(args))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check_config:
        print("configuration OK")
        return 0
    setup_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except GlimpserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


async def serve(settings: HubSettings) -> None:
    """Start broker, ingest and HTTP; return after SIGINT/SIGTERM and a bounded shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Check both ports before starting anything, so a clash never leaves half a hub running.
    ensure_port_free(settings.http.host, settings.http.port, "--http-port")
    if settings.embedded_broker:
        ensure_port_free(settings.broker.host, settings.broker.port, "--mqtt-port")
    _make_data_dir(settings.data_dir)
    runner = web.AppRunner(
        create_app(settings), handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    try:
        await runner.setup()
        await _start_site(runner, settings)
        _banner(settings)
        await stop.wait()
        _LOGGER.info("shutting down")
    finally:
        await runner.cleanup()


async def _start_site(runner: web.AppRunner, settings: HubSettings) -> None:
    site = web.TCPSite(runner, settings.http.host, settings.http.port)
    try:
        await site.start()
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {settings.http.port} on {settings.http.host} is already in use; "
                "pick another with --http-port"
            ) from err
        raise ConfigError(
            f"cannot listen on {settings.http.host}:{settings.http.port}: {err}"
        ) from err


def _banner(settings: HubSettings) -> None:
    mode = "embedded" if settings.embedded_broker else "external"
    print(
        f"Glimpser hub on http://{settings.http.host}:{settings.http.port}  "
        f"broker {settings.broker.url} ({mode})",
        flush=True,
    )


def _make_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create data directory {path}: {err.strerror}") from err


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    http = {k: v for k, v in (("host", args.http_host), ("port", args.http_port)) if v is not None}
    broker = {
        k: v for k, v in (("host", args.mqtt_host), ("port", args.mqtt_port)) if v is not None
    }
    if http:
        out["http"] = http
    if broker:
        out["broker"] = broker
    if args.data_dir is not None:
        out["data_dir"] = args.data_dir
    if args.external_broker:
        out["embedded_broker"] = False
    if args.log_level is not None:
        out["log_level"] = args.log_level.upper()
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m glimpser.hub",
        description="Run the Glimpser hub: gathers every agent's streams over MQTT and serves "
        "the streams API, MJPEG, /healthz, /readyz and /metrics over HTTP.",
        epilog="Flags override the config file. Exit status 2 means bad config or a taken port.",
    )
    p.add_argument("--config", type=Path, metavar="PATH", help="YAML settings file (optional)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="directory for the hub's files")
    p.add_argument("--http-host", metavar="HOST", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, metavar="PORT", help="HTTP port (default 8080)")
    p.add_argument("--mqtt-host", metavar="HOST", help="broker address (default 127.0.0.1)")
    p.add_argument("--mqtt-port", type=int, metavar="PORT", help="broker port (default 1883)")
    p.add_argument(
        "--external-broker",
        action="store_true",
        help="connect to an existing broker (e.g. Mosquitto) instead of embedding amqtt",
    )
    p.add_argument("--check-config", action="store_true", help="validate the settings and exit")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        type=str.lower,
        help="log verbosity (default info)",
    )
    return p
