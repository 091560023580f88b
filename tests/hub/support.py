"""Builders and fakes for the hub tests (fakes only at the hub's own seams)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from glimpser.hub.config import HubSettings
from glimpser.shared.codec import encode_frame
from glimpser.shared.errors import TransportError
from glimpser.shared.models import Command, Demand, FrameMeta, StreamState, StreamStatus


def jpeg(width: int = 64, height: int = 48, shade: int = 0) -> bytes:
    """A real JPEG made by OpenCV."""
    image = np.full((height, width, 3), shade, np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf.tobytes())


def frame(width: int = 64, height: int = 48, seq: int = 1) -> bytes:
    """A frame payload as agents publish it: JPEG with metadata in a COM segment."""
    return encode_frame(jpeg(width, height, seq % 256), FrameMeta(seq=seq, captured_at=time.time()))


def state(agent: str = "a1", stream: str = "cam", **kw: Any) -> StreamState:
    """A plausible StreamState."""
    base: dict[str, Any] = {
        "stream_id": stream,
        "agent_id": agent,
        "template_id": stream,
        "name": stream.title(),
        "source": "test",
        "status": StreamStatus.ACTIVE,
        "fps": 4.5,
        "configured_fps": 5.0,
    }
    base.update(kw)
    return StreamState.model_validate(base)


def state_bytes(agent: str = "a1", stream: str = "cam", **kw: Any) -> bytes:
    """A StreamState as the JSON payload on the wire."""
    return state(agent, stream, **kw).model_dump_json().encode()


def settings(**kw: Any) -> HubSettings:
    """Test settings: short leases and timeouts."""
    base: dict[str, Any] = {"lease_ttl": 0.3, "command_timeout": 0.5}
    base.update(kw)
    return HubSettings.model_validate(base)


@dataclass
class FakeLink:
    """Stands in for the MQTT connection; records what would have been published."""

    connected: bool = True
    commands: list[tuple[str, str, Command]] = field(default_factory=list)
    demands: list[tuple[str, str, Demand]] = field(default_factory=list)
    retained: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish_command(self, agent: str, stream: str, command: Command) -> None:
        if not self.connected:
            raise TransportError("not connected")
        self.commands.append((agent, stream, command))

    async def publish_demand(self, agent: str, stream: str, demand: Demand) -> None:
        if not self.connected:
            raise TransportError("not connected")
        self.demands.append((agent, stream, demand))

    async def publish_retained(self, topic: str, payload: bytes) -> None:
        if not self.connected:
            raise TransportError("not connected")
        self.retained.append((topic, payload))


def capture(
    capture_id: str,
    *,
    captured_at: float | None = None,
    request_id: str | None = None,
    reason: str = "interval",
    shade: int = 10,
) -> bytes:
    """A capture payload as agents publish it on ``<agent>/<stream>/capture``."""
    meta = FrameMeta.model_validate(
        {
            "seq": 1,
            "captured_at": time.time() if captured_at is None else captured_at,
            "capture_id": capture_id,
            "reason": reason,
            "request_id": request_id,
        }
    )
    return encode_frame(jpeg(32, 24, shade), meta)


def template_body(tid: str | None = None, **kw: Any) -> dict[str, Any]:
    """A JSON template body for the API (a test pattern)."""
    body: dict[str, Any] = {"name": (tid or "cam").title(), "source": {"kind": "test"}}
    if tid is not None:
        body["id"] = tid
    body.update(kw)
    return body
