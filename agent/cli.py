"""``python -m glimpser.agent`` / ``glimpser agent``: run an agent from a YAML config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import cv2

from glimpser.agent.app import Agent
from glimpser.agent.config import AgentSettings, load_agent_settings
from glimpser.shared import __version__
from glimpser.shared.errors import ConfigError
from glimpser.shared.logs import setup_logging

log = logging.getLogger(__name__)

EXAMPLE = """\
example:
  glimpser agent --config /etc/glimpser/agent.yaml
  python -m glimpser.agent --config agent.yaml --check-config

A minimal agent.yaml:
  agent_id: pi-garage
  broker: {host: 192.0.2.1, port: 1883}
  data_dir: /var/lib/glimpser-agent
  templates:
    - id: test-pattern
      name: Test pattern
      source: {kind: test, pattern: motion, width: 640, height: 480}
      fps: 10
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glimpser agent",
        description=(
            "Run a Glimpser agent: execute the capture templates of its config as live streams "
            "and publish their state and frames to the hub over MQTT."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", required=True, type=Path, metavar="PATH", help="agent YAML config file"
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config, print a summary and exit (2 on errors)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="override the config's log_level",
    )
    parser.add_argument("--version", action="version", version=f"glimpser {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the agent; 0 after a clean stop, 2 on a bad config."""
    args = _parser().parse_args(argv)
    overrides = {"log_level": args.log_level} if args.log_level else None
    try:
        settings = load_agent_settings(args.config, overrides)
    except ConfigError as err:
        print(f"glimpser agent: invalid config:\n{err}", file=sys.stderr)
        return 2
    if args.check_config:
        print(summary(settings))
        return 0
    setup_logging(settings.log_level)
    limit_opencv_threads()
    asyncio.run(run(settings))
    return 0


def limit_opencv_threads() -> None:
    """Make OpenCV run each call on the calling thread only (once, at process start).

    Every stream already has its own worker thread, and the agent's per-frame calls are short
    (a 120-row grey copy for motion, one JPEG encode): OpenCV's pool spends more CPU handing
    work to its threads and spinning than it saves. On the 2-core reference box the 720p
    10 fps pipeline with motion costs 2.6 % of a core with one thread against 3.5 % with
    OpenCV's default two (4.7 vs 5.8 % while watched): ``bench/agent_pipeline.py --threads``;
    ``bench/motion.py --threads`` shows the detector alone.
    """
    cv2.setNumThreads(1)


def summary(settings: AgentSettings) -> str:
    """Human summary of a valid config, for ``--check-config``."""
    lines = [
        f"config OK: agent {settings.agent_id}, broker {settings.broker.url}, "
        f"{len(settings.templates)} template(s)",
    ]
    for t in settings.templates:
        size = f"{t.width}x{t.height}" if t.width else "native size"
        state = "" if t.enabled else ", disabled"
        lines.append(f"  - {t.id}: {t.source.kind}, {1 / t.period:g} fps, {size}{state}")
    return "\n".join(lines)


async def run(settings: AgentSettings) -> None:
    """Run the agent until SIGINT or SIGTERM, then stop gracefully."""
    loop = asyncio.get_running_loop()
    agent = Agent(settings)
    # Installed for the whole run, shutdown included: a second Ctrl-C while stopping is
    # absorbed instead of interrupting the graceful stop (asyncio.run removes them at exit).
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.request_stop)
    async with agent:
        await agent.wait_stopped()
        log.info("stopping (signal received)")
