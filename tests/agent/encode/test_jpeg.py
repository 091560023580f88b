"""JPEG encoding: right size, decodable, pass-through for camera JPEGs, small thumbnails."""

from __future__ import annotations

import cv2
import numpy as np

from glimpser.agent.encode.jpeg import encode, thumbnail
from glimpser.agent.sources.base import CapturedFrame


def _image(width: int = 640, height: int = 480) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.rectangle(image, (10, 10), (width // 2, height // 2), (0, 200, 255), -1)
    return image


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


def test_encode_native_size() -> None:
    jpeg = encode(CapturedFrame.from_image(_image()), quality=80)
    assert (jpeg.width, jpeg.height) == (640, 480)
    assert _decode(jpeg.data).shape == (480, 640, 3)


def test_encode_resizes_to_the_asked_size() -> None:
    jpeg = encode(CapturedFrame.from_image(_image()), (320, 180), quality=60)
    assert (jpeg.width, jpeg.height) == (320, 180)
    assert _decode(jpeg.data).shape == (180, 320, 3)


def test_quality_changes_the_size() -> None:
    frame = CapturedFrame.from_image(
        np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    )
    assert len(encode(frame, quality=20).data) < len(encode(frame, quality=95).data)


def test_camera_jpeg_passes_through_untouched() -> None:
    ok, buf = cv2.imencode(".jpg", _image())
    assert ok
    frame = CapturedFrame(width=640, height=480, jpeg=buf.tobytes())
    assert encode(frame).data is frame.jpeg
    assert encode(frame, (640, 480)).data is frame.jpeg


def test_camera_jpeg_is_resized_when_asked() -> None:
    ok, buf = cv2.imencode(".jpg", _image(1280, 720))
    assert ok
    frame = CapturedFrame(width=1280, height=720, jpeg=buf.tobytes())
    jpeg = encode(frame, (320, 180))
    assert _decode(jpeg.data).shape == (180, 320, 3)


def test_thumbnail_is_at_most_640_wide() -> None:
    thumb = thumbnail(CapturedFrame.from_image(_image(1920, 1080)))
    assert _decode(thumb.data).shape == (360, 640, 3)
    small = thumbnail(CapturedFrame.from_image(_image(320, 240)))
    assert _decode(small.data).shape == (240, 320, 3)
    # It follows the stream's output size: smaller than native, or capped at 640 wide.
    resized = thumbnail(CapturedFrame.from_image(_image(640, 480)), (160, 120))
    assert _decode(resized.data).shape == (120, 160, 3)
    capped = thumbnail(CapturedFrame.from_image(_image(320, 240)), (1280, 720))
    assert _decode(capped.data).shape == (360, 640, 3)
