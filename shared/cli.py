"""The ``glimpser`` command: ``hub``, ``agent`` and the all-in-one ``up``.

This is the one place that names both sides. It imports neither at import time: ``hub`` and
``agent`` load their side on demand, and ``up`` runs each side as its own process, so that even
the all-in-one box has its hub and agent meet only over MQTT, exactly as in production.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from glimpser.shared import __version__
from glimpser.shared.netutil import port_in_use

USAGE = """\
glimpser <command> [options]

commands:
  up       all-in-one: embedded MQTT broker, hub and a local demo agent
  hub      run the hub (HTTP API, MJPEG relay; embedded broker unless --external-broker)
  agent    run an agent on an edge box (executes templates, publishes over MQTT)
  version  print the version

Run `glimpser <command> --help` for the options of each command.
"""

DEMO_AGENT = "local"
DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "test-pattern",
        "name": "Test pattern",
        "agent_id": DEMO_AGENT,
        "source": {"kind": "test", "pattern": "bars", "width": 640, "height": 480},
        "fps": 10,
        "tags": ["demo"],
        "notes": "Colour bars with a sweeping bar and the time burned in.",
    },
    {
        "id": "motion-demo",
        "name": "Motion demo",
        "agent_id": DEMO_AGENT,
        "source": {"kind": "test", "pattern": "visitor", "visit_every": 30},
        "fps": 5,
        "motion": {"min_frames": 2, "off_delay": 3},
        "capture": {"on_events": ["motion"], "retention": {"max_count": 200}},
        "tags": ["demo"],
        "notes": "A static scene that a visitor crosses every 30 s: motion events and captures.",
    },
]

STOP_TIMEOUT = 15.0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glimpser`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command in ("version", "--version"):
        print(f"glimpser {__version__}")
        return 0
    if command in ("hub", "agent"):
        try:
            side_main: Callable[[list[str]], int] = importlib.import_module(
                f"glimpser.{command}.cli"
            ).main
        except ImportError as err:
            print(
                f"glimpser {command}: missing dependency {err.name or err}; "
                f"install it with: pip install 'glimpser[{command}]'",
                file=sys.stderr,
            )
            return 2
        return side_main(rest)
    if command == "up":
        return up(rest)
    print(f"glimpser: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


def _up_parser() -> argparse.ArgumentParser:
    default_dir = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "glimpser"
    parser = argparse.ArgumentParser(
        prog="glimpser up",
        description=(
            "Run everything on this machine: the hub with its embedded MQTT broker, and a local "
            "agent running demo templates. Hub and agent run as separate processes that talk "
            "only over MQTT."
        ),
        epilog="example: glimpser up --http-port 8080 --mqtt-port 1883 --data-dir ./data",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=default_dir, help=f"(default {default_dir})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, default=8080, help="hub HTTP port (default 8080)")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="broker port (default 1883)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return parser


def up(argv: Sequence[str]) -> int:
    """Run broker + hub + demo agent until Ctrl-C or SIGTERM; return the exit code."""
    opts = _up_parser().parse_args(argv)
    for port, flag in ((opts.http_port, "--http-port"), (opts.mqtt_port, "--mqtt-port")):
        if not 0 < port < 65536:
            print(f"glimpser up: error: {flag} {port} is not a valid port", file=sys.stderr)
            return 2
        if port_in_use(opts.host, port):
            print(
                f"glimpser up: error: port {port} on {opts.host} is already in use; "
                f"pick another with {flag}",
                file=sys.stderr,
            )
            return 2
    if opts.http_port == opts.mqtt_port:
        print("glimpser up: error: --http-port and --mqtt-port must differ", file=sys.stderr)
        return 2
    hub_cfg, agent_cfg = _write_configs(opts)
    return _Supervisor(opts, hub_cfg, agent_cfg).run()


def _write_configs(opts: argparse.Namespace) -> tuple[Path, Path]:
    data: Path = opts.data_dir.expanduser().resolve()
    data.mkdir(parents=True, exist_ok=True)
    broker = {"host": opts.host, "port": opts.mqtt_port}
    hub = {
        "http": {"host": opts.host, "port": opts.http_port},
        "broker": broker,
        "embedded_broker": True,
        "data_dir": str(data / "hub"),
        "log_level": opts.log_level.upper(),
        # Hub-managed, so a new user can edit them through /api/templates; created only once.
        "agents": [DEMO_AGENT],
        "seed_templates": DEMO_TEMPLATES,
    }
    agent = {
        "agent_id": DEMO_AGENT,
        "broker": broker,
        "data_dir": str(data / "agent"),
        "templates": [],
        "log_level": opts.log_level.upper(),
    }
    hub_path, agent_path = data / "hub.yaml", data / "agent.yaml"
    header = "# Written by `glimpser up` on every start; edits here are overwritten.\n"
    hub_path.write_text(header + yaml.safe_dump(hub, sort_keys=False), encoding="utf-8")
    agent_path.write_text(header + yaml.safe_dump(agent, sort_keys=False), encoding="utf-8")
    return hub_path, agent_path


class _Supervisor:
    """Starts the hub, waits until it is ready, starts the agent, and stops both in order."""

    def __init__(self, opts: argparse.Namespace, hub_cfg: Path, agent_cfg: Path) -> None:
        self._opts = opts
        self._hub_cfg = hub_cfg
        self._agent_cfg = agent_cfg
        self._stopping = False
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def run(self) -> int:
        """Run until a signal or a child's death; return the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._run()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self, side: str, config: Path) -> None:
        # A new session keeps the terminal's Ctrl-C away from the children: we stop them in
        # order (agent first, so it can publish a clean offline state through the broker).
        self._procs[side] = subprocess.Popen(
            [sys.executable, "-m", f"glimpser.{side}", "--config", str(config)],
            start_new_session=True,
        )

    def _run(self) -> int:
        o = self._opts
        self._spawn("hub", self._hub_cfg)
        if not self._wait_ready(f"http://{o.host}:{o.http_port}/readyz", timeout=60):
            return 0 if self._stopping else 1
        self._spawn("agent", self._agent_cfg)
        print(
            f"\nGlimpser {__version__} is up.\n"
            f"  Hub API:     http://{o.host}:{o.http_port}/api/streams\n"
            f"  MJPEG:       http://{o.host}:{o.http_port}/api/stream/test-pattern/mjpeg\n"
            f"  MQTT broker: mqtt://{o.host}:{o.mqtt_port} (embedded)\n"
            f"  Data:        {o.data_dir.expanduser().resolve()}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not self._stopping:
            for side, proc in self._procs.items():
                code = proc.poll()
                if code is not None:
                    print(f"glimpser up: the {side} exited with code {code}", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0

    def _wait_ready(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping:
            code = self._procs["hub"].poll()
            if code is not None:
                print(f"glimpser up: the hub exited with code {code}", file=sys.stderr)
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        if not self._stopping:
            print(f"glimpser up: the hub was not ready after {timeout:.0f} s", file=sys.stderr)
        return False

    def _stop_all(self) -> None:
        for side in ("agent", "hub"):
            proc = self._procs.get(side)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"glimpser up: the {side} did not stop in time; killing it", file=sys.stderr)
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
