"""Raspberry Pi camera through picamera2, imported lazily so other machines never need it."""

from __future__ import annotations

from typing import Any

from glimpser.agent.sources.base import CapturedFrame
from glimpser.shared.errors import SourceError
from glimpser.shared.models import PicameraSource as PicameraSpec

MISSING = (
    "picamera2 is not installed: on Raspberry Pi OS `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages"
)
DEFAULT_SIZE = (1280, 720)


class PicameraSource:
    """Frames from a Pi camera as BGR arrays (picamera2's ``RGB888`` is BGR in memory)."""

    def __init__(self, spec: PicameraSpec, size: tuple[int, int] | None = None) -> None:
        self._spec = spec
        self._size = size or DEFAULT_SIZE
        self._camera: Any = None

    @property
    def name(self) -> str:
        """E.g. ``Pi camera 0``."""
        return f"Pi camera {self._spec.camera_num}"

    def open(self) -> None:
        """Import picamera2, configure video capture at the asked size and start it."""
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise SourceError(f"{self.name}: {MISSING}") from err
        try:
            camera = Picamera2(self._spec.camera_num)
            config = camera.create_video_configuration(
                main={"size": self._size, "format": "RGB888"}
            )
            camera.configure(config)
            camera.start()
        except Exception as err:  # picamera2/libcamera raise many types
            raise SourceError(f"cannot open {self.name}: {err}") from err
        self._camera = camera

    def read(self) -> CapturedFrame:
        """Capture the latest frame from the main stream."""
        if self._camera is None:
            raise SourceError(f"{self.name} is not open")
        try:
            image = self._camera.capture_array("main")
        except Exception as err:  # see open()
            raise SourceError(f"cannot read {self.name}: {err}") from err
        return CapturedFrame.from_image(image[:, :, :3])

    def close(self) -> None:
        """Stop and release the camera."""
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()
