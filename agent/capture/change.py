"""Page-change detection between consecutive screenshots, on a small grey copy of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

Grey = npt.NDArray[np.uint8]

# libjpeg decodes at 1/4 or 1/8 scale straight from the DCT coefficients, so the full-size
# image is never built (DESIGN §7: compare a reduced grey copy, never full size).
_REDUCE_FLAGS = {4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """How a screenshot compares with the ones before it.

    ``identical``: nothing visible differs from the previous frame (skip re-publishing it).
    ``fraction``: share of pixels differing from the reference frame, 0..1.
    ``changed``: ``fraction`` exceeds the threshold (emit ``page_changed``).
    """

    fraction: float
    changed: bool
    identical: bool
    first: bool = False


class ChangeDetector:
    """Compares each screenshot with the previous one and with the last reported change.

    The reference for ``changed`` moves only when a change is reported, so a page that creeps
    by less than the threshold per frame still reports once the sum of small changes crosses it.
    """

    def __init__(
        self,
        threshold: float,
        pixel_delta: int = 24,
        reduce: Literal[4, 8] = 8,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold is a fraction between 0 and 1")
        if not 0 < pixel_delta < 256:
            raise ValueError("pixel_delta is a grey-level difference between 1 and 255")
        self.threshold = threshold
        self.pixel_delta = pixel_delta
        self._flag = _REDUCE_FLAGS[reduce]
        self._previous_jpeg: bytes | None = None
        self._previous: Grey | None = None
        self._reference: Grey | None = None

    def reset(self) -> None:
        """Forget the history; the next frame is a first frame again."""
        self._previous_jpeg = None
        self._previous = None
        self._reference = None

    def update(self, jpeg: bytes) -> ChangeResult:
        """Compare ``jpeg`` with the history, then remember it; ValueError for non-JPEG bytes."""
        if self._previous_jpeg is not None and jpeg == self._previous_jpeg:
            # Chromium encodes the same pixels to the same bytes: no decode needed.
            fraction = 0.0 if self._reference is self._previous else self._fraction_of_same()
            return self._decide(fraction, identical=True)
        grey = self.grey(jpeg)
        previous = self._previous
        self._previous_jpeg = jpeg
        self._previous = grey
        if previous is None or self._reference is None:
            self._reference = grey
            return ChangeResult(fraction=0.0, changed=False, identical=False, first=True)
        identical = changed_fraction(previous, grey, self.pixel_delta) == 0.0
        if identical and self._reference is previous:
            fraction = 0.0
        else:
            fraction = changed_fraction(self._reference, grey, self.pixel_delta)
        return self._decide(fraction, identical)

    def grey(self, jpeg: bytes) -> Grey:
        """A reduced, lightly blurred grey copy of ``jpeg``."""
        data = np.frombuffer(jpeg, dtype=np.uint8)
        image = cv2.imdecode(data, self._flag) if data.size else None
        if image is None:
            raise ValueError("not a decodable JPEG")
        # A light blur absorbs JPEG ringing and sub-pixel anti-aliasing shifts.
        return np.asarray(cv2.GaussianBlur(image, (3, 3), 0), dtype=np.uint8)

    def _fraction_of_same(self) -> float:
        assert self._previous is not None and self._reference is not None
        return changed_fraction(self._reference, self._previous, self.pixel_delta)

    def _decide(self, fraction: float, identical: bool) -> ChangeResult:
        changed = fraction > self.threshold
        if changed:
            self._reference = self._previous
        return ChangeResult(fraction=fraction, changed=changed, identical=identical)


def changed_fraction(before: Grey, after: Grey, pixel_delta: int = 24) -> float:
    """Share of pixels whose grey level moved by more than ``pixel_delta``; 1.0 on a size change."""
    if before.shape != after.shape:
        return 1.0
    diff = cv2.absdiff(before, after)
    _, mask = cv2.threshold(diff, pixel_delta, 255, cv2.THRESH_BINARY)
    return float(cv2.countNonZero(mask)) / float(mask.size)
