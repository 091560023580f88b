"""The Agent: settings → one StreamRunner per template + the MQTT link + periodic AgentState."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.config import AgentSettings
from glimpser.agent.publish.mqtt import MqttLink
from glimpser.shared import __version__
from glimpser.shared.models import AgentState, Command, Demand, HostStats

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0
REJECT_STATE_DELAY = 1.0  # batch a burst of rejected messages into one state update


class Agent:
    """Async context manager running every template of ``settings`` until closed."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.link = MqttLink(settings.broker, settings.agent_id, self)
        self.runners: dict[str, StreamRunner] = {
            t.id: StreamRunner(t, settings.agent_id, self.link) for t in settings.templates
        }
        self._stack = AsyncExitStack()
        self._state_task: asyncio.Task[None] | None = None
        self._state_soon = asyncio.Event()
        self._stopped = asyncio.Event()
        self._started_at = datetime.now(UTC)
        self._t0 = time.monotonic()

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            await self._stack.enter_async_context(self.link)
            for runner in self.runners.values():
                await self._stack.enter_async_context(runner)
            self._state_task = asyncio.create_task(self._publish_states(), name="agent state")
        except BaseException:
            await self._stack.aclose()
            raise
        s = self.settings
        log.info(
            "agent %s running %d streams, broker %s", s.agent_id, len(self.runners), s.broker.url
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._state_task = self._state_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Runners first (each publishes ``inactive``), then the link sends it all and ``offline``.
        async with asyncio.timeout(SHUTDOWN_TIMEOUT * 2):
            await self._stack.aclose()
        log.info("agent %s stopped", self.settings.agent_id)

    def request_stop(self) -> None:
        """Ask ``wait_stopped`` to return (signal handlers call this)."""
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once request_stop was called."""
        await self._stopped.wait()

    # ------------------------------------------------------------------ MessageHandler

    def has_stream(self, stream_id: str) -> bool:
        """True when a template with this id runs here."""
        return stream_id in self.runners

    def on_command(self, stream_id: str, command: Command) -> None:
        """Route a command to its runner."""
        log.info(
            "stream %s: command %s (request %s)", stream_id, command.action, command.request_id
        )
        self.runners[stream_id].handle_command(command)

    def on_demand(self, stream_id: str, demand: Demand) -> None:
        """Route a demand lease to its runner."""
        self.runners[stream_id].handle_demand(demand)

    def on_rejected(self) -> None:
        """Publish the agent state soon so the rejected counter shows."""
        self._state_soon.set()

    # ------------------------------------------------------------------ agent state

    def state(self) -> AgentState:
        """This agent's current AgentState."""
        return AgentState(
            agent_id=self.settings.agent_id,
            version=__version__,
            hostname=socket.gethostname(),
            started_at=self._started_at,
            uptime=round(time.monotonic() - self._t0, 1),
            streams=list(self.runners),
            queue_depth=self.link.queue_depth,
            rejected_messages=self.link.rejected_messages,
            host=_host_stats(),
        )

    async def _publish_states(self) -> None:
        while True:
            self.link.publish_agent_state(self.state())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state_soon.wait(), self.settings.state_interval)
                await asyncio.sleep(REJECT_STATE_DELAY)
            self._state_soon.clear()


def _host_stats() -> HostStats:
    try:  # optional: host stats are reported only when psutil is installed
        import psutil
    except ImportError:
        return HostStats()
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return HostStats(
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_rss=psutil.Process().memory_info().rss,
        load1=round(load1, 2) if load1 is not None else None,
    )
