"""OpenCV sources against real inputs: a video file and an HTTP MJPEG camera served here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest

from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.sources.opencv import OpenCvSource
from glimpser.shared.backoff import Backoff
from glimpser.shared.errors import SourceError
from glimpser.shared.models import FileSource, HttpSource, StreamStatus, Template
from tests.agent.conftest import FakePublisher
from tests.cameras import camera
from tests.helpers import free_port, wait_for


def _write_video(path: Path, frames: int = 8, size: tuple[int, int] = (160, 120)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((size[1], size[0], 3), i * 20, np.uint8)
        writer.write(image)
    writer.release()


def test_file_reads_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    _write_video(path)
    source = OpenCvSource(FileSource(path=str(path), loop=True))
    source.open()
    try:
        frames = [source.read() for _ in range(20)]  # more than the file holds
    finally:
        source.close()
    assert all((f.width, f.height) == (160, 120) for f in frames)
    assert frames[0].image is not None and frames[1].image is not None
    assert not np.array_equal(frames[0].image, frames[1].image)


def test_file_without_loop_ends_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    _write_video(path, frames=3)
    source = OpenCvSource(FileSource(path=str(path), loop=False))
    source.open()
    for _ in range(3):
        source.read()
    with pytest.raises(SourceError, match=r"no more frames in video file .*clip\.avi"):
        source.read()
    source.close()


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    source = OpenCvSource(FileSource(path=str(tmp_path / "gone.avi")))
    with pytest.raises(SourceError, match=r"cannot open video file .*gone\.avi"):
        source.open()


async def test_http_mjpeg_source_reads_latest_frames() -> None:
    port = free_port()
    async with camera(port):
        source = OpenCvSource(HttpSource(url=f"http://127.0.0.1:{port}/video.mjpg"))
        await asyncio.to_thread(source.open)
        try:
            frames = [await asyncio.to_thread(source.read) for _ in range(3)]
        finally:
            await asyncio.to_thread(source.close)
    assert all((f.width, f.height) == (320, 240) for f in frames)


async def test_camera_loss_is_an_error_and_recovery_is_active(publisher: FakePublisher) -> None:
    port = free_port()
    url = f"http://viewer:s3cret@127.0.0.1:{port}/video.mjpg"
    template = Template.model_validate(
        {"id": "ipcam", "name": "IP cam", "source": {"kind": "http", "url": url}, "fps": 10}
    )
    runner = StreamRunner(
        template,
        "edge",
        publisher,
        # HTTP templates normally get the pass-through source (test_mjpeg.py): test OpenCV's.
        source_factory=lambda t: OpenCvSource(cast(HttpSource, t.source)),
        backoff=Backoff(base=0.1, cap=0.5),
    )
    async with runner:
        # No camera yet: a readable error naming the source, password masked.
        await wait_for(lambda: publisher.status_is(StreamStatus.ERROR), timeout=15)
        error = publisher.last.error or ""
        assert "127.0.0.1" in error and "s3cret" not in error, error

        async with camera(port):
            await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
            assert (publisher.last.width, publisher.last.height) == (320, 240)

        await wait_for(lambda: publisher.status_is(StreamStatus.ERROR), timeout=20)
        assert publisher.last.error and "s3cret" not in publisher.last.error

        async with camera(port):  # same port, camera back
            await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
    assert publisher.status_is(StreamStatus.INACTIVE)
