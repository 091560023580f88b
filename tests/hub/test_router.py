"""Router: every message either lands in the registry or is rejected, counted and survived."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from glimpser.hub.ingest.feed import StreamFeed
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


# ---------------------------------------------------------------------- alerts and live feed


class RecordingAlerts:
    """Records the router's calls into the alert engine (AlertInputs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def submit(self, event: Event) -> None:
        self.calls.append(("event", event.id))

    def agent_availability(self, agent_id: str, online: bool, at: datetime | None = None) -> None:
        self.calls.append(("available", agent_id, online))

    def stream_status(
        self,
        agent_id: str,
        stream_id: str,
        status: str,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.calls.append(("status", agent_id, stream_id, status, error))


class Wired(Env):
    def __init__(self) -> None:
        super().__init__()
        self.alerts = RecordingAlerts()
        self.live: list[tuple[str, Any]] = []
        feed = StreamFeed(
            self.registry, lambda kind, data: self.live.append((kind, data)), lambda key: 0
        )
        self.router = Router(
            Topics("glimpser"),
            self.registry,
            self.metrics,
            lambda key, data: None,
            alerts=self.alerts,
            feed=feed,
        )


def test_events_availability_and_every_state_report_reach_the_engine() -> None:
    env = Wired()
    env.send("glimpser/a1/available", b"online")
    env.send("glimpser/a1/cam/state", state_bytes(status="error", error="lost"))
    env.send("glimpser/a1/cam/state", state_bytes(status="error", error="lost"))
    event = Event(id="evt-00000001", agent_id="a1", stream_id="cam", type="motion")
    env.send("glimpser/a1/cam/event", event.model_dump_json().encode())
    env.send("glimpser/a1/cam/event", b'{"id": "evt-00000002", "type": 3}')
    env.send("glimpser/a1/available", b"offline")
    env.send("glimpser/a1/available", b"")  # removed on purpose: not an outage
    assert env.alerts.calls == [
        ("available", "a1", True),
        ("status", "a1", "cam", "error", "lost"),
        ("status", "a1", "cam", "error", "lost"),
        ("event", "evt-00000001"),
        ("available", "a1", False),
    ]
    assert env.metrics.rejected == {"invalid_payload": 1}


def test_motion_flag_is_kept_and_pushed_on_change() -> None:
    env = Wired()
    env.send("glimpser/a1/cam/motion", b"ON")  # before the state: still kept
    env.send("glimpser/a1/cam/state", state_bytes())
    env.send("glimpser/a1/cam/motion", b"ON")
    env.send("glimpser/a1/cam/motion", b"on")
    assert env.registry.motion(("a1", "cam")) is True
    env.send("glimpser/a1/cam/motion", b"OFF")
    env.send("glimpser/a1/cam/motion", b"")
    assert env.registry.motion(("a1", "cam")) is None
    motions = [data["motion"] for kind, data in env.live if kind == "motion"]
    assert motions == [True, False, None]
    assert env.metrics.rejected == {"invalid_payload": 1}
    assert env.metrics.received["stream_motion"] == 4


def test_stream_changes_are_pushed_but_refreshes_are_not() -> None:
    env = Wired()
    env.send("glimpser/a1/available", b"online")
    env.send("glimpser/a1/cam/state", state_bytes(fps=5.0, frames=10))
    env.send("glimpser/a1/cam/state", state_bytes(fps=5.2, frames=20))  # jitter and counters
    env.send("glimpser/a1/cam/state", state_bytes(fps=2.0, frames=30))  # a real slowdown
    env.send("glimpser/a1/cam/state", state_bytes(status="error", error="lost", fps=0))
    env.send("glimpser/a1/cam/state", state_bytes(status="error", error="lost", fps=0))
    env.send("glimpser/a1/available", b"offline")
    env.send("glimpser/a1/cam/state", b"")
    env.send("glimpser/a1/cam/state", b"")
    pushed = [
        (kind, data.get("status"), data.get("fps"), data.get("agent_online"))
        for kind, data in env.live
    ]
    assert pushed == [
        ("stream", "active", 5.0, True),
        ("stream", "active", 2.0, True),
        ("stream", "error", 0.0, True),
        ("stream", "inactive", 0.0, False),
        ("stream_removed", None, None, None),
    ]
