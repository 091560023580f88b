"""JPEG encoding at the template's size and quality, and small snapshot thumbnails."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from glimpser.agent.sources.base import CapturedFrame, Image
from glimpser.shared.errors import SourceError

THUMBNAIL_WIDTH = 640
THUMBNAIL_QUALITY = 70


@dataclass(frozen=True, slots=True)
class Jpeg:
    """Encoded JPEG bytes and their pixel size."""

    data: bytes
    width: int
    height: int


def encode(frame: CapturedFrame, size: tuple[int, int] | None = None, quality: int = 80) -> Jpeg:
    """``frame`` as a JPEG of ``size`` (None keeps the native size) at ``quality``.

    A frame the source delivered as JPEG passes through untouched when no resize is needed:
    decoding and re-encoding it would cost CPU and quality for nothing (DESIGN §7).
    """
    target = size or (frame.width, frame.height)
    if frame.jpeg is not None and target == (frame.width, frame.height):
        return Jpeg(frame.jpeg, frame.width, frame.height)
    image = _resize(_pixels(frame, target[0]), target)
    return Jpeg(_imencode(image, quality), target[0], target[1])


def thumbnail(
    frame: CapturedFrame,
    size: tuple[int, int] | None = None,
    max_width: int = THUMBNAIL_WIDTH,
) -> Jpeg:
    """The stream's picture (``size``, else native) scaled to at most ``max_width`` px wide.

    It follows the stream's output size so that the retained snapshot never shows a bigger
    picture than the stream's own frames (a 320x240 template of a 640x480 camera).
    """
    width, height = size or (frame.width, frame.height)
    if width > max_width:
        width, height = max_width, max(1, round(height * max_width / width))
    if (width, height) == (frame.width, frame.height):
        return encode(frame, quality=THUMBNAIL_QUALITY)
    return encode(frame, (width, height), THUMBNAIL_QUALITY)


def _pixels(frame: CapturedFrame, target_width: int) -> Image:
    if frame.image is not None:
        return frame.image
    assert frame.jpeg is not None
    # Let libjpeg scale down while decoding when the target is much smaller (cheap).
    flag = cv2.IMREAD_COLOR
    for factor, reduced in (
        (8, cv2.IMREAD_REDUCED_COLOR_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2),
    ):
        if frame.width // factor >= target_width:
            flag = reduced
            break
    image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), flag)
    if image is None:
        raise SourceError("the source delivered a JPEG that cannot be decoded")
    return image  # type: ignore[return-value]


def _resize(image: Image, size: tuple[int, int]) -> Image:
    height, width = image.shape[:2]
    if (width, height) == size:
        return image
    shrinking = size[0] < width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)  # type: ignore[return-value]


def _imencode(image: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return bytes(buf)
