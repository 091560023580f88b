"""MqttLink against a real Mosquitto process started by the test (tests/conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import pytest

from glimpser.agent.publish.mqtt import MqttLink
from glimpser.shared.backoff import Backoff
from glimpser.shared.models import AgentConfig, Command, Demand, StreamState, StreamStatus
from tests.agent.conftest import retained
from tests.helpers import wait_for

BASE = "glimpser/edge"


@dataclass
class Handler:
    """Records what the link hands to the app."""

    streams: set[str] = field(default_factory=lambda: {"cam"})
    commands: list[tuple[str, Command]] = field(default_factory=list)
    demands: list[tuple[str, Demand]] = field(default_factory=list)
    configs: list[AgentConfig] = field(default_factory=list)
    rejected: int = 0
    connects: int = 0

    def has_stream(self, stream_id: str) -> bool:
        return stream_id in self.streams

    def on_command(self, stream_id: str, command: Command) -> None:
        self.commands.append((stream_id, command))

    def on_demand(self, stream_id: str, demand: Demand) -> None:
        self.demands.append((stream_id, demand))

    def on_config(self, config: AgentConfig) -> None:
        self.configs.append(config)

    def on_connected(self) -> None:
        self.connects += 1

    def on_rejected(self) -> None:
        self.rejected += 1


def _state(status: StreamStatus = StreamStatus.ACTIVE) -> StreamState:
    return StreamState(
        stream_id="cam",
        agent_id="edge",
        template_id="cam",
        name="Cam",
        source="test",
        status=status,
        configured_fps=10,
    )


def _link(broker: Any, handler: Handler) -> MqttLink:
    return MqttLink(broker.settings, "edge", handler, backoff=Backoff(base=0.1, cap=0.5))


async def test_online_state_commands_and_demand(mosquitto_broker: Any) -> None:
    b, handler = mosquitto_broker, Handler()
    async with _link(b, handler) as link:
        await wait_for(lambda: link.connected, timeout=10)
        assert await retained(b.host, b.port, f"{BASE}/available") == b"online"
        link.publish_stream_state(_state())
        payload = await wait_for(lambda: retained(b.host, b.port, f"{BASE}/cam/state"))
        assert json.loads(payload)["status"] == "active"

        async with aiomqtt.Client(b.host, b.port) as peer:
            await peer.publish(f"{BASE}/cam/set", b'{"action":"stop","request_id":"r1"}', 1)
            await peer.publish(f"{BASE}/cam/set", b"ON", 1)  # Home Assistant switch
            await peer.publish(f"{BASE}/cam/demand", b'{"hub_id":"hub-a","ttl":30}', 1)
        await wait_for(lambda: len(handler.commands) == 2 and handler.demands, timeout=5)
        assert handler.commands[0] == ("cam", Command(action="stop", request_id="r1"))
        assert handler.commands[1][1].action == "start"
        assert handler.demands[0] == ("cam", Demand(hub_id="hub-a", ttl=30))


async def test_malformed_messages_are_counted_not_fatal(mosquitto_broker: Any) -> None:
    b, handler = mosquitto_broker, Handler()
    async with _link(b, handler) as link:
        await wait_for(lambda: link.connected, timeout=10)
        async with aiomqtt.Client(b.host, b.port) as peer:
            for topic, payload in [
                (f"{BASE}/cam/set", b"{not json"),
                (f"{BASE}/cam/set", b'{"action":"explode"}'),
                (f"{BASE}/cam/set", b"\x00\x01garbage"),
                (f"{BASE}/cam/demand", b'{"hub_id":"hub-a","ttl":"forever"}'),
                (f"{BASE}/ghost/set", b'{"action":"start"}'),  # unknown stream
                (f"{BASE}/cam/set", b'{"action":"start","pad":"' + b"x" * 20000 + b'"}'),
                (f"{BASE}/Bad_Id/set", b"ON"),  # matches the subscription, not the id rules
            ]:
                await peer.publish(topic, payload, 1)
            await peer.publish(f"{BASE}/cam/set", b'{"action":"snapshot","request_id":"ok"}', 1)
        await wait_for(lambda: handler.commands, timeout=5)
        assert link.rejected_messages == 7
        assert handler.rejected == 7
        assert handler.commands == [("cam", Command(action="snapshot", request_id="ok"))]
        assert link.connected


async def test_config_is_received_validated_and_clearing_is_ignored(
    mosquitto_broker: Any,
) -> None:
    b, handler = mosquitto_broker, Handler()
    async with aiomqtt.Client(b.host, b.port) as hub:  # retained before the agent connects
        await hub.publish(f"{BASE}/config", b'{"revision":1,"templates":[]}', 1, retain=True)
    async with _link(b, handler) as link:
        await wait_for(lambda: handler.configs, timeout=10)
        assert handler.configs == [AgentConfig(revision=1)]
        async with aiomqtt.Client(b.host, b.port) as hub:
            await hub.publish(f"{BASE}/config", b'{"revision":-1}', 1, retain=True)
            await hub.publish(f"{BASE}/config", b"", 1, retain=True)  # cleared: keep running
            await hub.publish(f"{BASE}/config", b'{"revision":2}', 1, retain=True)
        await wait_for(lambda: len(handler.configs) == 2, timeout=5)
        assert handler.configs[1].revision == 2
        assert link.rejected_messages == 1 and handler.rejected == 1


async def test_clear_stream_empties_its_retained_topics(mosquitto_broker: Any) -> None:
    b, handler = mosquitto_broker, Handler()
    async with _link(b, handler) as link:
        await wait_for(lambda: link.connected, timeout=10)
        link.publish_stream_state(_state())
        link.publish_snapshot("cam", b"\xff\xd8thumb")
        link.publish_motion("cam", True)
        await wait_for(lambda: retained(b.host, b.port, f"{BASE}/cam/snapshot"), timeout=5)
        assert await retained(b.host, b.port, f"{BASE}/cam/motion") == b"ON"
        link.clear_stream("cam")
        await wait_for(lambda: link.queue_depth == 0, timeout=5)
        for leaf in ("state", "snapshot", "motion"):
            with pytest.raises(TimeoutError):
                await retained(b.host, b.port, f"{BASE}/cam/{leaf}", within=0.5)


async def test_reconnects_and_republishes_retained_state(mosquitto_broker: Any) -> None:
    b, handler = mosquitto_broker, Handler()
    async with _link(b, handler) as link:
        await wait_for(lambda: link.connected, timeout=10)
        link.publish_stream_state(_state())
        link.publish_motion("cam", True)
        link.publish_motion("cam", False)  # the latest value is the one re-sent
        await wait_for(lambda: link.queue_depth == 0, timeout=5)
        await b.stop()  # no persistence: every retained message is gone with it
        await wait_for(lambda: not link.connected, timeout=10)
        dropped = link.frames_dropped
        link.publish_frame("cam", b"\xff\xd8 offline frame \xff\xd9")
        assert link.frames_dropped == dropped + 1  # never queued while offline
        await b.start()
        await wait_for(lambda: link.connected, timeout=15)
        assert handler.connects == 2  # the app asks its streams for a fresh frame
        assert await retained(b.host, b.port, f"{BASE}/available") == b"online"
        state = json.loads(await retained(b.host, b.port, f"{BASE}/cam/state"))
        assert state["status"] == "active"
        assert await retained(b.host, b.port, f"{BASE}/cam/motion") == b"OFF"


async def test_frames_are_delivered(mosquitto_broker: Any) -> None:
    b = mosquitto_broker
    async with _link(b, Handler()) as link, aiomqtt.Client(b.host, b.port) as peer:
        await peer.subscribe(f"{BASE}/cam/frame", qos=0)
        await wait_for(lambda: link.connected, timeout=10)
        link.publish_frame("cam", b"\xff\xd8frame\xff\xd9")
        async for message in peer.messages:
            assert message.payload == b"\xff\xd8frame\xff\xd9"
            assert not message.retain
            break


async def test_clean_shutdown_is_offline_and_inactive(mosquitto_broker: Any) -> None:
    b = mosquitto_broker
    async with _link(b, Handler()) as link:
        await wait_for(lambda: link.connected, timeout=10)
        link.publish_stream_state(_state(StreamStatus.ACTIVE))
    assert await retained(b.host, b.port, f"{BASE}/available") == b"offline"
    state = json.loads(await retained(b.host, b.port, f"{BASE}/cam/state"))
    assert state["status"] == "inactive"


async def test_unreachable_broker_is_retried_quietly(caplog: Any) -> None:
    from glimpser.shared.config import BrokerSettings
    from tests.helpers import free_port

    settings = BrokerSettings(port=free_port())
    link = MqttLink(settings, "edge", Handler(), backoff=Backoff(base=0.05, cap=0.1))
    async with link:
        await wait_for(lambda: link._backoff.attempts >= 3, timeout=10)
        assert not link.connected
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and settings.url in warnings[0].getMessage()
