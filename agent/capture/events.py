"""StreamEvents: turns one stream's detections into MQTT motion state, Events and captures.

Runs on the event loop after each capture. Motion is published as the retained ``ON``/``OFF``
of ``<agent>/<stream>/motion`` at each edge, plus a ``motion`` Event at the start and at the
end of each episode; a page change above the template's threshold is a ``page_changed`` Event.
When the template's capture policy lists the event type, ``capture_event`` queues a capture of
the very frame that fired it, and the event carries that capture's id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from glimpser.agent.capture.detect import Detection
from glimpser.agent.capture.motion import MotionResult
from glimpser.agent.publish.base import Publisher
from glimpser.shared.models import Event

log = logging.getLogger(__name__)

CaptureHook = Callable[[str], "str | None"]
"""``capture_event(event_type)``: the id of the event capture queued, or None when none is."""


@dataclass(frozen=True, slots=True)
class _Episode:
    """A motion episode in progress: its start event and, if one was taken, its capture."""

    event_id: str
    capture_id: str | None
    started: float  # monotonic


class StreamEvents:
    """Publishes the motion state and the events of one stream (event loop only)."""

    def __init__(
        self,
        agent_id: str,
        stream_id: str,
        publisher: Publisher,
        capture_event: CaptureHook,
        *,
        motion: bool,
    ) -> None:
        self._agent = agent_id
        self._stream = stream_id
        self._publisher = publisher
        self._capture_event = capture_event
        self._tracks_motion = motion
        self._episode: _Episode | None = None

    @property
    def motion(self) -> bool:
        """True while a motion episode is in progress."""
        return self._episode is not None

    def announce(self) -> None:
        """Publish the initial ``OFF`` so Home Assistant and the hub have a value at once."""
        if self._tracks_motion:
            self._publisher.publish_motion(self._stream, False)

    def report(self, detection: Detection) -> None:
        """Publish what one frame's detection means: edges of motion, page changes."""
        if detection.motion is not None:
            self._motion(detection.motion)
        change = detection.change
        if change is not None and change.changed:
            capture_id = self._capture_event("page_changed")
            self._emit("page_changed", fraction=round(change.fraction, 4), capture_id=capture_id)

    def interrupt(self, reason: str) -> None:
        """End a motion episode the detector can no longer finish (source lost, stream stopped)."""
        episode, self._episode = self._episode, None
        if episode is None:
            return
        self._publisher.publish_motion(self._stream, False)
        self._emit(
            "motion",
            phase="end",
            duration=round(time.monotonic() - episode.started, 2),
            start_id=episode.event_id,
            capture_id=episode.capture_id,
            interrupted=reason,
        )

    def _motion(self, result: MotionResult) -> None:
        if result.recalibrated:
            log.debug(
                "stream %s: whole-scene change (%.0f %%): motion background reset",
                self._stream,
                result.fraction * 100,
            )
        if result.started:
            self._start(result)
        elif result.ended and self._episode is not None:
            self._end(result, self._episode)

    def _start(self, result: MotionResult) -> None:
        capture_id = self._capture_event("motion")
        event = self._emit(
            "motion",
            phase="start",
            fraction=round(result.fraction, 4),
            peak_fraction=round(result.peak_fraction, 4),
            boxes=len(result.boxes),
            capture_id=capture_id,
        )
        self._episode = _Episode(event.id, capture_id, time.monotonic())
        self._publisher.publish_motion(self._stream, True)
        log.info("stream %s: motion started (%.1f %%)", self._stream, result.fraction * 100)

    def _end(self, result: MotionResult, episode: _Episode) -> None:
        self._episode = None
        self._publisher.publish_motion(self._stream, False)
        self._emit(
            "motion",
            phase="end",
            fraction=round(result.fraction, 4),
            peak_fraction=round(result.peak_fraction, 4),
            duration=round(result.duration or 0.0, 2),
            start_id=episode.event_id,
            capture_id=episode.capture_id,
        )
        log.info("stream %s: motion ended after %.1f s", self._stream, result.duration or 0.0)

    def _emit(self, event_type: str, **data: str | int | float | bool | None) -> Event:
        # Absent values are left out rather than sent as nulls.
        fields = {key: value for key, value in data.items() if value is not None}
        event = Event(agent_id=self._agent, stream_id=self._stream, type=event_type, data=fields)
        self._publisher.publish_event(event)
        return event
