#!/usr/bin/env python3
"""Motion detector CPU cost per frame (DESIGN §7): BGR images and JPEG bytes, 640x480 and 1280x720.

Synthetic frames: a static textured scene with per-frame Gaussian sensor noise (sigma 5) and a
solid block (~8 % of the frame) crossing it. Frames are built and JPEG-encoded before timing;
only ``MotionDetector.update`` is timed, with ``time.process_time`` (CPU of every thread of
this process, so OpenCV's worker threads count). For scale, the same table shows what a full
colour ``cv2.imdecode`` of each JPEG costs (what the detector avoids).

    python bench/motion.py [--frames 300] [--threads N] [--analysis-height 120]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from glimpser.agent.capture.motion import MotionDetector
from glimpser.shared.models import MotionSettings

Image = npt.NDArray[np.uint8]
SIZES = ((640, 480), (1280, 720))
FPS = 10  # the DESIGN §7 agent pipeline rate


def scene(width: int, height: int, rng: np.random.Generator) -> Image:
    """A static textured BGR scene."""
    coarse = rng.integers(30, 200, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC))


def frames(width: int, height: int, count: int) -> list[Image]:
    """``count`` noisy frames with a block crossing the scene (and wrapping around)."""
    rng = np.random.default_rng(0)
    base = scene(width, height, rng).astype(np.int16)
    noise = [rng.normal(0, 5, base.shape).astype(np.int16) for _ in range(16)]
    bw, bh = int(width * 0.28), int(height * 0.28)
    out = []
    for i in range(count):
        frame = base + noise[i % len(noise)]
        x = (i * width // 80) % (width - bw)
        frame[height // 3 : height // 3 + bh, x : x + bw] = 230
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def cpu_times(work: Callable[[Any], object], inputs: Sequence[Any]) -> list[float]:
    """CPU seconds of ``work(x)`` for each input."""
    times = []
    for item in inputs:
        start = time.process_time()
        work(item)
        times.append(time.process_time() - start)
    return times


def run_detector(
    settings: MotionSettings, inputs: Sequence[Any]
) -> tuple[list[float], int, tuple[int, int]]:
    """CPU seconds per frame, motion episodes started, and the analysis size."""
    detector = MotionDetector(settings)
    detector.update(inputs[0])  # seeds the background; not timed
    started = 0

    def update(frame: Any) -> None:
        nonlocal started
        started += detector.update(frame).started

    times = cpu_times(update, inputs[1:])
    return times, started, detector.analysis_size or (0, 0)


def summary(times: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p95 * 1e3


def main() -> None:
    """Run every case and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads")
    parser.add_argument("--analysis-height", type=int, default=120)
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    settings = MotionSettings(analysis_height=args.analysis_height)
    print(
        f"MotionDetector.update CPU per frame, {args.frames} frames, analysis_height "
        f"{settings.analysis_height}, OpenCV {cv2.__version__}, threads {cv2.getNumThreads()}"
    )
    print(f"{'input':<16}{'median ms':>10}{'p95 ms':>9}{'% core @10fps':>15}  events  analysed")
    for width, height in SIZES:
        images = frames(width, height, args.frames)
        jpegs = [
            cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for im in images
        ]
        for kind, inputs in (("bgr", images), ("jpeg", jpegs)):
            times, events, (w, h) = run_detector(settings, inputs)
            median, p95 = summary(times)
            label = f"{width}x{height} {kind}"
            print(
                f"{label:<16}{median:>10.3f}{p95:>9.3f}{median * FPS / 10:>15.2f}"
                f"  {events:>6}  {w}x{h}"
            )
        decode = cpu_times(
            lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), jpegs
        )
        median, p95 = summary(decode)
        kb = statistics.mean(len(b) for b in jpegs) / 1024
        label = f"  (full colour imdecode of a {kb:.0f} KB JPEG, for scale)"
        print(f"{'':<16}{median:>10.3f}{p95:>9.3f}{median * FPS / 10:>15.2f}{label}")


if __name__ == "__main__":
    main()
