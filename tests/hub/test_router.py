"""Router: every message either lands in the registry or is rejected, counted and survived."""

from __future__ import annotations

import pytest

from glimpser.hub.ingest.router import Router
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.replies import StreamKey
from glimpser.shared.models import Event
from glimpser.shared.topics import Topics
from tests.hub.support import frame, jpeg, state_bytes


class Env:
    def __init__(self) -> None:
        self.registry = Registry()
        self.metrics = HubMetrics()
        self.relayed: list[tuple[StreamKey, bytes]] = []
        self.router = Router(
            Topics("glimpser"),
            self.registry,
            self.metrics,
            lambda key, data: self.relayed.append((key, data)),
            max_frame_bytes=50_000,
        )

    def send(self, topic: str, payload: bytes) -> None:
        self.router.route(topic, payload)


@pytest.fixture
def env() -> Env:
    e = Env()
    e.send("glimpser/a1/available", b"online")
    e.send("glimpser/a1/cam/state", state_bytes())
    return e


def test_valid_state_and_frame_are_applied(env: Env) -> None:
    payload = frame(320, 240)
    env.send("glimpser/a1/cam/frame", payload)
    assert env.registry.stream_keys() == [("a1", "cam")]
    latest = env.registry.latest_frame(("a1", "cam"))
    assert latest is not None and (latest.width, latest.height) == (320, 240)
    assert env.relayed == [(("a1", "cam"), payload)]
    assert env.metrics.received == {"agent_available": 1, "stream_state": 1, "stream_frame": 1}
    assert not env.metrics.rejected


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("other/a1/cam/state", b"{}", "bad_topic"),
        ("glimpser/a1/cam/nonsense", b"{}", "bad_topic"),
        ("glimpser/A1/cam/state", b"{}", "bad_topic"),
        ("glimpser/a1/cam/x/state", b"{}", "bad_topic"),
        ("glimpser/a1/cam/state", b"{not json", "invalid_payload"),
        ("glimpser/a1/cam/state", b'{"stream_id": 5}', "invalid_payload"),
        ("glimpser/a1/cam/state", b"\xff\xfe\x00", "invalid_payload"),
        ("glimpser/a1/cam/state", state_bytes("a2", "cam"), "id_mismatch"),
        ("glimpser/a1/cam/state", state_bytes("a1", "other"), "id_mismatch"),
        ("glimpser/a1/cam/state", b" " * 300_000, "oversize"),
        ("glimpser/a1/state", b"[]", "invalid_payload"),
        ("glimpser/a1/available", b"maybe", "invalid_payload"),
        ("glimpser/a1/cam/frame", b"GIF89a....", "not_jpeg"),
        ("glimpser/a1/cam/frame", jpeg()[:-40], "not_jpeg"),
        ("glimpser/a1/cam/frame", b"\xff\xd8" + b"\0" * 60_000 + b"\xff\xd9", "oversize"),
        ("glimpser/a1/cam/event", b'{"type": "motion"}', "invalid_payload"),
        ("glimpser/a1/cam/set", b"ON", "unexpected_topic"),
    ],
)
def test_bad_messages_are_rejected_and_counted(
    env: Env, topic: str, payload: bytes, reason: str
) -> None:
    before = env.registry.stream_info(("a1", "cam"))
    env.send(topic, payload)  # must not raise
    assert env.metrics.rejected == {reason: 1}
    assert env.registry.stream_keys() == [("a1", "cam")]
    assert env.registry.stream_info(("a1", "cam")) == before
    assert env.relayed == []


def test_event_with_mismatched_ids_is_rejected(env: Env) -> None:
    good = Event(agent_id="a1", stream_id="cam", type="motion").model_dump_json().encode()
    bad = Event(agent_id="a1", stream_id="zzz", type="motion").model_dump_json().encode()
    env.send("glimpser/a1/cam/event", good)
    env.send("glimpser/a1/cam/event", bad)
    assert env.metrics.received["stream_event"] == 1
    assert env.metrics.rejected == {"id_mismatch": 1}


def test_empty_retained_state_removes_the_stream(env: Env) -> None:
    env.send("glimpser/a1/cam/frame", frame())
    env.send("glimpser/a1/cam/state", b"")
    assert env.registry.stream_keys() == []
    assert env.registry.latest_frame(("a1", "cam")) is None


def test_frame_for_unknown_stream_is_not_kept(env: Env) -> None:
    env.send("glimpser/a1/ghost/frame", frame())
    assert env.registry.stream_keys() == [("a1", "cam")]
    assert env.relayed == []


def test_own_hub_availability_is_ignored(env: Env) -> None:
    env.send("glimpser/hub/available", b"online")
    assert not env.metrics.rejected
    assert env.registry.agents_online() == 1


def test_snapshot_serves_until_a_frame_arrives(env: Env) -> None:
    env.send("glimpser/a1/cam/snapshot", frame(32, 24))
    snap = env.registry.latest_frame(("a1", "cam"))
    assert snap is not None and snap.width == 32
    env.send("glimpser/a1/cam/frame", frame(64, 48))
    latest = env.registry.latest_frame(("a1", "cam"))
    assert latest is not None and latest.width == 64
