"""MotionDetector on synthetic frames: noise, lighting jumps, moving objects, masks, JPEG input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from glimpser.agent.capture import motion as motion_module
from glimpser.agent.capture.motion import MotionDetector, MotionResult, jpeg_size, working_size
from glimpser.shared.models import MotionSettings

Image = npt.NDArray[np.uint8]
STEP = 0.125  # seconds per frame; a power of two keeps clock sums exact
OFF_DELAY = 1.0  # = 8 frames


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scene(width: int, height: int, seed: int = 7) -> Image:
    """A static textured BGR scene with grey levels kept in 40..180 (room for +60)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mixed = 0.7 * texture.astype(np.float32) + 0.3 * cv2.GaussianBlur(fine, (3, 3), 0)
    out = 40 + mixed * (140 / 255)
    for i in range(0, width, width // 6):  # some hard edges, like furniture
        cv2.line(out, (i, 0), (i + width // 8, height - 1), (170, 60, 120), 2)
    return np.clip(out, 0, 255).astype(np.uint8)


def noisy(image: Image, rng: np.random.Generator, sigma: float = 5.0, offset: int = 0) -> Image:
    """``image`` plus per-frame Gaussian sensor noise (and an optional brightness offset)."""
    noise = rng.normal(offset, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def object_rect(width: int, height: int, i: int, x0: float = 0.06) -> tuple[int, int, int, int]:
    """A solid block of about 8 % of the frame, moving right by 1.25 % of the width per frame."""
    w, h = int(width * 0.28), int(height * 0.28)
    return int(width * x0) + int(width * 0.0125 * i), int(height * 0.33), w, h


def with_object(image: Image, rect: tuple[int, int, int, int]) -> Image:
    """``image`` with a bright block drawn at ``rect`` (x, y, w, h)."""
    x, y, w, h = rect
    out = image.copy()
    out[y : y + h, x : x + w] = (235, 230, 225)
    return out


def run(detector: MotionDetector, clock: FakeClock, frames: Iterator[Any]) -> list[MotionResult]:
    """Feed every frame, advancing the clock by STEP after each."""
    results = []
    for frame in frames:
        results.append(detector.update(frame))
        clock.now += STEP
    return results


def make(**settings: Any) -> tuple[MotionDetector, FakeClock]:
    """A detector with a fake clock and the given MotionSettings overrides."""
    clock = FakeClock()
    settings.setdefault("off_delay", OFF_DELAY)
    return MotionDetector(MotionSettings(**settings), clock=clock), clock


def moving_object_frames(
    width: int,
    height: int,
    *,
    enter: int = 6,
    moving: int = 24,
    total: int = 60,
    then: str = "leaves",
    encode: Callable[[Image], Any] = lambda image: image,
) -> Iterator[Any]:
    """Static noisy scene; an object appears at ``enter``, moves, then leaves or stops."""
    base, rng = scene(width, height), np.random.default_rng(1)
    for i in range(total):
        frame = base
        if enter <= i < enter + moving:
            frame = with_object(base, object_rect(width, height, i - enter))
        elif i >= enter + moving and then == "stops":
            frame = with_object(base, object_rect(width, height, moving - 1))
        yield encode(noisy(frame, rng))


def jpeg(image: Image) -> bytes:
    """``image`` as JPEG bytes at quality 80, as a camera would send it."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return data.tobytes()


def decisions(results: list[MotionResult]) -> list[tuple[bool, bool, bool, bool]]:
    """The per-frame decisions (motion, started, ended, recalibrated)."""
    return [(r.motion, r.started, r.ended, r.recalibrated) for r in results]


def test_static_noisy_scene_never_reports_motion() -> None:
    detector, clock = make()
    base, rng = scene(320, 240), np.random.default_rng(3)
    results = run(detector, clock, (noisy(base, rng, sigma=6) for _ in range(100)))
    assert not any(r.motion or r.started or r.boxes or r.recalibrated for r in results)
    assert max(r.fraction for r in results) < 0.001


def test_brightness_jump_recalibrates_once_without_motion() -> None:
    detector, clock = make()
    base, rng = scene(320, 240), np.random.default_rng(4)
    frames = (noisy(base, rng, offset=60 if i >= 20 else 0) for i in range(60))
    results = run(detector, clock, frames)
    assert [i for i, r in enumerate(results) if r.recalibrated] == [20]
    assert results[20].fraction > 0.6
    assert not any(r.motion or r.started or r.ended or r.boxes for r in results)


@pytest.mark.parametrize("min_frames", [1, 3, 5])
@pytest.mark.parametrize("then", ["leaves", "stops"])
def test_moving_object_turns_on_after_min_frames_and_off_after_off_delay(
    min_frames: int, then: str
) -> None:
    detector, clock = make(min_frames=min_frames)
    results = run(detector, clock, moving_object_frames(320, 240, then=then, total=90))
    hits = [bool(r.boxes) for r in results]
    first = hits.index(True)
    assert first == 6  # the object's first frame
    assert all(hits[6 : 6 + 24])  # every frame it moves
    assert 0.06 < results[first].fraction < 0.14  # ~8 % of the frame (plus blur and dilation)

    on = [i for i, r in enumerate(results) if r.started]
    assert on == [first + min_frames - 1]
    assert [r.motion for r in results[: on[0]]] == [False] * on[0]

    ended = [i for i, r in enumerate(results) if r.ended]
    assert len(ended) == 1, "a stopped object must be absorbed into the background"
    end = ended[0]
    last_hit = max(i for i in range(end) if hits[i])
    assert end - last_hit == OFF_DELAY / STEP  # off exactly off_delay after the last motion
    assert all(r.motion for r in results[on[0] : end])
    assert not any(r.motion for r in results[end:])
    assert results[end].duration == pytest.approx((end - on[0]) * STEP)
    assert results[end].peak_fraction == max(r.fraction for r in results[: end + 1])
    assert not any(r.recalibrated for r in results)


def test_boxes_are_in_original_frame_pixels() -> None:
    detector, clock = make()
    results = run(detector, clock, moving_object_frames(640, 480, total=7))
    x, y, w, h = object_rect(640, 480, 0)
    (bx, by, bw, bh), *_ = results[6].boxes
    assert bx <= x and by <= y and bx + bw >= x + w and by + bh >= y + h
    assert (w * h) / (bw * bh) > 0.7  # blur and dilation widen it by a few pixels only


LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
RIGHT_HALF = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]


@pytest.mark.parametrize(("mask", "detected"), [(LEFT_HALF, False), (RIGHT_HALF, True)])
def test_motion_inside_a_mask_is_ignored(mask: list[tuple[float, float]], detected: bool) -> None:
    # The object moves within the left half only (x from 6 % to 44 % of the width).
    detector, clock = make(masks=[mask])
    results = run(detector, clock, moving_object_frames(320, 240, moving=8, total=30))
    assert any(r.started for r in results) is detected
    assert any(r.boxes for r in results) is detected
    if not detected:
        assert max(r.fraction for r in results) == 0.0


@pytest.mark.parametrize(("side", "detected"), [(6, False), (24, True)])
def test_blobs_below_min_area_are_ignored(side: int, detected: bool) -> None:
    # Four flickering squares; 6 px on a 320x240 frame is 0.05 % each, well under 0.2 %.
    detector, clock = make(min_area=0.002)
    base, rng = scene(320, 240), np.random.default_rng(5)
    frames = []
    for i in range(40):
        frame = base.copy()
        if i >= 5 and i % 2:
            for x in (40, 120, 200, 270):
                frame[100 : 100 + side, x : x + side] = 250
        frames.append(noisy(frame, rng))
    results = run(detector, clock, iter(frames))
    assert any(r.fraction > 0 for r in results)  # they are seen...
    assert any(r.motion for r in results) is detected  # ...and only big ones count


def test_jpeg_input_makes_the_same_decisions_as_images() -> None:
    images = list(moving_object_frames(640, 480, then="leaves", total=72))
    image_detector, image_clock = make()
    jpeg_detector, jpeg_clock = make()
    from_images = run(image_detector, image_clock, iter(images))
    from_jpegs = run(jpeg_detector, jpeg_clock, (jpeg(image) for image in images))
    assert decisions(from_jpegs) == decisions(from_images)
    assert sum(r.started for r in from_jpegs) == 1 and sum(r.ended for r in from_jpegs) == 1
    assert jpeg_detector.analysis_size == image_detector.analysis_size == (160, 120)
    assert [bool(r.boxes) for r in from_jpegs] == [bool(r.boxes) for r in from_images]


def _spy(monkeypatch: pytest.MonkeyPatch, name: str, shapes: list[tuple[int, ...]]) -> None:
    """Record the shape of the first argument of every ``cv2.<name>`` call."""
    real = getattr(cv2, name)

    def spy(image: Any, *args: Any, **kwargs: Any) -> Any:
        shapes.append(tuple(np.asarray(image).shape))
        return real(image, *args, **kwargs)

    monkeypatch.setattr(cv2, name, spy)  # the module object motion.py calls into


@pytest.mark.parametrize("as_jpeg", [False, True])
def test_analysis_runs_on_a_small_grey_copy(monkeypatch: pytest.MonkeyPatch, as_jpeg: bool) -> None:
    base, rng = scene(1280, 720), np.random.default_rng(6)
    frames = [noisy(base, rng), noisy(with_object(base, (300, 200, 300, 200)), rng)]
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for name in ("GaussianBlur", "absdiff", "threshold", "dilate", "findContours", "cvtColor"):
        _spy(monkeypatch, name, shapes.setdefault(name, []))
    flags: list[int] = []
    real_imdecode = cv2.imdecode

    def imdecode(buf: Any, flag: int) -> Any:
        flags.append(flag)
        return real_imdecode(buf, flag)

    monkeypatch.setattr(cv2, "imdecode", imdecode)
    detector, clock = make(analysis_height=120, min_frames=1)
    results = run(detector, clock, (jpeg(f) if as_jpeg else f for f in frames))

    assert detector.analysis_size == working_size(1280, 720, 120) == (213, 120)
    assert results[1].boxes  # the work happened, and found the block
    for name in ("GaussianBlur", "absdiff", "threshold", "dilate", "findContours"):
        assert shapes[name] and set(shapes[name]) == {(120, 213)}, name
    if as_jpeg:
        assert flags == [cv2.IMREAD_REDUCED_GRAYSCALE_4] * 2  # 720 / 4 = 180 rows >= 120
        assert shapes["cvtColor"] == []
    else:
        assert set(shapes["cvtColor"]) == {(120, 213, 3)}  # grey conversion after shrinking


@pytest.mark.parametrize(
    ("size", "rows", "flag"),
    [
        ((1920, 1080), 120, cv2.IMREAD_REDUCED_GRAYSCALE_8),
        ((640, 480), 120, cv2.IMREAD_REDUCED_GRAYSCALE_4),
        ((640, 480), 200, cv2.IMREAD_REDUCED_GRAYSCALE_2),
        ((320, 240), 200, cv2.IMREAD_GRAYSCALE),
    ],
)
def test_jpeg_reduction_is_the_closest_at_or_above_analysis_height(
    size: tuple[int, int], rows: int, flag: int
) -> None:
    assert motion_module._reduction_flag(size[1], rows) == flag


def test_jpeg_size_reads_the_header() -> None:
    image = np.zeros((123, 457, 3), np.uint8)
    assert jpeg_size(jpeg(image)) == (457, 123)
    ok, progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and jpeg_size(progressive.tobytes()) == (457, 123)
    assert jpeg_size(b"not a jpeg") is None
    assert jpeg_size(b"\xff\xd8\xff") is None


def test_undecodable_jpeg_raises_value_error() -> None:
    detector, _ = make()
    with pytest.raises(ValueError, match="JPEG"):
        detector.update(b"\xff\xd8garbage")


def test_smaller_frames_than_analysis_height_are_not_upscaled() -> None:
    detector, clock = make(analysis_height=240)
    run(detector, clock, iter([scene(160, 120)]))
    assert detector.analysis_size == (160, 120)


def test_reconfigure_applies_new_masks_without_losing_state() -> None:
    detector, clock = make()
    run(detector, clock, moving_object_frames(320, 240, moving=40, total=14))
    assert detector.motion
    detector.reconfigure(MotionSettings(off_delay=OFF_DELAY, masks=[LEFT_HALF]))
    results = run(detector, clock, moving_object_frames(320, 240, moving=8, total=30))
    assert detector.motion is False and any(r.ended for r in results)
    assert not any(r.boxes for r in results)


def test_disabled_detector_reports_nothing() -> None:
    detector, clock = make(enabled=False)
    results = run(detector, clock, moving_object_frames(320, 240, total=20))
    assert all(r == MotionResult() for r in results)
