"""Per-frame detectors of one stream, run in the stream's worker thread (never the event loop).

Motion runs on every captured frame of a camera stream whose template enables it, whatever the
viewer demand (DESIGN §3); page change comes from the website source itself, which compares
each screenshot with the previous one as it takes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from glimpser.agent.capture.motion import MotionDetector, MotionResult
from glimpser.agent.sources.base import CapturedFrame
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import Template

if TYPE_CHECKING:
    from glimpser.agent.capture.change import ChangeResult

log = logging.getLogger(__name__)


@runtime_checkable
class ChangeAware(Protocol):
    """A source that tells how its last frame differed from the one before (PageSource)."""

    @property
    def last_change(self) -> ChangeResult | None:
        """The comparison made by the last ``read``; None before any or when it failed."""
        ...


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detectors saw in one frame."""

    motion: MotionResult | None = None
    change: ChangeResult | None = None

    @property
    def notable(self) -> bool:
        """Motion just started or the page just changed: the frame is worth sending now."""
        started = self.motion is not None and self.motion.started
        changed = self.change is not None and self.change.changed
        return started or changed

    @property
    def identical(self) -> bool:
        """Nothing visible differs from the previous frame (a static page)."""
        return self.change is not None and self.change.identical


NOTHING = Detection()


class Detectors:
    """The detectors of one stream; every method runs in the stream's worker thread."""

    def __init__(self, template: Template) -> None:
        settings = template.motion
        camera = template.source.kind != "website"
        enabled = camera and settings is not None and settings.enabled
        self._motion = MotionDetector(settings) if enabled and settings is not None else None
        self._rlog = RateLimitedLog(log)
        self._stream = template.id

    @property
    def motion_enabled(self) -> bool:
        """True when this stream runs motion detection."""
        return self._motion is not None

    def reset(self) -> None:
        """Forget the background (the source was (re)opened: the scene may have moved)."""
        if self._motion is not None:
            self._motion.reset()

    def run(self, source: object, frame: CapturedFrame) -> Detection:
        """Run every detector on ``frame`` just read from ``source``."""
        change = source.last_change if isinstance(source, ChangeAware) else None
        return Detection(motion=self._detect_motion(frame), change=change)

    def _detect_motion(self, frame: CapturedFrame) -> MotionResult | None:
        if self._motion is None:
            return None
        # The raw image when the source gives one, else its JPEG: the detector decodes only a
        # reduced grey copy of it (DESIGN §7), so a JPEG camera is never fully decoded here.
        pixels = frame.image if frame.image is not None else frame.jpeg
        assert pixels is not None  # CapturedFrame holds exactly one of them
        try:
            return self._motion.update(pixels)
        except ValueError as err:  # an undecodable frame: the encoder reports it as the error
            self._rlog.warning(f"motion:{self._stream}", "stream %s: %s", self._stream, err)
            return None
