"""One StreamRunner per template: capture on schedule, encode off-loop, publish by policy.

Besides live frames, a runner keeps *captures* (history) by the template's CapturePolicy: every
``capture.interval`` seconds while started, on each ``snapshot`` command (reason ``manual``), and
on the events that ``capture_event`` is told about (reason ``event``).

Every captured frame also goes through the stream's detectors in the worker thread (motion for
cameras, page change for websites), whatever the viewer demand; StreamEvents publishes what
they saw. A frame where motion starts or the page changes is sent at once; a page identical to
the previous screenshot is not sent again, except as the keep-alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self, TypeVar

from glimpser.agent.capture.detect import NOTHING, Detection, Detectors
from glimpser.agent.capture.events import StreamEvents
from glimpser.agent.capture.policy import FpsMeter, PublishPolicy
from glimpser.agent.capture.worker import Worker
from glimpser.agent.encode.jpeg import Jpeg, encode, thumbnail
from glimpser.agent.publish.base import Publisher
from glimpser.agent.sources.base import Source, build_source
from glimpser.shared.aio import cancel_and_wait, wait_event
from glimpser.shared.backoff import Backoff
from glimpser.shared.codec import encode_frame
from glimpser.shared.errors import SourceError
from glimpser.shared.models import (
    Command,
    Demand,
    Desired,
    FrameMeta,
    StreamState,
    StreamStatus,
    Template,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
SourceFactory = Callable[[Template], Source]
_RUNNING = (StreamStatus.STARTING, StreamStatus.ACTIVE, StreamStatus.ERROR)
Reason = Literal["interval", "event", "manual"]
# (reason, request id of a snapshot command, capture id already handed out or None)
CaptureRequest = tuple[Reason, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Capture:
    """What one worker-thread capture produced."""

    captured_at: float
    jpeg: Jpeg | None
    thumbnail: bytes | None
    detection: Detection = NOTHING


class StreamRunner:
    """Runs one template as a stream until closed; commands and demand steer it."""

    def __init__(
        self,
        template: Template,
        agent_id: str,
        publisher: Publisher,
        *,
        source_factory: SourceFactory = build_source,
        backoff: Backoff | None = None,
        state_every: float = 2.0,
        close_timeout: float = 5.0,
        desired: Desired | None = None,
    ) -> None:
        self.template = template
        self._agent_id = agent_id
        self._publisher = publisher
        self._factory = source_factory
        self._backoff = backoff or Backoff()
        self._state_every = state_every
        self._close_timeout = close_timeout
        self._worker = Worker(f"stream {template.id}")
        self._policy = PublishPolicy(template.period, template.keepalive)
        self._meter = FpsMeter()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        if desired is None:
            desired = "started" if template.enabled else "stopped"
        self._desired: Desired = desired
        self._snapshots: list[str | None] = []
        self._event_capture: str | None = None  # id of the queued event capture
        self._detectors = Detectors(template)
        self.events = StreamEvents(
            agent_id,
            template.id,
            publisher,
            self.capture_event,
            motion=self._detectors.motion_enabled,
        )
        self._capture_at: float | None = None
        self.captures = 0  # captures published since the runner was created
        self._status = StreamStatus.INACTIVE
        self._error: str | None = None
        self._request_id: str | None = None
        self._frames = self._bytes = self._published = 0
        self._width: int | None = None
        self._height: int | None = None
        self._last_frame_at: datetime | None = None
        self._started_at: datetime | None = None
        self._demanded = False
        self._state_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._publish_state()  # a disabled template is announced as an inactive stream too
        self.events.announce()
        self._task = asyncio.create_task(self._main(), name=f"stream {self.template.id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop capturing, release the source and publish ``inactive`` (bounded)."""
        self._closing = True
        if self._status in _RUNNING:
            self._set_status(StreamStatus.STOPPING)
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self._close_timeout)
            except TimeoutError:
                log.warning(
                    "stream %s did not stop within %g s", self.template.id, self._close_timeout
                )
                await cancel_and_wait(task)
        self._set_status(StreamStatus.INACTIVE)
        self._worker.shutdown()

    # ------------------------------------------------------------------ inputs

    @property
    def state(self) -> StreamState:
        """The stream's current state, as published."""
        now = asyncio.get_running_loop().time()
        t = self.template
        return StreamState(
            stream_id=t.id,
            agent_id=self._agent_id,
            template_id=t.id,
            name=t.name,
            source=t.source.kind,
            status=self._status,
            desired=self._desired,
            error=self._error,
            fps=round(self._meter.fps(now), 2),
            configured_fps=round(1.0 / t.period, 3),
            width=self._width,
            height=self._height,
            last_frame_at=self._last_frame_at,
            started_at=self._started_at,
            frames=self._frames,
            bytes=self._bytes,
            published=self._published,
            demand=self._policy.demanded(now),
            request_id=self._request_id,
        )

    def handle_command(self, command: Command) -> None:
        """Apply ``start``, ``stop`` or ``snapshot``; the request id shows in the next state."""
        if command.action == "snapshot":
            # Answered (request id published) once the capture was attempted.
            self._snapshots.append(command.request_id)
            self._wake.set()
            return
        self._request_id = command.request_id
        self.set_desired("started" if command.action == "start" else "stopped", force=True)

    @property
    def desired(self) -> Desired:
        """Whether the stream should be capturing."""
        return self._desired

    def set_desired(self, desired: Desired, *, force: bool = False) -> None:
        """Start or stop capturing in place (the runner and its counters live on)."""
        if desired == self._desired and not force:
            return
        self._desired = desired
        if desired == "stopped" and self._status in _RUNNING:
            self._status = StreamStatus.STOPPING
        self._wake.set()
        self._publish_state()

    def capture_event(self, event_type: str) -> str | None:
        """Hook for event detectors: queue an ``event`` capture if the policy lists the type.

        Returns the id the capture will carry, or None when none is queued (never for a stopped
        stream: no frames to keep). Events before the next frame share one capture.
        """
        if event_type not in self.template.capture.on_events or not self._running():
            return None
        if self._event_capture is None:
            self._event_capture = uuid.uuid4().hex
            self._wake.set()
        return self._event_capture

    def link_up(self) -> None:
        """The broker link (re)connected: publish the next capture as a frame.

        Frames are dropped while offline, so without this the hub could wait a whole
        keep-alive for a full frame after every connect.
        """
        self._policy.frame_lost()

    def handle_demand(self, demand: Demand) -> None:
        """Add or renew a viewer lease: frames go out at full rate while it lives."""
        self._policy.add_lease(demand, asyncio.get_running_loop().time())

    # ------------------------------------------------------------------ main loop

    async def _main(self) -> None:
        try:
            while not self._closing:
                if self._desired == "stopped":
                    await self._idle()
                else:
                    await self._session()
        finally:
            self.events.interrupt("stream stopped")
            self._set_status(StreamStatus.INACTIVE)

    async def _idle(self) -> None:
        """Stopped: wait for a command; a snapshot opens the source just once."""
        self._set_status(StreamStatus.INACTIVE)
        if not self._snapshots:
            await self._wait_wake(None)
        if self._snapshots and not self._closing and self._desired == "stopped":
            await self._one_shot()

    def _running(self) -> bool:
        return self._desired == "started" and not self._closing

    async def _session(self) -> None:
        """Started: open, capture until stopped; on failure report ``error`` and retry."""
        self._reset_counters()
        self._started_at = datetime.now(UTC)
        self._set_status(StreamStatus.STARTING)
        while self._running():
            source: Source | None = None
            try:
                source = self._factory(self.template)
                await self._in_thread(self._open, source)
                await self._capture_loop(source)
            except Exception as err:  # noqa: BLE001 - any failure becomes the stream's error
                self._failed(err)
            finally:
                await self._close_source(source)
                self.events.interrupt("stream stopped" if not self._running() else "source lost")
            if self._running() and self._status is StreamStatus.ERROR:
                await self._wait_wake(self._backoff.next_delay())

    async def _capture_loop(self, source: Source) -> None:
        loop = asyncio.get_running_loop()
        period = self.template.period
        deadline = loop.time()
        while self._running():
            if not self._urgent():
                await self._wait_wake(deadline - loop.time())
                if not self._running() or (not self._urgent() and loop.time() < deadline):
                    continue
            await self._capture_once(source)
            self._mark_active()
            # Deadline scheduling: the next slot is one period after the previous slot, not
            # after this capture finished; slots missed by a slow capture are skipped.
            deadline = max(deadline + period, loop.time() - period / 2)

    def _urgent(self) -> bool:
        return bool(self._snapshots or self._event_capture)

    async def _capture_once(self, source: Source) -> None:
        now = asyncio.get_running_loop().time()
        answering, self._snapshots = self._snapshots, []
        requests = self._capture_requests(now, answering)
        want_frame = bool(answering) or self._policy.frame_due(now)
        want_thumb = bool(answering) or self._policy.snapshot_due(now)
        want_jpeg = want_frame or bool(requests)
        try:
            capture = await self._in_thread(self._capture, source, want_jpeg, want_thumb, True)
        finally:
            self._answer(answering)
        self._record(capture, publish_frame=self._frame_wanted(capture, want_frame, now))
        self.events.report(capture.detection)
        # An event fired by this very frame is captured from it (the worker encoded it).
        self._publish_captures(capture, [*requests, *self._event_requests()])
        if answering:
            self._publish_state()

    def _frame_wanted(self, capture: Capture, due: bool, now: float) -> bool:
        """Whether this capture goes out as a frame (``due``: the publish policy says so)."""
        detection = capture.detection
        if detection.notable:
            return True  # motion started or the page changed: the hub shows it at once
        # An unchanged page is not sent again, watched or not: a viewer already shows it, and
        # a new frame would only cost bandwidth. The keep-alive still goes out.
        return due and (not detection.identical or self._policy.keepalive_due(now))

    def _capture_requests(self, now: float, answering: list[str | None]) -> list[CaptureRequest]:
        """The captures this tick owes: manual ones per snapshot request, event, interval."""
        requests = [*_manual(answering), *self._event_requests()]
        every = self.template.capture.interval
        # Same half-period slack as PublishPolicy: captures land on the frame grid.
        if every is not None and (
            self._capture_at is None or now - self._capture_at >= every - self.template.period / 2
        ):
            self._capture_at = now
            requests.append(("interval", None, None))
        return requests

    def _event_requests(self) -> list[CaptureRequest]:
        """The queued event capture, if any (a burst of events on one frame is one capture)."""
        capture_id, self._event_capture = self._event_capture, None
        return [("event", None, capture_id)] if capture_id is not None else []

    async def _one_shot(self) -> None:
        """Capture one frame from a stopped stream to answer snapshot commands."""
        source: Source | None = None
        answering, self._snapshots = self._snapshots, []
        try:
            source = self._factory(self.template)
            await self._in_thread(source.open)
            capture = await self._in_thread(self._capture, source, True, True, False)
            self._error = None
            self._record(capture, publish_frame=True)
            self._publish_captures(capture, _manual(answering))
        except Exception as err:  # noqa: BLE001 - reported in the state, never raised
            self._error = f"snapshot failed: {err}"
        finally:
            await self._close_source(source)
            self._answer(answering)
            self._publish_state()

    # ------------------------------------------------------------------ worker thread

    def _open(self, source: Source) -> None:
        """Open the source and start the detectors afresh (worker thread)."""
        source.open()
        self._detectors.reset()

    def _capture(self, source: Source, want_jpeg: bool, want_thumb: bool, detect: bool) -> Capture:
        """Read, detect and encode in the source's worker thread: never on the event loop."""
        frame = source.read()
        captured_at = time.time()
        detection = self._detectors.run(source, frame) if detect else NOTHING
        if detection.notable:
            want_jpeg = want_thumb = True  # sent at once, and maybe kept as an event capture
        size = None
        if self.template.width is not None and self.template.height is not None:
            size = (self.template.width, self.template.height)
        jpeg = encode(frame, size, self.template.quality) if want_jpeg else None
        thumb = thumbnail(frame, size).data if want_thumb else None
        self._width, self._height = size or (frame.width, frame.height)
        return Capture(captured_at, jpeg, thumb, detection)

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await self._worker.run(fn, *args)

    async def _close_source(self, source: Source | None) -> None:
        if source is None:
            return
        try:
            await asyncio.wait_for(self._in_thread(source.close), self._close_timeout)
        except Exception as err:  # noqa: BLE001 - closing must never stop the runner
            log.warning("stream %s: closing %s failed: %s", self.template.id, source.name, err)

    # ------------------------------------------------------------------ bookkeeping

    def _record(self, capture: Capture, *, publish_frame: bool) -> None:
        now = asyncio.get_running_loop().time()
        self._frames += 1
        self._meter.tick(now)
        self._last_frame_at = datetime.fromtimestamp(capture.captured_at, UTC)
        if capture.jpeg is not None and publish_frame:
            meta = FrameMeta(seq=self._published, captured_at=capture.captured_at)
            self._publisher.publish_frame(self.template.id, encode_frame(capture.jpeg.data, meta))
            self._published += 1
            self._bytes += len(capture.jpeg.data)
            self._policy.frame_sent(now)
        if capture.thumbnail is not None:
            self._publisher.publish_snapshot(self.template.id, capture.thumbnail)
            self._policy.snapshot_sent(now)
        demanded = self._policy.demanded(now)
        if demanded != self._demanded or now - self._state_at >= self._state_every:
            self._demanded = demanded
            self._publish_state()

    def _publish_captures(self, capture: Capture, requests: Iterable[CaptureRequest]) -> None:
        if capture.jpeg is None:
            return
        for reason, request_id, capture_id in requests:
            meta = FrameMeta(
                seq=self.captures,
                captured_at=capture.captured_at,
                capture_id=capture_id or uuid.uuid4().hex,
                reason=reason,
                request_id=request_id,
            )
            self._publisher.publish_capture(self.template.id, encode_frame(capture.jpeg.data, meta))
            self.captures += 1

    def _answer(self, request_ids: list[str | None]) -> None:
        answered = [rid for rid in request_ids if rid is not None]
        if answered:
            self._request_id = answered[-1]

    def _mark_active(self) -> None:
        if self._status is StreamStatus.ERROR:
            log.info("stream %s: %s is back", self.template.id, self.template.source.kind)
        self._backoff.reset()
        if self._status is not StreamStatus.ACTIVE or self._error is not None:
            self._error = None
            self._set_status(StreamStatus.ACTIVE)

    def _failed(self, err: Exception) -> None:
        message = str(err) if isinstance(err, SourceError) else f"unexpected error: {err!r}"
        if self._backoff.first_failure:
            log.warning(
                "stream %s: %s (retrying)",
                self.template.id,
                message,
                exc_info=not isinstance(err, SourceError),
            )
        else:
            log.debug("stream %s: still failing: %s", self.template.id, message)
        self._error = message
        self._set_status(StreamStatus.ERROR, force=True)

    def _reset_counters(self) -> None:
        self._frames = self._bytes = self._published = 0
        self._width = self._height = None
        self._last_frame_at = self._started_at = None
        self._demanded = False
        self._state_at = 0.0
        self._capture_at = None
        self._meter.reset()

    def _set_status(self, status: StreamStatus, *, force: bool = False) -> None:
        if status is self._status and not force:
            return
        self._status = status
        if status is StreamStatus.INACTIVE:
            self._meter.reset()
        self._publish_state()

    def _publish_state(self) -> None:
        self._state_at = asyncio.get_running_loop().time()
        self._publisher.publish_stream_state(self.state)

    async def _wait_wake(self, delay: float | None) -> None:
        """Sleep ``delay`` seconds (None: forever) or until a command or close wakes us."""
        if delay is not None and delay <= 0:
            return
        await wait_event(self._wake, delay)
        self._wake.clear()


def _manual(request_ids: list[str | None]) -> list[CaptureRequest]:
    """One manual capture per distinct snapshot request (repeats of an id are one request)."""
    return [("manual", rid, None) for rid in dict.fromkeys(request_ids)]
