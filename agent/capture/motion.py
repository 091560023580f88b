"""Motion detection on a camera stream, cheap enough to run on a Raspberry Pi at the capture rate.

Every frame is reduced to a small grey copy of ``analysis_height`` rows first (DESIGN §7): a
BGR image is shrunk, then converted to grey; a JPEG is decoded straight into a reduced grey
image by libjpeg (``IMREAD_REDUCED_GRAYSCALE_2/4/8``) and never at full colour size. All
further work (blur, background, difference, threshold, dilation, masks, contours) happens at
that size.

``MotionDetector`` is synchronous, pure CPU and not thread-safe: the stream runner owns one
per stream and calls ``update`` from the stream's worker thread, never on the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from glimpser.shared.models import MotionSettings

Grey = npt.NDArray[np.uint8]
"""A single-channel uint8 image, shape (height, width)."""

Box = tuple[int, int, int, int]
"""A rectangle ``(x, y, width, height)`` in pixels of the original frame."""

_JPEG_REDUCTIONS = (
    (8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
    (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    (2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
)
# Start-of-frame markers that carry the image size (C4, C8 and CC are other tables).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and the restart markers RST0..RST7.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What one frame told the detector; ``motion`` is the debounced state after it."""

    motion: bool = False
    started: bool = False
    """True on the frame that turned motion ON."""
    ended: bool = False
    """True on the frame that turned motion OFF (``duration`` is then set)."""
    fraction: float = 0.0
    """Changed share of the unmasked analysed pixels in this frame, 0..1."""
    peak_fraction: float = 0.0
    """Largest ``fraction`` of a motion frame in the current (or just ended) episode."""
    boxes: list[Box] = field(default_factory=list)
    """Blobs of at least ``min_area`` this frame, ``(x, y, w, h)`` in original-frame pixels."""
    recalibrated: bool = False
    """The whole scene changed (lights, IR filter, exposure): background reset, no motion."""
    duration: float | None = None
    """Seconds from the ``started`` frame to the ``ended`` frame; None unless ``ended``."""


