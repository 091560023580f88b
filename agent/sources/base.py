"""The Source protocol every capture source implements, and the factory that picks one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from glimpser.shared.errors import SourceError
from glimpser.shared.models import Template

if TYPE_CHECKING:
    from glimpser.agent.sources.browser import BrowserManager

Image = npt.NDArray[np.uint8]
"""A BGR image as OpenCV uses it: shape (height, width, 3), dtype uint8."""


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One frame from a source: a BGR image, or JPEG bytes the source already encoded."""

    width: int
    height: int
    image: Image | None = None
    jpeg: bytes | None = None

    def __post_init__(self) -> None:
        if (self.image is None) == (self.jpeg is None):
            raise ValueError("a CapturedFrame holds exactly one of image or jpeg")

    @classmethod
    def from_image(cls, image: Image) -> CapturedFrame:
        """Wrap a BGR image, taking its size from the array."""
        height, width = image.shape[:2]
        return cls(width=int(width), height=int(height), image=image)


class Source(Protocol):
    """A blocking frame source; the runner calls it from its own worker thread only."""

    @property
    def name(self) -> str:
        """Human description for messages and logs (never contains a password)."""
        ...

    def open(self) -> None:
        """Start the device or connection; raise SourceError when it cannot."""
        ...

    def read(self) -> CapturedFrame:
        """Return the next (latest) frame; raise SourceError when none can be read."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice or after a failed open."""
        ...


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` so it can be logged and published."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def build_source(template: Template, browsers: BrowserManager | None = None) -> Source:
    """The source that executes ``template``; nothing is opened yet.

    Website templates need the agent's shared browser and must be built on its event loop
    (the runner does both): the page is driven there while the worker thread waits.
    """
    # Imports are local so that e.g. a picamera template never imports OpenCV capture code.
    spec = template.source
    if spec.kind == "test":
        from glimpser.agent.sources.synthetic import SyntheticSource

        return SyntheticSource(spec)
    if spec.kind == "picamera":
        from glimpser.agent.sources.picamera import PicameraSource

        size = (template.width, template.height) if template.width and template.height else None
        return PicameraSource(spec, size)
    if spec.kind == "website":
        if browsers is None:
            raise SourceError(f"template {template.id!r}: website capture needs the agent browser")
        from glimpser.agent.sources.web import PageSource

        return PageSource(template, browsers, asyncio.get_running_loop())
    if spec.kind == "http":
        # The camera's own JPEGs, passed through undecoded (DESIGN §7).
        from glimpser.agent.sources.mjpeg import HttpJpegSource

        return HttpJpegSource(spec)
    from glimpser.agent.sources.opencv import OpenCvSource

    return OpenCvSource(spec)
