"""The Agent: settings → state store + MQTT link + StreamSet steered by the Assigner."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from glimpser.agent.assignment import Assigner
from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.config import AgentSettings
from glimpser.agent.publish.discovery import DiscoveredStream, Discovery
from glimpser.agent.publish.mqtt import MqttLink
from glimpser.agent.sources.base import Source, build_source
from glimpser.agent.sources.browser import BrowserManager
from glimpser.agent.state import AgentStateStore
from glimpser.agent.streams import StreamSet
from glimpser.shared import __version__
from glimpser.shared.aio import cancel_and_wait, wait_event
from glimpser.shared.backoff import Backoff
from glimpser.shared.models import (
    AgentConfig,
    AgentState,
    Command,
    Demand,
    Desired,
    Event,
    HostStats,
    LocalTemplates,
    Template,
)

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0
REJECT_STATE_DELAY = 1.0  # batch a burst of rejected messages into one state update
STATE_FILE = "state.json"


class Agent:
    """Async context manager running local and hub-assigned templates until closed."""

    def __init__(self, settings: AgentSettings, *, mqtt_backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.link = MqttLink(
            settings.broker,
            settings.agent_id,
            self,
            backoff=mqtt_backoff,
            max_captures=settings.capture_backlog,
            max_capture_bytes=settings.capture_backlog_bytes,
        )
        self.store = AgentStateStore(settings.data_dir / STATE_FILE)
        # One Chromium for every website stream, launched by the manager on first use.
        self.browsers = BrowserManager(settings.browser)
        self.streams = StreamSet(self._new_runner, self.link.clear_stream)
        self.assigner = Assigner(
            settings.agent_id,
            settings.templates,
            self.store,
            self.streams,
            on_applied=self._applied,
            on_skipped=self._report_skipped,
        )
        self.discovery = Discovery(
            settings.homeassistant, settings.agent_id, __version__, settings.broker.prefix
        )
        self._stack = AsyncExitStack()
        self._state_task: asyncio.Task[None] | None = None
        self._state_soon = asyncio.Event()
        self._stopped = asyncio.Event()
        self._started_at = datetime.now(UTC)
        self._t0 = time.monotonic()

    @property
    def runners(self) -> dict[str, StreamRunner]:
        """The running streams by id (a snapshot copy)."""
        return dict(self.streams.runners)

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        try:
            # Exit runs in reverse: the runners publish ``inactive`` before the link says
            # ``offline``, and the store closes last.
            await self._stack.enter_async_context(self.store)
            self.link.publish_local_templates(LocalTemplates(templates=self.settings.templates))
            await self._stack.enter_async_context(self.link)
            # Closed after the streams (they hold its pages) and before the link.
            await self._stack.enter_async_context(self.browsers)
            await self._stack.enter_async_context(self.streams)
            # Runs the local and cached templates at once: the broker connects in the background.
            await self._stack.enter_async_context(self.assigner)
            self._publish_discovery()
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
            await cancel_and_wait(task)
        # The browser closes within its own bound (close_timeout per step, then a kill).
        async with asyncio.timeout(SHUTDOWN_TIMEOUT * 2 + self.settings.browser.close_timeout * 3):
            await self._stack.aclose()
        log.info("agent %s stopped", self.settings.agent_id)

    def request_stop(self) -> None:
        """Ask ``wait_stopped`` to return (signal handlers call this)."""
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once request_stop was called."""
        await self._stopped.wait()

    def _new_runner(self, template: Template, desired: Desired) -> StreamRunner:
        return StreamRunner(
            template,
            self.settings.agent_id,
            self.link,
            source_factory=self._build_source,
            desired=desired,
        )

    def _build_source(self, template: Template) -> Source:
        return build_source(template, self.browsers)

    # ------------------------------------------------------------------ MessageHandler

    def has_stream(self, stream_id: str) -> bool:
        """True when a template with this id runs here."""
        return stream_id in self.streams.runners

    def on_command(self, stream_id: str, command: Command) -> None:
        """Route a command to its runner; start/stop of a local template is persisted."""
        log.info(
            "stream %s: command %s (request %s)", stream_id, command.action, command.request_id
        )
        self.streams.runners[stream_id].handle_command(command)
        if command.action in ("start", "stop"):
            desired: Desired = "started" if command.action == "start" else "stopped"
            self.assigner.remember_desired(stream_id, desired)

    def on_demand(self, stream_id: str, demand: Demand) -> None:
        """Route a demand lease to its runner."""
        self.streams.runners[stream_id].handle_demand(demand)

    def on_config(self, config: AgentConfig) -> None:
        """Hand a hub config to the Assigner (ProtocolError rejects it, the link counts it)."""
        self.assigner.submit_config(config)

    def on_connected(self) -> None:
        """Have every stream send a full frame soon: those captured offline were dropped."""
        for runner in self.streams.runners.values():
            runner.link_up()

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
            streams=list(self.streams.runners),
            queue_depth=self.link.queue_depth,
            rejected_messages=self.link.rejected_messages,
            config_revision=self.assigner.revision,
            host=_host_stats(),
        )

    def _applied(self) -> None:
        self._state_soon.set()
        self._publish_discovery()

    def _publish_discovery(self) -> None:
        """Hand Home Assistant the current streams (only what changed; retained, so it is
        re-sent after every connect and left in place at shutdown)."""
        streams = [DiscoveredStream.from_template(r.template) for r in self.runners.values()]
        messages = self.discovery.update(streams)
        if messages:
            self.link.publish_discovery(messages)

    def _report_skipped(self, template_id: str, why: str) -> None:
        # No AgentState field for it yet: an event on the clashing id tells the hub and HA.
        event = Event(
            agent_id=self.settings.agent_id,
            stream_id=template_id,
            type="template_skipped",
            data={"reason": why, "revision": self.assigner.revision},
        )
        self.link.publish_event(event)

    async def _publish_states(self) -> None:
        while True:
            self.link.publish_agent_state(self.state())
            if await wait_event(self._state_soon, self.settings.state_interval):
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
