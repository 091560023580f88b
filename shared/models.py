"""Pydantic models for every message that crosses a boundary (MQTT and HTTP).

All models forbid unknown fields so that a typo is an error, not a silently ignored key.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from glimpser.shared.ids import Id


class Model(BaseModel):
    """Base for contract models: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(UTC)


# --------------------------------------------------------------------------- templates


class TestSource(Model):
    """Synthetic test pattern: moving content with the time burned in."""

    kind: Literal["test"] = "test"
    pattern: Literal["bars", "motion", "visitor", "noise"] = Field(
        "bars",
        description="bars; motion: an object always crossing a static scene; visitor: an object "
        "that crosses for a few seconds every visit_every seconds; noise",
    )
    visit_every: float = Field(20.0, ge=2, le=3600, description="seconds between visitors")
    width: int = Field(640, ge=16, le=7680)
    height: int = Field(480, ge=16, le=4320)


class V4l2Source(Model):
    """A local USB/V4L2 camera, by device path or index."""

    kind: Literal["v4l2"] = "v4l2"
    device: str | int = "/dev/video0"


def _camera_url(url: str, schemes: tuple[str, ...]) -> str:
    """Check a camera URL: the scheme, a host, and no whitespace or control characters."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("the URL must not contain spaces or control characters")
    prefixes = tuple(s + "://" for s in schemes)
    if not url.startswith(prefixes):
        raise ValueError(f"the URL must start with {' or '.join(prefixes)}")
    if not urlsplit(url).hostname:
        raise ValueError("the URL has no host name")
    return url


class RtspSource(Model):
    """An RTSP IP camera."""

    kind: Literal["rtsp"] = "rtsp"
    url: Annotated[str, Field(max_length=2048)]
    transport: Literal["tcp", "udp"] = "tcp"

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _camera_url(url, ("rtsp", "rtsps"))


class HttpSource(Model):
    """An HTTP(S) camera: an MJPEG stream or a JPEG snapshot URL."""

    kind: Literal["http"] = "http"
    url: Annotated[str, Field(max_length=2048)]

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _camera_url(url, ("http", "https"))


class FileSource(Model):
    """A video file read frame by frame (looped by default)."""

    kind: Literal["file"] = "file"
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    loop: bool = True


class PicameraSource(Model):
    """A Raspberry Pi camera through picamera2."""

    kind: Literal["picamera"] = "picamera"
    camera_num: int = Field(0, ge=0, le=7)


class Cookie(Model):
    """A cookie set before a page loads."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]
    domain: str | None = None
    path: str = "/"


class BasicAuth(Model):
    """HTTP basic credentials for a page."""

    username: Annotated[str, Field(max_length=256)]
    password: Annotated[str, Field(max_length=256)]


class WebsiteSource(Model):
    """A web page screenshotted by a headless browser."""

    kind: Literal["website"] = "website"
    url: Annotated[str, Field(max_length=4096)]
    viewport_width: int = Field(1280, ge=200, le=7680)
    viewport_height: int = Field(720, ge=200, le=4320)
    device_scale: float = Field(1.0, ge=0.5, le=4.0)
    full_page: bool = False
    max_height: int = Field(8000, ge=200, le=30000, description="cap for full-page shots")
    wait_until: Literal["load", "domcontentloaded", "networkidle"] = "load"
    wait_for_selector: Annotated[str, Field(max_length=1000)] | None = None
    delay: float = Field(0.0, ge=0, le=60, description="extra seconds after loading")
    clip_selector: Annotated[str, Field(max_length=1000)] | None = Field(
        None, description="CSS selector, or XPath when it starts with / or xpath="
    )
    hide_selectors: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=50
    )
    remove_selectors: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=50
    )
    inject_css: Annotated[str, Field(max_length=100_000)] | None = None
    inject_js: Annotated[str, Field(max_length=100_000)] | None = None
    basic_auth: BasicAuth | None = None
    headers: dict[str, Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict)
    cookies: list[Cookie] = Field(default_factory=list, max_length=100)
    dark_mode: bool = False
    timeout: float = Field(30.0, ge=1, le=300, description="seconds per capture")
    change_threshold: float = Field(
        0.01, ge=0, le=1, description="changed fraction that emits page_changed"
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"only http and https URLs can be captured, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("the URL has no host name")
        return url

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name) or "\n" in value or "\r" in value:
                raise ValueError(f"invalid HTTP header {name!r}")
        return headers


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")

