"""A synthetic test pattern: moving content with a frame counter and the time burned in."""

from __future__ import annotations

import time
from datetime import datetime

import cv2
import numpy as np

from glimpser.agent.sources.base import CapturedFrame, Image
from glimpser.shared.models import TestSource

# SMPTE-like bar colours in BGR: white, yellow, cyan, green, magenta, red, blue.
_BARS = [
    (192, 192, 192),
    (0, 192, 192),
    (192, 192, 0),
    (0, 192, 0),
    (192, 0, 192),
    (0, 0, 192),
    (192, 0, 0),
]


class SyntheticSource:
    """Renders ``bars``, ``motion`` (an object crossing a scene), ``visitor`` or ``noise``."""

    def __init__(self, spec: TestSource) -> None:
        self._spec = spec
        self._count = 0
        self._background: Image | None = None
        self._rng = np.random.default_rng()

    @property
    def name(self) -> str:
        """E.g. ``test pattern 'motion' 640x480``."""
        return f"test pattern {self._spec.pattern!r} {self._spec.width}x{self._spec.height}"

    def open(self) -> None:
        """Pre-render the static part of the scene."""
        self._count = 0
        self._background = _background(self._spec)

    def read(self) -> CapturedFrame:
        """Render the next frame."""
        if self._background is None:
            self.open()
        assert self._background is not None
        if self._spec.pattern == "noise":
            image = self._rng.integers(0, 256, self._background.shape, dtype=np.uint8)
        elif self._spec.pattern == "visitor":
            image = self._background.copy()
            _draw_visitor(image, time.time(), self._spec.visit_every)
        else:
            image = self._background.copy()
            _draw_mover(image, self._count, self._spec.pattern)
        if self._spec.pattern != "visitor":
            # Not on the motion demo: a clock that changes every frame is motion to any detector
            # (as a camera's on-screen display is), so the scene would never be still.
            _burn_in(image, self._count)
        self._count += 1
        return CapturedFrame.from_image(image)

    def close(self) -> None:
        """Drop the pre-rendered scene."""
        self._background = None


def _background(spec: TestSource) -> Image:
    w, h = spec.width, spec.height
    image = np.zeros((h, w, 3), np.uint8)
    if spec.pattern == "bars":
        step = max(1, w // len(_BARS))
        for i, colour in enumerate(_BARS):
            image[:, i * step : (i + 1) * step] = colour
        return image
    # "motion": a static room-like scene, a vertical gradient with a few fixed shapes.
    image[:] = np.linspace(40, 110, h, dtype=np.uint8)[:, None, None]
    cv2.rectangle(image, (w // 10, h // 2), (w // 3, h - h // 10), (60, 90, 60), -1)
    cv2.circle(image, (w - w // 5, h // 4), max(4, h // 10), (80, 160, 200), -1)
    return image


def _draw_mover(image: Image, count: int, pattern: str) -> None:
    h, w = image.shape[:2]
    if pattern == "bars":
        # A sweeping bar so that consecutive frames always differ.
        x = (count * 8) % w
        cv2.rectangle(image, (x, 0), (min(w - 1, x + max(2, w // 40)), h - 1), (255, 255, 255), -1)
        return
    size = max(4, min(w, h) // 8)
    travel = max(1, w - size)
    x = (count * max(2, w // 60)) % (2 * travel)
    x = x if x < travel else 2 * travel - x  # bounce back and forth
    y = h // 2 - size // 2
    # Bright against the dim scene so motion detection sees it (see _draw_visitor).
    cv2.rectangle(image, (x, y), (x + size, y + size), (40, 200, 255), -1)


def _draw_visitor(image: Image, now: float, every: float) -> None:
    """An object crossing the scene during the first few seconds of each ``every`` s period."""
    crossing = min(4.0, every / 2)
    phase = now % every
    if phase >= crossing:
        return
    h, w = image.shape[:2]
    size = max(4, min(w, h) // 5)
    x = int((phase / crossing) * (w + size)) - size
    y = h // 2 - size // 3
    # Bright (grey ~200) against the 40..110 grey scene: well above the default motion
    # pixel_threshold, as a person lit against a dim yard would be.
    cv2.rectangle(image, (x, y), (x + size // 2, y + size), (40, 200, 255), -1)


def _burn_in(image: Image, count: int) -> None:
    h = image.shape[0]
    scale = max(0.4, h / 480)
    now = datetime.fromtimestamp(time.time()).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    for i, text in enumerate((f"#{count}", now)):
        org = (8, int((i + 1) * 28 * scale))
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1)