class MotionDetector:
    """Running-average background subtraction with debouncing, for one stream."""

    def __init__(
        self, settings: MotionSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._kernel = np.ones((3, 3), np.uint8)
        self._size: tuple[int, int] | None = None  # analysis (width, height)
        self._background: npt.NDArray[np.float32] | None = None
        self._mask: Grey | None = None  # 255 = analysed, 0 = ignored; None = no masks
        self._unmasked = 0
        self._on = False
        self._run = 0  # consecutive frames with motion
        self._last_hit = 0.0
        self._on_since = 0.0
        self._peak = 0.0

    @property
    def settings(self) -> MotionSettings:
        """The settings in force."""
        return self._settings

    @property
    def motion(self) -> bool:
        """The current debounced motion state."""
        return self._on

    @property
    def analysis_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the grey copy analysed; None before the first frame."""
        return self._size

    def reconfigure(self, settings: MotionSettings) -> None:
        """Use new settings from the next frame on; the ON/OFF state carries over."""
        height_changed = settings.analysis_height != self._settings.analysis_height
        self._settings = settings
        if height_changed:
            self._size, self._background = None, None  # another working size: seed again
        elif self._size is not None:
            self._build_mask(*self._size)

    def reset(self) -> None:
        """Forget the background and end any episode silently (e.g. after a source restart)."""
        self._background = None
        self._on = False
        self._run = 0
        self._peak = 0.0

    def update(self, frame: npt.NDArray[np.uint8] | bytes) -> MotionResult:
        """Analyse one frame (BGR/BGRA/grey image, or JPEG bytes) and return the new state."""
        if not self._settings.enabled:
            return MotionResult()
        grey, (width, height) = self._small_grey(frame)
        now = self._clock()
        blurred = self._blur(grey)
        if self._background is None or self._background.shape != blurred.shape:
            self._seed(blurred)
            return self._result(False, 0.0, [])
        changed = self._changed_pixels(blurred)
        fraction = cv2.countNonZero(changed) / self._unmasked if self._unmasked else 0.0
        if fraction > self._settings.global_change:
            # A whole-scene change is lighting, not motion: start over from this frame.
            self._seed(blurred)
            return self._step(False, fraction, [], now, recalibrated=True)
        cv2.accumulateWeighted(blurred, self._background, self._settings.learning_rate)
        boxes = self._blobs(changed, width, height)
        return self._step(bool(boxes), fraction, boxes, now)

    # -- reducing the frame -------------------------------------------------------------------

    def _small_grey(self, frame: npt.NDArray[np.uint8] | bytes) -> tuple[Grey, tuple[int, int]]:
        """The analysis-size grey copy and the original frame's ``(width, height)``."""
        rows = self._settings.analysis_height
        if isinstance(frame, bytes | bytearray | memoryview):
            grey, size = _decode_reduced(bytes(frame), rows)
            target = working_size(*size, rows)
            if (grey.shape[1], grey.shape[0]) != target:
                grey = _u8(cv2.resize(grey, target, interpolation=cv2.INTER_AREA))
        else:
            size = (int(frame.shape[1]), int(frame.shape[0]))
            target = working_size(*size, rows)
            grey = _to_grey(_shrink(frame, target))
        if target != self._size:
            self._build_mask(*target)
        return grey, size

    def _blur(self, grey: Grey) -> Grey:
        """Smooth sensor noise; the kernel grows with the analysis height."""
        k = 2 * max(1, grey.shape[0] // 60) + 1
        return _u8(cv2.GaussianBlur(grey, (k, k), 0))

    # -- comparing with the background ------------------------------------------------------

    def _seed(self, blurred: Grey) -> None:
        """Make ``blurred`` the whole background."""
        self._background = blurred.astype(np.float32)

    def _changed_pixels(self, blurred: Grey) -> Grey:
        """Binary image (255 = changed) of pixels differing by at least pixel_threshold."""
        assert self._background is not None
        diff = cv2.absdiff(blurred, cv2.convertScaleAbs(self._background))
        # THRESH_BINARY keeps values strictly above the threshold; the setting is inclusive.
        _, changed = cv2.threshold(diff, self._settings.pixel_threshold - 1, 255, cv2.THRESH_BINARY)
        # Dilation joins the fragments of one object into one blob.
        changed = cv2.dilate(changed, self._kernel, iterations=1)
        if self._mask is not None:
            # Masking after dilation so that no blob bleeds into an ignored area.
            changed = cv2.bitwise_and(changed, self._mask)
        return _u8(changed)

    def _blobs(self, changed: Grey, width: int, height: int) -> list[Box]:
        """Bounding boxes, in original-frame pixels, of the blobs of at least min_area."""
        rows, cols = changed.shape
        min_pixels = self._settings.min_area * rows * cols
        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = width / cols, height / rows
        boxes: list[Box] = []
        for contour in contours:
            # A 1-pixel blob has contour area 0: never count it, even with min_area 0.
            area = cv2.contourArea(contour)
            if area <= 0 or area < min_pixels:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append(_scale_box(x, y, w, h, sx, sy, width, height))
        return boxes

    def _build_mask(self, width: int, height: int) -> None:
        """Rasterise the mask polygons at the analysis size (only when that size changes)."""
        self._size = (width, height)
        self._unmasked = width * height
        self._mask = None
        if not self._settings.masks:
            return
        mask = np.full((height, width), 255, np.uint8)
        scale = np.array([width, height], np.float64)
        polygons = [
            np.round(np.asarray(p, np.float64) * scale).astype(np.int32)
            for p in self._settings.masks
        ]
        cv2.fillPoly(mask, polygons, 0)
        self._mask = mask
        self._unmasked = cv2.countNonZero(mask)

    # -- debouncing ---------------------------------------------------------------------------

    def _step(
        self,
        hit: bool,
        fraction: float,
        boxes: list[Box],
        now: float,
        recalibrated: bool = False,
    ) -> MotionResult:
        """Advance the ON/OFF state machine by one frame."""
        if hit:
            return self._on_hit(fraction, boxes, now)
        self._run = 0
        if not self._on:
            self._peak = 0.0
            return self._result(False, fraction, boxes, recalibrated=recalibrated)
        if now - self._last_hit < self._settings.off_delay:
            return self._result(False, fraction, boxes, recalibrated=recalibrated)
        self._on = False
        peak, self._peak = self._peak, 0.0
        return MotionResult(
            motion=False,
            ended=True,
            fraction=fraction,
            peak_fraction=peak,
            boxes=boxes,
            recalibrated=recalibrated,
            duration=now - self._on_since,
        )

    def _on_hit(self, fraction: float, boxes: list[Box], now: float) -> MotionResult:
        """A frame with motion: count it, and turn ON after min_frames in a row."""
        self._run += 1
        self._last_hit = now
        self._peak = max(self._peak, fraction)
        started = not self._on and self._run >= self._settings.min_frames
        if started:
            self._on = True
            self._on_since = now
        return self._result(started, fraction, boxes)

    def _result(
        self, started: bool, fraction: float, boxes: list[Box], recalibrated: bool = False
    ) -> MotionResult:
        """A result carrying the current state."""
        return MotionResult(
            motion=self._on,
            started=started,
            fraction=fraction,
            peak_fraction=self._peak,
            boxes=boxes,
            recalibrated=recalibrated,
        )


def working_size(width: int, height: int, analysis_height: int) -> tuple[int, int]:
    """``(width, height)`` of the analysis copy: analysis_height rows (never upscaled)."""
    rows = min(analysis_height, height)
    return max(1, round(width * rows / height)), rows


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's start-of-frame header, or None if there is none."""
    if data[:2] != b"\xff\xd8":
        return None
    i, end = 2, len(data)
    while i + 9 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker in _STANDALONE_MARKERS:
            i += 2
        elif marker in _SOF_MARKERS:
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return (width, height) if width and height else None
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _decode_reduced(data: bytes, analysis_height: int) -> tuple[Grey, tuple[int, int]]:
    """A grey copy decoded at the largest libjpeg reduction that keeps analysis_height rows."""
    size = jpeg_size(data)
    flag = cv2.IMREAD_GRAYSCALE
    if size is not None:
        flag = _reduction_flag(size[1], analysis_height)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if decoded is None:
        raise ValueError("motion: frame is not a decodable JPEG")
    if size is None:  # no size in the header: the full-size decode tells it
        size = (int(decoded.shape[1]), int(decoded.shape[0]))
    return _u8(decoded), size


def _reduction_flag(height: int, analysis_height: int) -> int:
    """The imdecode flag for the largest 1/8, 1/4 or 1/2 scale still >= analysis_height rows."""
    for factor, flag in _JPEG_REDUCTIONS:
        if height // factor >= analysis_height:
            return flag
    return cv2.IMREAD_GRAYSCALE


def _shrink(image: npt.NDArray[np.uint8], target: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """``image`` resized to ``target`` (width, height), still in its own colour format."""
    height, width = image.shape[:2]
    factor = height // target[1]
    if factor >= 2:
        # An integer INTER_AREA factor takes OpenCV's fast block-average path (about 3x
        # cheaper than a fractional one at 720p) and averages sensor noise; the few cropped
        # edge pixels do not matter for motion.
        rows, cols = height // factor, width // factor
        image = _u8(
            cv2.resize(
                image[: rows * factor, : cols * factor], (cols, rows), interpolation=cv2.INTER_AREA
            )
        )
    if (image.shape[1], image.shape[0]) != target:
        image = _u8(cv2.resize(image, target, interpolation=cv2.INTER_AREA))
    return image


def _to_grey(image: npt.NDArray[np.uint8]) -> Grey:
    """The grey version of a grey, BGR or BGRA image."""
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 1:
        return image[:, :, 0]
    code = cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY
    return _u8(cv2.cvtColor(image, code))


def _u8(image: object) -> Grey:
    """OpenCV's result typed as the uint8 array it is (its stubs say only "MatLike")."""
    return cast(Grey, image)


def _scale_box(
    x: int, y: int, w: int, h: int, sx: float, sy: float, width: int, height: int
) -> Box:
    """An analysis-size rectangle mapped onto the original frame, clipped to it."""
    left, top = min(width - 1, int(x * sx)), min(height - 1, int(y * sy))
    right = min(width, math.ceil((x + w) * sx))
    bottom = min(height, math.ceil((y + h) * sy))
    return left, top, max(1, right - left), max(1, bottom - top)


__all__: Sequence[str] = ["Box", "MotionDetector", "MotionResult", "jpeg_size", "working_size"]