Source = Annotated[
    TestSource
    | V4l2Source
    | RtspSource
    | HttpSource
    | FileSource
    | PicameraSource
    | WebsiteSource,
    Field(discriminator="kind"),
]
SourceKind = Literal["test", "v4l2", "rtsp", "http", "file", "picamera", "website"]
SOURCE_KINDS: frozenset[str] = frozenset(get_args(SourceKind))


Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")]


class RetentionPolicy(Model):
    """Limits on kept captures; None means no limit of that kind."""

    max_age_days: float | None = Field(None, gt=0, le=36500)
    max_count: int | None = Field(None, ge=1, le=10_000_000)
    max_bytes: int | None = Field(None, ge=1024)


class CapturePolicy(Model):
    """When a stream's frames are kept as captures (history), and for how long."""

    interval: float | None = Field(
        None, ge=1, le=7 * 86400, description="save a capture every N seconds"
    )
    on_events: list[Literal["motion", "page_changed"]] = Field(
        default_factory=list, description="save a capture when one of these events fires"
    )
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)


Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class MotionSettings(Model):
    """Motion detection on a camera stream; runs on the agent at the capture rate."""

    enabled: bool = True
    analysis_height: int = Field(120, ge=60, le=480, description="rows of the grey copy")
    pixel_threshold: int = Field(25, ge=1, le=255, description="grey-level change that counts")
    min_area: float = Field(0.002, ge=0, le=1, description="smallest blob, fraction of frame")
    min_frames: int = Field(3, ge=1, le=100, description="consecutive frames before ON")
    off_delay: float = Field(5.0, ge=0, le=3600, description="seconds without motion before OFF")
    learning_rate: float = Field(0.05, gt=0, le=1, description="background running average")
    global_change: float = Field(
        0.6, gt=0, le=1, description="changed fraction treated as a lighting change"
    )
    masks: list[Annotated[list[Point], Field(min_length=3, max_length=64)]] = Field(
        default_factory=list, max_length=16, description="ignored polygons, 0..1 coordinates"
    )


class Template(Model):
    """A capture configuration. It becomes a stream only when an agent runs it."""

    id: Id
    name: Annotated[str, Field(min_length=1, max_length=100)]
    source: Source
    agent_id: Id | None = Field(None, description="the agent that runs it (hub-managed)")
    fps: float | None = Field(None, gt=0, le=60, description="capture rate in frames per second")
    interval: float | None = Field(
        None, ge=0.02, le=86400, description="seconds between captures (instead of fps)"
    )
    width: int | None = Field(None, ge=16, le=7680, description="resize to; None keeps native")
    height: int | None = Field(None, ge=16, le=4320)
    quality: int = Field(80, ge=1, le=100, description="JPEG quality when encoding")
    keepalive: float = Field(
        5.0, ge=0.5, le=3600, description="seconds between frames sent with no viewer"
    )
    enabled: bool = True
    capture: CapturePolicy = Field(default_factory=CapturePolicy)
    motion: MotionSettings | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    notes: str = Field("", max_length=4000)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # Names show up in file exports, logs and UIs: keep them to printable one-liners that
        # cannot pose as paths.
        if name != name.strip():
            raise ValueError("the name must not start or end with spaces")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError("the name must not contain control characters")
        if "/" in name or "\\" in name or ".." in name or name.startswith("."):
            raise ValueError("the name must not contain '/', '\\', '..' or start with '.'")
        return name

    @model_validator(mode="after")
    def _rate_and_size(self) -> Template:
        if self.fps is not None and self.interval is not None:
            raise ValueError("give either fps or interval, not both")
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        return self

    @property
    def period(self) -> float:
        """Seconds between captures (default 1 fps)."""
        if self.interval is not None:
            return self.interval
        return 1.0 / (self.fps or 1.0)


Desired = Literal["started", "stopped"]


class AgentConfig(Model):
    """What the hub assigns to one agent (retained on ``<agent>/config``).

    ``desired`` carries the durable start/stop choice per template; a template missing from it
    is started. The agent applies only the difference from what it runs.
    """

    revision: int = Field(ge=0)
    templates: list[Template] = Field(default_factory=list)
    desired: dict[Id, Desired] = Field(default_factory=dict)


class LocalTemplates(Model):
    """An agent's own YAML templates (retained on ``<agent>/templates``); read-only on the hub."""

    templates: list[Template] = Field(default_factory=list)


# --------------------------------------------------------------------------- streams


class StreamStatus(StrEnum):
    """Lifecycle of a running template."""

    STARTING = "starting"
    ACTIVE = "active"
    INACTIVE = "inactive"
    STOPPING = "stopping"
    ERROR = "error"


