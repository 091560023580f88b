"""The router's storing side: captures, agents' own templates and execution status.

Every method returns at once: it queues a job on the JobQueue, whose one worker does the SQLite
and disk work in arrival order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from glimpser.hub.ingest.jobs import JobQueue
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.store.captures import CaptureRecord, CaptureStore
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.replies import KeyedWaiters, StreamKey
from glimpser.hub.store.templates import TemplateRepository
from glimpser.shared.codec import DecodedFrame
from glimpser.shared.errors import NotFoundError, ProtocolError
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import FrameMeta, LocalTemplates, StreamState

_LOGGER = logging.getLogger(__name__)

# Execution status is written when it changes, else at most this often per template.
STATUS_EVERY = 60.0


class Persister:
    """IngestSink that stores what the router validated, through the job queue."""

    def __init__(
        self,
        jobs: JobQueue,
        templates: TemplateRepository,
        captures: CaptureStore,
        registry: Registry,
        metrics: HubMetrics,
        *,
        status_every: float = STATUS_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._templates = templates
        self._captures = captures
        self._registry = registry
        self._metrics = metrics
        self._status_every = status_every
        self._clock = clock
        self._last_status: dict[StreamKey, tuple[str, str | None, float]] = {}
        self._log = RateLimitedLog(_LOGGER)
        self.capture_waiters: KeyedWaiters[CaptureRecord] = KeyedWaiters()

    # ------------------------------------------------------------------ IngestSink

    def agent_templates(self, agent: str, local: LocalTemplates) -> None:
        """Queue syncing the agent's own templates into the store (owner ``agent``)."""

        async def job() -> None:
            await self._sync_templates(agent, local)

        if not self._jobs.submit("agent_templates", job):
            self._log.warning(
                "templates_dropped", "dropped the template list of agent %s: queue full", agent
            )

    def capture(self, key: StreamKey, frame: DecodedFrame) -> None:
        """Queue saving a capture; a drop is logged at WARNING with the capture id."""
        meta = frame.meta
        if meta is None:  # the router rejects these; kept for the type checker
            return
        state = self._registry.stream_state(key)
        template_id = state.template_id if state is not None else key[1]

        async def job() -> None:
            await self._save_capture(key, template_id, frame, meta)

        if not self._jobs.submit("capture", job):
            _LOGGER.warning(
                "dropped capture %s of %s.%s: the hub's ingest queue is full",
                meta.capture_id,
                key[0],
                key[1],
            )

    def stream_state(self, state: StreamState) -> None:
        """Queue recording execution status when it changed or every ``status_every`` s."""
        key = (state.agent_id, state.template_id)
        now = self._clock()
        last = self._last_status.get(key)
        status = str(state.status)
        unchanged = last is not None and last[:2] == (status, state.error)
        if unchanged and last is not None and now - last[2] < self._status_every:
            return
        self._last_status[key] = (status, state.error, now)

        async def job() -> None:
            await self._record_execution(state)

        self._jobs.submit("execution", job)

    # ------------------------------------------------------------------ jobs

    async def _sync_templates(self, agent: str, local: LocalTemplates) -> None:
        report = await self._templates.sync_agent_templates(agent, local.templates)
        for template_id, why in report.clashes.items():
            self._metrics.template_clashes += 1
            self._log.warning(
                f"clash:{agent}",
                "skipped template %r of agent %s: %s",
                template_id,
                agent,
                why,
            )
        for template_id in report.created:
            # Its stream's state may have arrived first and been skipped: record the next one.
            self._last_status.pop((agent, template_id), None)
        if report.created or report.updated or report.deleted:
            _LOGGER.info(
                "agent %s's own templates: %d new, %d changed, %d removed",
                agent,
                len(report.created),
                len(report.updated),
                len(report.deleted),
            )

    async def _save_capture(
        self, key: StreamKey, template_id: str, frame: DecodedFrame, meta: FrameMeta
    ) -> None:
        known = meta.capture_id is not None and await self._captures.index.find(meta.capture_id)
        try:
            record = await self._captures.save(
                stream_id=key[1],
                agent_id=key[0],
                template_id=template_id,
                jpeg=frame.jpeg,
                meta=meta,
                width=frame.width,
                height=frame.height,
            )
        except ProtocolError as err:
            self._metrics.rejected["invalid_capture"] += 1
            self._log.warning("invalid_capture", "refused capture of %s.%s: %s", *key, err)
            return
        if not known:
            self._metrics.captures_saved += 1
        if meta.request_id is not None:
            self.capture_waiters.resolve((key[0], key[1], meta.request_id), record)

    async def _record_execution(self, state: StreamState) -> None:
        try:
            record = await self._templates.get(state.template_id)
        except NotFoundError:
            return  # a stream the hub has no template for (e.g. before the agent's list arrives)
        if record.template.agent_id != state.agent_id:
            return  # another agent's stream that reuses the id: not this template's execution
        await self._templates.record_execution(
            state.template_id, str(state.status), state.last_frame_at, state.error
        )
