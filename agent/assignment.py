"""What the agent runs: its own YAML templates plus the hub's AgentConfig, kept durable.

``assign`` merges the two into a wanted set (local templates win an id clash). The Assigner
applies it to the StreamSet at start-up from the state file, before any broker is reachable, and
again for every config the hub sends, persisting each applied config and the start/stop choices
made on local templates (DESIGN §5).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from glimpser.agent.state import AgentStateStore
from glimpser.agent.streams import StreamSet, Wanted
from glimpser.shared.aio import cancel_and_wait
from glimpser.shared.errors import ProtocolError, StorageError
from glimpser.shared.models import AgentConfig, Desired, Template

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Assignment:
    """The wanted streams, and the hub templates left out with the reason why."""

    wanted: dict[str, Wanted]
    skipped: dict[str, str] = field(default_factory=dict)


def check_config(config: AgentConfig) -> None:
    """Raise ProtocolError when ``config`` cannot be applied as a whole (duplicate ids)."""
    seen: set[str] = set()
    for template in config.templates:
        if template.id in seen:
            raise ProtocolError(f"invalid agent config: duplicate template id {template.id!r}")
        seen.add(template.id)


def assign(
    agent_id: str,
    local: Sequence[Template],
    local_desired: Mapping[str, Desired],
    config: AgentConfig | None,
) -> Assignment:
    """Merge local templates (with their persisted desired states) and the hub's config."""
    wanted = {t.id: Wanted(t, local_desired.get(t.id, _default(t))) for t in local}
    skipped: dict[str, str] = {}
    if config is None:
        return Assignment(wanted)
    for t in config.templates:
        if t.agent_id is not None and t.agent_id != agent_id:
            skipped[t.id] = f"assigned to agent {t.agent_id!r}"
        elif t.id in wanted:
            skipped[t.id] = "a local template of this agent has the same id (local wins)"
        else:
            desired: Desired = config.desired.get(t.id, "started") if t.enabled else "stopped"
            wanted[t.id] = Wanted(t, desired)
    return Assignment(wanted, skipped)


def _default(template: Template) -> Desired:
    return "started" if template.enabled else "stopped"


class Assigner:
    """Async context manager keeping the StreamSet in line with local and hub templates."""

    def __init__(
        self,
        agent_id: str,
        local: Sequence[Template],
        store: AgentStateStore,
        streams: StreamSet,
        *,
        on_applied: Callable[[], None] = lambda: None,
        on_skipped: Callable[[str, str], None] = lambda _id, _why: None,
    ) -> None:
        self._agent_id = agent_id
        self._local = list(local)
        self._local_ids = frozenset(t.id for t in local)
        self._store = store
        self._streams = streams
        self._on_applied = on_applied
        self._on_skipped = on_skipped
        self._config: AgentConfig | None = None
        self._local_desired: dict[str, Desired] = {}
        self._pending_config: AgentConfig | None = None  # latest wins
        self._pending_desired: dict[str, Desired] = {}  # latest per stream wins
        self._reported_revision: int | None = None
        self._reported: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.revision: int | None = None

    async def __aenter__(self) -> Self:
        config = await self._store.load_config()
        saved = await self._store.all_desired()
        self._local_desired = {sid: d for sid, d in saved.items() if sid in self._local_ids}
        if config is not None:
            log.info(
                "running the cached config revision %d (%d templates) from %s",
                config.revision,
                len(config.templates),
                self._store.path,
            )
        await self._apply(config, persist=False)
        self._task = asyncio.create_task(self._run(), name="agent config")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    def submit_config(self, config: AgentConfig) -> None:
        """Queue a config from the hub (latest wins); ProtocolError when it is unusable."""
        check_config(config)
        self._pending_config = config
        self._wake.set()

    def is_local(self, stream_id: str) -> bool:
        """True for a template of the agent's own YAML."""
        return stream_id in self._local_ids

    def remember_desired(self, stream_id: str, desired: Desired) -> None:
        """Keep a start/stop command on a local template across restarts."""
        if not self.is_local(stream_id):
            return  # hub templates: AgentConfig.desired is the durable record, kept by the hub
        self._local_desired[stream_id] = desired
        self._pending_desired[stream_id] = desired
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            desired, self._pending_desired = self._pending_desired, {}
            config, self._pending_config = self._pending_config, None
            try:
                for stream_id, value in desired.items():
                    await self._store.set_desired(stream_id, value)
                if config is not None:
                    await self._apply(config, persist=True)
            except StorageError as err:
                log.error("could not save the agent state: %s", err)
            except Exception:  # a bug here must not end config handling for good
                log.exception("applying the agent config failed")

    async def _apply(self, config: AgentConfig | None, *, persist: bool) -> None:
        assignment = assign(self._agent_id, self._local, self._local_desired, config)
        if config is not None:
            self._report(config.revision, assignment.skipped)
        await self._streams.apply(assignment.wanted)
        if config is None:
            return
        if persist and config != self._config:
            await self._save(config)
        self._config = config
        if config.revision != self.revision:
            log.info("applied config revision %d", config.revision)
        self.revision = config.revision
        self._on_applied()

    async def _save(self, config: AgentConfig) -> None:
        try:
            await self._store.save_config(config)
        except StorageError as err:
            # The streams run all the same; only a reboot without the hub would miss them.
            log.error("could not save config revision %d: %s", config.revision, err)

    def _report(self, revision: int, skipped: Mapping[str, str]) -> None:
        if self._reported_revision != revision:
            self._reported_revision, self._reported = revision, set()
        for template_id, why in skipped.items():
            if template_id in self._reported:
                continue  # the retained config comes again after every reconnect
            self._reported.add(template_id)
            log.warning("config revision %d: skipped template %r: %s", revision, template_id, why)
            self._on_skipped(template_id, why)