class StreamState(Model):
    """What an agent reports about one stream (retained on ``<agent>/<stream>/state``)."""

    stream_id: Id
    agent_id: Id
    template_id: Id
    name: str
    source: SourceKind
    status: StreamStatus
    desired: Literal["started", "stopped"] = "started"
    error: str | None = None
    fps: float = Field(0.0, ge=0, description="measured capture rate")
    configured_fps: float = Field(ge=0)
    width: int | None = None
    height: int | None = None
    last_frame_at: datetime | None = None
    started_at: datetime | None = None
    frames: int = Field(0, ge=0, description="frames captured since start")
    bytes: int = Field(0, ge=0, description="JPEG bytes captured since start")
    published: int = Field(0, ge=0, description="frames published over MQTT since start")
    demand: bool = False
    request_id: str | None = Field(None, max_length=128, description="last command answered")
    updated_at: datetime = Field(default_factory=utcnow)


class HostStats(Model):
    """Small host health figures."""

    cpu_percent: float | None = None
    memory_rss: int | None = None
    load1: float | None = None


class AgentState(Model):
    """What an agent reports about itself (retained on ``<agent>/state``)."""

    agent_id: Id
    version: str
    hostname: str
    started_at: datetime
    uptime: float = Field(ge=0)
    streams: list[Id] = Field(default_factory=list)
    queue_depth: int = Field(0, ge=0)
    rejected_messages: int = Field(0, ge=0, description="malformed commands/configs received")
    config_revision: int | None = None
    host: HostStats = Field(default_factory=HostStats)
    updated_at: datetime = Field(default_factory=utcnow)


def new_event_id() -> str:
    """A globally unique event id."""
    return uuid.uuid4().hex


class Event(Model):
    """Something that happened on a stream (``<agent>/<stream>/event``, QoS 1)."""

    id: Annotated[str, Field(min_length=8, max_length=64)] = Field(default_factory=new_event_id)
    agent_id: Id
    stream_id: Id
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
    at: datetime = Field(default_factory=utcnow)
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class Command(Model):
    """A command on ``<agent>/<stream>/set``."""

    action: Literal["start", "stop", "snapshot"]
    request_id: Annotated[str, Field(max_length=128)] | None = None


PLAIN_COMMANDS: dict[str, Literal["start", "stop", "snapshot"]] = {
    "ON": "start",
    "OFF": "stop",
    "PRESS": "snapshot",
}


class Demand(Model):
    """A viewer lease on ``<agent>/<stream>/demand``: send full rate for ``ttl`` seconds.

    The lease is relative (seconds) rather than an absolute expiry so that clock skew between
    hub and agent cannot make it expire early or live forever.
    """

    hub_id: Id
    ttl: float = Field(ge=0, le=300, description="0 releases this hub's lease at once")
    fps: float | None = Field(None, gt=0, le=60)


class SnoozeRequest(Model):
    """Hold alert notifications of one rule or one stream (``<prefix>/hub/snooze``)."""

    rule: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    stream: Annotated[str, Field(min_length=1, max_length=130)] | None = Field(
        None, description="stream id or agent.stream"
    )
    minutes: int = Field(ge=0, le=43200, description="0 ends the snooze (at most 30 days)")

    @model_validator(mode="after")
    def _one_target(self) -> SnoozeRequest:
        if (self.rule is None) == (self.stream is None):
            raise ValueError("give exactly one of rule or stream")
        return self


class FrameMeta(Model):
    """Metadata carried inside each frame's JPEG COM segment."""

    seq: int = Field(ge=0)
    captured_at: float = Field(description="UNIX time of capture")
    capture_id: Annotated[str, Field(pattern=r"^[a-z0-9]{8,64}$")] | None = Field(
        None, description="set on the capture topic: globally unique, the hub dedupes on it"
    )
    reason: Literal["interval", "event", "manual"] | None = None
    request_id: Annotated[str, Field(max_length=128)] | None = None


# --------------------------------------------------------------------------- HTTP


class StreamInfo(Model):
    """One stream as the hub API reports it (the dashboard contract)."""

    id: str
    name: str
    source: str
    status: StreamStatus
    resolution: str | None
    fps: float
    last_frame_at: datetime | None
    template_id: str
    agent_id: str
    agent_online: bool
    configured_fps: float
    error: str | None = None
    desired: Literal["started", "stopped"] = "started"
    frames: int = 0
    bytes: int = 0
    viewers: int = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
    motion: bool | None = Field(None, description="motion detected now; None: not detecting")


class ErrorBody(Model):
    """JSON error body of every failed HTTP request."""

    error: str
    status: int
    detail: Any = None
