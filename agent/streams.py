"""StreamSet: the one owner of the agent's stream runners; applies a wanted set as a diff.

Only what changed is touched: new templates start, removed ones stop (and their retained topics
are cleared), changed ones restart, and a desired-only change starts or stops the existing runner
in place, so its counters live on. Every other runner is left exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from glimpser.agent.capture.runner import StreamRunner
from glimpser.shared.models import Desired, Template

log = logging.getLogger(__name__)

RunnerFactory = Callable[[Template, Desired], StreamRunner]


@dataclass(frozen=True, slots=True)
class Wanted:
    """A template this agent should run, and whether it should be capturing."""

    template: Template
    desired: Desired


@dataclass(frozen=True, slots=True)
class Diff:
    """Stream ids touched by one ``apply``."""

    started: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    toggled: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.started or self.removed or self.restarted or self.toggled)


def diff(applied: Mapping[str, Wanted], wanted: Mapping[str, Wanted]) -> Diff:
    """What turns ``applied`` into ``wanted``."""
    common = [sid for sid in wanted if sid in applied]
    changed = {sid for sid in common if _settings(applied[sid]) != _settings(wanted[sid])}
    return Diff(
        started=tuple(sid for sid in wanted if sid not in applied),
        removed=tuple(sid for sid in applied if sid not in wanted),
        restarted=tuple(sid for sid in common if sid in changed),
        toggled=tuple(
            sid
            for sid in common
            if sid not in changed and applied[sid].desired != wanted[sid].desired
        ),
    )


def _settings(wanted: Wanted) -> dict[str, Any]:
    # ``enabled`` is folded into Wanted.desired: flipping it starts/stops, never restarts.
    return wanted.template.model_dump(exclude={"enabled"})


class StreamSet:
    """Async context manager holding one StreamRunner per wanted template; closes all on exit."""

    def __init__(self, factory: RunnerFactory, on_removed: Callable[[str], None]) -> None:
        self._factory = factory
        self._on_removed = on_removed
        self._runners: dict[str, StreamRunner] = {}
        self._applied: dict[str, Wanted] = {}
        self._lock = asyncio.Lock()  # one apply (or close) at a time

    @property
    def runners(self) -> Mapping[str, StreamRunner]:
        """The running streams by id (read-only view)."""
        return self._runners

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with self._lock:
            await self._close(list(self._runners))
            self._applied.clear()

    async def apply(self, wanted: Mapping[str, Wanted]) -> Diff:
        """Make the running set match ``wanted``, touching only what differs."""
        async with self._lock:
            change = diff(self._applied, wanted)
            # Close first: a changed or replaced template may need the same camera device.
            await self._close([*change.removed, *change.restarted])
            for sid in change.removed:
                del self._applied[sid]
                self._on_removed(sid)
            for sid in change.toggled:
                self._runners[sid].set_desired(wanted[sid].desired)
                self._applied[sid] = wanted[sid]
            for sid in (*change.restarted, *change.started):
                await self._start(wanted[sid])
            if change:
                log.info(
                    "streams: started %s, restarted %s, removed %s, toggled %s",
                    list(change.started) or "-",
                    list(change.restarted) or "-",
                    list(change.removed) or "-",
                    list(change.toggled) or "-",
                )
            return change

    async def _start(self, wanted: Wanted) -> None:
        runner = self._factory(wanted.template, wanted.desired)
        await runner.__aenter__()
        self._runners[wanted.template.id] = runner
        self._applied[wanted.template.id] = wanted

    async def _close(self, stream_ids: list[str]) -> None:
        # In parallel: each close is bounded by the runner's own timeout. The runners stay
        # listed meanwhile, so a restarting stream never looks unknown to commands or states.
        await asyncio.gather(*(self._runners[sid].close() for sid in stream_ids))
        for sid in stream_ids:
            del self._runners[sid]
