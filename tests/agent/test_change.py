"""ChangeDetector on synthetic JPEGs (real-page cases live in test_website.py)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from glimpser.agent.capture.change import ChangeDetector, changed_fraction

Image = npt.NDArray[np.uint8]


def canvas(width: int = 640, height: int = 480, colour: int = 40) -> Image:
    """A flat grey BGR image with some text, like a quiet dashboard."""
    image = np.full((height, width, 3), colour, np.uint8)
    cv2.putText(image, "status: ok", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
    return image


def jpeg(image: Image, quality: int = 80) -> bytes:
    """``image`` encoded as JPEG."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(data)


def with_block(image: Image, fraction: float, colour: int = 250) -> Image:
    """A copy of ``image`` with a bottom-right block covering ``fraction`` of it repainted."""
    out = image.copy()
    h, w = out.shape[:2]
    side = np.sqrt(fraction)
    out[h - int(h * side) :, w - int(w * side) :] = colour
    return out


def test_first_frame_is_neither_changed_nor_identical() -> None:
    result = ChangeDetector(0.01).update(jpeg(canvas()))
    assert result.first and not result.changed and not result.identical
    assert result.fraction == 0.0


def test_same_bytes_are_identical() -> None:
    detector = ChangeDetector(0.01)
    data = jpeg(canvas())
    detector.update(data)
    result = detector.update(data)
    assert result.identical and not result.changed and result.fraction == 0.0


def test_same_picture_encoded_differently_is_identical() -> None:
    detector = ChangeDetector(0.01)
    detector.update(jpeg(canvas(), quality=90))
    result = detector.update(jpeg(canvas(), quality=60))
    assert result.identical and result.fraction == 0.0


def test_large_change_is_changed_with_its_fraction() -> None:
    detector = ChangeDetector(0.05)
    detector.update(jpeg(canvas()))
    result = detector.update(jpeg(with_block(canvas(), 0.25)))
    assert result.changed and not result.identical
    assert 0.2 < result.fraction < 0.3


def test_small_change_below_threshold_is_neither() -> None:
    detector = ChangeDetector(0.05)
    detector.update(jpeg(canvas()))
    result = detector.update(jpeg(with_block(canvas(), 0.01)))
    assert not result.changed and not result.identical
    assert 0.0 < result.fraction < 0.05


def test_creeping_change_is_reported_once_it_adds_up() -> None:
    base = canvas()
    detector = ChangeDetector(0.05)
    detector.update(jpeg(base))
    reported: list[int] = []
    for step in range(1, 10):
        frame = with_block(base, 0.02 * step)  # each frame 2 % more than the one before
        if detector.update(jpeg(frame)).changed:
            reported.append(step)
    # Against the previous frame every step is ~2 %; against the last report it adds up.
    assert reported and reported[0] in (3, 4)


def test_size_change_is_a_full_change() -> None:
    detector = ChangeDetector(0.5)
    detector.update(jpeg(canvas(640, 480)))
    result = detector.update(jpeg(canvas(640, 960)))
    assert result.fraction == 1.0 and result.changed


def test_zero_threshold_reports_any_visible_change_only() -> None:
    detector = ChangeDetector(0.0)
    detector.update(jpeg(canvas()))
    assert not detector.update(jpeg(canvas())).changed
    assert detector.update(jpeg(with_block(canvas(), 0.01))).changed


def test_reset_starts_over() -> None:
    detector = ChangeDetector(0.01)
    detector.update(jpeg(canvas()))
    detector.reset()
    assert detector.update(jpeg(with_block(canvas(), 0.5))).first


def test_not_a_jpeg_is_a_value_error_and_keeps_history() -> None:
    detector = ChangeDetector(0.01)
    detector.update(jpeg(canvas()))
    for junk in (b"", b"not a jpeg", b"\xff\xd8\xff"):
        with pytest.raises(ValueError, match="not a decodable JPEG"):
            detector.update(junk)
    assert detector.update(jpeg(canvas())).identical


@pytest.mark.parametrize(("threshold", "delta"), [(-0.1, 24), (1.5, 24), (0.1, 0), (0.1, 300)])
def test_bad_parameters_are_refused(threshold: float, delta: int) -> None:
    with pytest.raises(ValueError):
        ChangeDetector(threshold, pixel_delta=delta)


def test_works_on_a_reduced_copy() -> None:
    detector = ChangeDetector(0.01, reduce=8)
    grey = detector.grey(jpeg(canvas(1280, 720)))
    assert grey.shape == (90, 160)
    assert ChangeDetector(0.01, reduce=4).grey(jpeg(canvas(1280, 720))).shape == (180, 320)


def test_changed_fraction_of_equal_arrays_is_zero() -> None:
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    b[:5] = 200
    assert changed_fraction(a, a) == 0.0
    assert changed_fraction(a, b) == 0.5
