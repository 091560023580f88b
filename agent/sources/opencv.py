"""V4L2 devices, RTSP/HTTP URLs and video files through ``cv2.VideoCapture``."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, TypeAlias

import cv2

from glimpser.agent.sources.base import CapturedFrame, Image, redact_url
from glimpser.shared.errors import SourceError
from glimpser.shared.models import FileSource, HttpSource, RtspSource, V4l2Source

log = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
READ_TIMEOUT = 10.0
_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# OpenCV only takes FFmpeg options (rtsp_transport) from the process environment, read when a
# capture opens: serialise opens that set it so two cameras cannot see each other's options.
_env_lock = threading.Lock()

OpenCvSpec: TypeAlias = V4l2Source | RtspSource | HttpSource | FileSource


class OpenCvSource:
    """Live sources get a grab thread keeping only the latest frame; files read on demand."""

    def __init__(self, spec: OpenCvSpec, read_timeout: float = READ_TIMEOUT) -> None:
        self._spec = spec
        self._read_timeout = read_timeout
        self._cap: Any = None
        self._grabber: _Grabber | None = None

    @property
    def name(self) -> str:
        """Where frames come from, with any URL password masked."""
        spec = self._spec
        if isinstance(spec, V4l2Source):
            return f"V4L2 device {spec.device}"
        if isinstance(spec, FileSource):
            return f"video file {spec.path}"
        return f"{spec.kind.upper()} camera {redact_url(spec.url)}"

    @property
    def live(self) -> bool:
        """True for cameras (frames keep coming whether read or not), False for files."""
        return not isinstance(self._spec, FileSource)

    def open(self) -> None:
        """Open the capture; raise SourceError naming the source when it cannot."""
        self.close()
        cap = self._open_capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.name}")
        if self.live:
            self._grabber = _Grabber(cap, self.name)
            self._grabber.start()
        else:
            self._cap = cap

    def read(self) -> CapturedFrame:
        """The latest frame (live) or the next frame (file, looping when asked)."""
        if self._grabber is not None:
            return CapturedFrame.from_image(self._grabber.latest(self._read_timeout))
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        return CapturedFrame.from_image(self._read_file())

    def close(self) -> None:
        """Stop the grab thread and release the capture."""
        grabber, self._grabber = self._grabber, None
        if grabber is not None:
            grabber.stop(self._read_timeout)
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _read_file(self) -> Image:
        image: Image | None
        ok, image = self._cap.read()
        if not ok and isinstance(self._spec, FileSource) and self._spec.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceError(f"no more frames in {self.name} (end of file or unreadable)")
        return image

    def _open_capture(self) -> Any:
        spec = self._spec
        if isinstance(spec, V4l2Source):
            return cv2.VideoCapture(spec.device, cv2.CAP_V4L2)
        if isinstance(spec, FileSource):
            if not os.path.exists(spec.path):
                raise SourceError(f"cannot open {self.name}: no such file")
            return cv2.VideoCapture(spec.path)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(OPEN_TIMEOUT * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self._read_timeout * 1000),
        ]
        if isinstance(spec, RtspSource):
            with _env_lock:
                previous = os.environ.get(_FFMPEG_OPTIONS)
                os.environ[_FFMPEG_OPTIONS] = f"rtsp_transport;{spec.transport}"
                try:
                    return cv2.VideoCapture(spec.url, cv2.CAP_FFMPEG, params)
                finally:
                    _restore_env(previous)
        return cv2.VideoCapture(spec.url, cv2.CAP_FFMPEG, params)


def _restore_env(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(_FFMPEG_OPTIONS, None)
    else:
        os.environ[_FFMPEG_OPTIONS] = previous


class _Grabber:
    """Reads a live capture as fast as it delivers, keeping only the newest frame.

    Live cameras buffer frames internally: reading them slower than they arrive would
    serve ever older frames, so this thread drains them and the scheduler takes the latest.
    """

    def __init__(self, cap: Any, name: str) -> None:
        self._cap = cap
        self._name = name
        self._cond = threading.Condition()
        self._image: Image | None = None
        self._seq = 0
        self._taken = 0
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"grab {name}", daemon=True)

    def start(self) -> None:
        """Start grabbing."""
        self._thread.start()

    def latest(self, timeout: float) -> Image:
        """A frame newer than the last one returned; SourceError on failure or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq == self._taken and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SourceError(f"no frame from {self._name} for {timeout:g} s")
                self._cond.wait(remaining)
            if self._seq == self._taken:
                raise SourceError(self._error or f"{self._name} stopped")
            assert self._image is not None
            self._taken = self._seq
            return self._image

    def stop(self, timeout: float) -> None:
        """Ask the thread to stop and wait for it (bounded: a stuck read is abandoned)."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: capture thread did not stop within %g s", self._name, timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                with self._cond:
                    if not ok or image is None:
                        self._error = f"lost {self._name}: no frame could be read"
                        self._cond.notify_all()
                        return
                    self._image = image
                    self._seq += 1
                    self._cond.notify_all()
        finally:
            # The capture is released by the thread that reads it: releasing it from another
            # thread during a blocking read crashes some FFmpeg/V4L2 backends.
            self._cap.release()
