"""Registry: rebuilt from retained state, offline agents, id lookup."""

from __future__ import annotations

import pytest

from glimpser.hub.ingest.router import Router
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.store.registry import AmbiguousIdError, Registry
from glimpser.shared.errors import InvalidIdError, NotFoundError
from glimpser.shared.models import StreamStatus
from glimpser.shared.topics import Topics
from tests.hub.support import frame, state, state_bytes


def _rebuilt(retained: dict[str, bytes]) -> Registry:
    registry = Registry()
    router = Router(Topics(), registry, HubMetrics(), lambda key, data: None)
    for topic, payload in retained.items():
        router.route(topic, payload)
    return registry


def test_rebuilds_from_retained_messages() -> None:
    registry = _rebuilt(
        {
            "glimpser/a1/available": b"online",
            "glimpser/a1/cam/state": state_bytes("a1", "cam", width=1280, height=720),
            "glimpser/a2/available": b"online",
            "glimpser/a2/door/state": state_bytes("a2", "door", status="error", error="no camera"),
        }
    )
    assert registry.stream_keys() == [("a1", "cam"), ("a2", "door")]
    cam = registry.stream_info(("a1", "cam"))
    assert (cam.id, cam.status, cam.resolution, cam.fps) == ("cam", "active", "1280x720", 4.5)
    assert cam.agent_online and cam.error is None
    door = registry.stream_info(("a2", "door"))
    assert (door.status, door.error) == (StreamStatus.ERROR, "no camera")


def test_resolution_comes_from_the_latest_frame() -> None:
    registry = _rebuilt(
        {
            "glimpser/a1/available": b"online",
            "glimpser/a1/cam/state": state_bytes(width=1280, height=720),
            "glimpser/a1/cam/frame": frame(320, 240),
        }
    )
    assert registry.stream_info(("a1", "cam")).resolution == "320x240"


def test_offline_agent_marks_its_streams_inactive() -> None:
    registry = _rebuilt(
        {
            "glimpser/a1/cam/state": state_bytes(),
            "glimpser/a1/available": b"offline",
        }
    )
    info = registry.stream_info(("a1", "cam"))
    assert info.status == StreamStatus.INACTIVE
    assert info.error == "agent a1 is offline"
    assert not info.agent_online
    assert info.fps == 0.0
    assert registry.agents_online() == 0


def test_agent_never_seen_available_counts_as_offline() -> None:
    registry = Registry()
    registry.set_stream_state(state())
    assert not registry.stream_info(("a1", "cam")).agent_online


def test_lookup_bare_qualified_missing_invalid_ambiguous() -> None:
    registry = Registry()
    for agent, stream in (("a1", "cam"), ("a2", "cam"), ("a2", "door")):
        registry.set_stream_state(state(agent, stream))
    assert registry.resolve("door") == ("a2", "door")
    assert registry.resolve("a1.cam") == ("a1", "cam")
    assert registry.public_id(("a1", "cam")) == "a1.cam"
    assert registry.public_id(("a2", "door")) == "door"
    with pytest.raises(AmbiguousIdError, match=r"a1\.cam, a2\.cam"):
        registry.resolve("cam")
    with pytest.raises(NotFoundError, match="nope"):
        registry.resolve("nope")
    with pytest.raises(NotFoundError, match=r"a3\.cam"):
        registry.resolve("a3.cam")
    for bad in ("Cam", "a1.", ".cam", "a1.cam.x", "../etc", ""):
        with pytest.raises(InvalidIdError):
            registry.resolve(bad)


async def test_reply_waiter_resolves_on_matching_request_id() -> None:
    registry = Registry()
    with registry.replies.expect(("a1", "cam"), "r1") as answer:
        registry.set_stream_state(state(request_id="other"))
        assert not answer.done()
        registry.set_stream_state(state(request_id="r1", status="inactive"))
        assert (await answer).status == StreamStatus.INACTIVE
    assert len(registry.replies) == 0
