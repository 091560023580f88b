"""Home Assistant MQTT discovery: the payload builders, and a real agent on a real broker.

The end-to-end tests read the topics out of the retained discovery config itself (after the
``~`` expansion HA does) and drive the agent through them, so the payload can only pass when it
names topics the agent really serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from glimpser.agent.app import Agent
from glimpser.agent.config import AgentSettings
from glimpser.agent.publish.discovery import (
    DiscoveredStream,
    Discovery,
    HomeAssistantSettings,
    device_config,
    encode,
    entity_configs,
)
from glimpser.shared.backoff import Backoff
from glimpser.shared.models import StreamState, Template
from glimpser.shared.payloads import parse_command
from glimpser.shared.topics import Topics
from tests.agent.conftest import retained
from tests.helpers import wait_for

YARD = DiscoveredStream("yard", "Yard", "test", motion=True)
PAGE = DiscoveredStream("page", "Page", "website", motion=False)
KEYS = {"camera", "running", "snapshot", "fps", "status"}


def expand(component: dict[str, Any]) -> dict[str, Any]:
    """A component as HA sees it: ``~`` replaced in every ``*_t``/``t`` (topic) key."""
    out = dict(component)
    base = out.pop("~", None)
    for key, value in out.items():
        if base and isinstance(value, str) and (key == "t" or key.endswith("_t")):
            out[key] = value.replace("~", base, 1) if value.startswith("~") else value
    return out


def cmps(payload: bytes) -> dict[str, dict[str, Any]]:
    """The expanded components of a device discovery payload."""
    return {cid: expand(c) for cid, c in json.loads(payload)["cmps"].items()}


# --------------------------------------------------------------------------- payloads


def test_device_payload_has_device_origin_availability_and_every_entity() -> None:
    payload = device_config("edge", "1.2.3", [YARD, PAGE], Topics("site/cams"))
    assert payload["dev"] == {
        "ids": ["glimpser_edge"],
        "name": "Glimpser edge",
        "mf": "Glimpser",
        "mdl": "Glimpser agent",
        "sw": "1.2.3",
    }
    assert payload["o"] == {"name": "glimpser", "sw": "1.2.3"}
    assert payload["avty_t"] == "site/cams/edge/available"
    assert (payload["pl_avail"], payload["pl_not_avail"]) == ("online", "offline")

    comps = cmps(encode(payload))
    assert set(comps) == {f"yard_{k}" for k in KEYS | {"motion"}} | {f"page_{k}" for k in KEYS}
    for cid, comp in comps.items():
        assert comp["uniq_id"] == f"glimpser_edge_{cid}"
        assert comp["name"].startswith(("Yard", "Page"))

    camera, switch, button = comps["yard_camera"], comps["yard_running"], comps["yard_snapshot"]
    assert camera["p"] == "camera" and camera["t"] == "site/cams/edge/yard/snapshot"
    assert "image_encoding" not in camera  # raw JPEG bytes, as the agent publishes them
    assert switch["p"] == "switch" and switch["cmd_t"] == "site/cams/edge/yard/set"
    assert switch["stat_t"] == "site/cams/edge/yard/state"
    assert switch["val_tpl"] == "{{ 'ON' if value_json.desired == 'started' else 'OFF' }}"
    assert button["p"] == "button" and button["cmd_t"] == "site/cams/edge/yard/set"
    # The plain payloads HA sends are the ones the agent's command parser understands.
    assert parse_command(switch["pl_on"]).action == "start"
    assert parse_command(switch["pl_off"]).action == "stop"
    assert parse_command(button["pl_prs"]).action == "snapshot"

    fps, status, motion = comps["yard_fps"], comps["yard_status"], comps["yard_motion"]
    assert fps["p"] == "sensor" and fps["stat_t"] == "site/cams/edge/yard/state"
    assert fps["val_tpl"] == "{{ value_json.fps }}"
    assert (fps["unit_of_meas"], fps["stat_cla"]) == ("fps", "measurement")
    assert status["val_tpl"] == "{{ value_json.status }}" and status["ent_cat"] == "diagnostic"
    assert motion["p"] == "binary_sensor" and motion["dev_cla"] == "motion"
    assert motion["stat_t"] == "site/cams/edge/yard/motion"
    assert (motion["pl_on"], motion["pl_off"]) == ("ON", "OFF")

    # The templates read fields StreamState really has.
    for field in ("desired", "fps", "status", "error"):
        assert field in StreamState.model_fields


def test_payload_stays_small() -> None:
    streams = [
        DiscoveredStream(f"camera-{i}", f"Camera number {i}", "rtsp", True) for i in range(16)
    ]
    payload = encode(device_config("edge-box-1", "1.0.0", streams, Topics()))
    assert len(payload) < 32 * 1024


@pytest.mark.parametrize(
    ("source", "motion", "expected"),
    [
        ({"kind": "test"}, {}, True),
        ({"kind": "test"}, {"enabled": False}, False),
        ({"kind": "test"}, None, False),
        ({"kind": "website", "url": "https://example.com"}, {}, False),
    ],
)
def test_motion_entity_only_where_motion_runs(
    source: dict[str, Any], motion: dict[str, Any] | None, expected: bool
) -> None:
    template = Template.model_validate({"id": "s", "name": "S", "source": source, "motion": motion})
    assert DiscoveredStream.from_template(template).motion is expected


def test_device_mode_republishes_only_changes_and_removes_components() -> None:
    discovery = Discovery(HomeAssistantSettings(), "edge", "1.0", "glimpser")
    first = discovery.update([YARD, PAGE])
    assert list(first) == ["homeassistant/device/edge/config"]
    assert discovery.update([PAGE, YARD]) == {}  # same set: nothing to send

    removed = cmps(discovery.update([PAGE])["homeassistant/device/edge/config"])
    # HA's documented removal: the yard components reduced to their platform only.
    assert removed["yard_motion"] == {"p": "binary_sensor"}
    assert {cid for cid, c in removed.items() if len(c) > 1} == {f"page_{k}" for k in KEYS}

    back = cmps(discovery.update([PAGE, YARD])["homeassistant/device/edge/config"])
    assert back["yard_motion"]["uniq_id"] == "glimpser_edge_yard_motion"


def test_entity_mode_publishes_per_entity_and_clears_removed() -> None:
    settings = HomeAssistantSettings(discovery_prefix="ha", mode="entity")
    discovery = Discovery(settings, "edge", "1.0", "glimpser")
    first = discovery.update([YARD, PAGE])
    assert "ha/binary_sensor/edge_yard_motion/config" in first
    assert "ha/switch/edge_page_running/config" in first and len(first) == 11
    config = expand(json.loads(first["ha/camera/edge_yard_camera/config"]))
    assert config["t"] == "glimpser/edge/yard/snapshot"
    assert config["uniq_id"] == "glimpser_edge_yard_camera"
    assert (
        config["dev"]["ids"] == ["glimpser_edge"] and config["avty_t"] == "glimpser/edge/available"
    )
    assert "p" not in config

    gone = discovery.update([PAGE])
    assert gone == {t: b"" for t in first if "_yard_" in t}
    assert discovery.update([PAGE]) == {}


def test_disabled_publishes_nothing() -> None:
    discovery = Discovery(HomeAssistantSettings(enabled=False), "edge", "1.0", "glimpser")
    assert discovery.update([YARD]) == {}


def test_settings() -> None:
    base = {"agent_id": "edge", "data_dir": "/tmp/x"}
    assert AgentSettings.model_validate(base).homeassistant == HomeAssistantSettings(
        enabled=True, discovery_prefix="homeassistant", mode="device"
    )
    custom = AgentSettings.model_validate(
        base | {"homeassistant": {"discovery_prefix": "ha/one", "mode": "entity"}}
    )
    assert custom.homeassistant.mode == "entity"
    for bad in ({"mode": "both"}, {"discovery_prefix": "ha/#"}, {"prefix": "x"}):
        with pytest.raises(ValueError):
            AgentSettings.model_validate(base | {"homeassistant": bad})
    assert entity_configs("edge", "1", [], Topics(), "homeassistant") == {}


# --------------------------------------------------------------------------- end to end


def _settings(broker: Any, tmp_path: Path, **homeassistant: Any) -> AgentSettings:
    return AgentSettings.model_validate(
        {
            "agent_id": "edge",
            "broker": {"host": broker.host, "port": broker.port},
            "data_dir": str(tmp_path),
            "homeassistant": homeassistant,
            "templates": [
                {
                    "id": "yard",
                    "name": "Yard",
                    "fps": 10,
                    "keepalive": 1,
                    "motion": {},
                    "source": {"kind": "test", "pattern": "motion", "width": 96, "height": 64},
                }
            ],
        }
    )


GATE = {
    "id": "gate",
    "name": "Gate",
    "fps": 5,
    "source": {"kind": "test", "width": 96, "height": 64},
}
DEVICE_TOPIC = "homeassistant/device/edge/config"


async def _publish_config(broker: Any, revision: int, *templates: dict[str, Any]) -> None:
    body = {"revision": revision, "templates": list(templates)}
    async with aiomqtt.Client(broker.host, broker.port) as hub:
        await hub.publish("glimpser/edge/config", json.dumps(body).encode(), 1, retain=True)


@asynccontextmanager
async def _watch(broker: Any, topic: str) -> AsyncIterator[dict[str, bytes]]:
    """Collect the latest payload per topic under ``topic`` (retained ones included)."""
    seen: dict[str, bytes] = {}

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes | bytearray)
            seen[message.topic.value] = bytes(message.payload)

    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic, qos=1)
        task = asyncio.create_task(collect(client))
        try:
            yield seen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _state(broker: Any, topic: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(await retained(broker.host, broker.port, topic))
    return state


async def test_device_discovery_names_the_topics_the_agent_serves(
    broker: Any, tmp_path: Path
) -> None:
    b = broker
    async with Agent(_settings(b, tmp_path)) as agent, _watch(b, "homeassistant/#") as ha:
        await wait_for(lambda: agent.link.connected, timeout=10)
        await wait_for(lambda: DEVICE_TOPIC in ha, timeout=10)
        assert list(ha) == [DEVICE_TOPIC]
        comps = cmps(ha[DEVICE_TOPIC])
        assert set(comps) == {f"yard_{k}" for k in KEYS | {"motion"}}
        assert json.loads(ha[DEVICE_TOPIC])["dev"]["sw"] == agent.state().version

        # The state and motion topics hold what the templates read.
        state = await _state(b, comps["yard_running"]["stat_t"])
        assert state["desired"] == "started" and "fps" in state and "status" in state
        motion = await retained(b.host, b.port, comps["yard_motion"]["stat_t"])
        assert motion in (b"ON", b"OFF")
        assert (await retained(b.host, b.port, comps["yard_camera"]["t"]))[:2] == b"\xff\xd8"

        # The switch turns the stream off for real.
        switch, button = comps["yard_running"], comps["yard_snapshot"]
        async with aiomqtt.Client(b.host, b.port) as peer:
            await peer.publish(switch["cmd_t"], switch["pl_off"].encode(), 1)

        async def stopped() -> bool:
            s = await _state(b, switch["stat_t"])
            return bool(s["desired"] == "stopped" and s["status"] == "inactive")

        await wait_for(stopped, timeout=10, interval=0.1)

        # A stopped stream sends no snapshots of its own: one that arrives answers the button.
        async with aiomqtt.Client(b.host, b.port) as peer:
            await peer.subscribe(comps["yard_camera"]["t"], qos=0)
            await asyncio.sleep(0.2)  # let the retained snapshot arrive first
            await peer.publish(button["cmd_t"], button["pl_prs"].encode(), 1)
            async with asyncio.timeout(10):
                async for message in peer.messages:
                    if not message.retain:
                        break
        assert isinstance(message.payload, bytes) and message.payload[:2] == b"\xff\xd8"

        # A stream assigned by the hub joins the device; removed, its entities go.
        await _publish_config(b, 1, GATE)
        await wait_for(lambda: "gate_camera" in cmps(ha[DEVICE_TOPIC]), timeout=10)
        added = cmps(ha[DEVICE_TOPIC])
        assert {c for c in added if c.startswith("gate_")} == {f"gate_{k}" for k in KEYS}
        assert added["gate_running"]["cmd_t"] == "glimpser/edge/gate/set"
        await _publish_config(b, 2)
        await wait_for(lambda: len(cmps(ha[DEVICE_TOPIC])["gate_camera"]) == 1, timeout=10)
        after = cmps(ha[DEVICE_TOPIC])
        assert {cid: c for cid, c in after.items() if cid.startswith("gate_")} == {
            "gate_camera": {"p": "camera"},
            "gate_running": {"p": "switch"},
            "gate_snapshot": {"p": "button"},
            "gate_fps": {"p": "sensor"},
            "gate_status": {"p": "sensor"},
        }
        assert after["yard_camera"] == comps["yard_camera"]
    # A clean shutdown leaves discovery in place; availability says offline.
    assert await retained(b.host, b.port, DEVICE_TOPIC)
    assert await retained(b.host, b.port, "glimpser/edge/available") == b"offline"


async def test_entity_mode_publishes_and_clears_per_entity_configs(
    mosquitto_broker: Any, tmp_path: Path
) -> None:
    b = mosquitto_broker
    settings = _settings(b, tmp_path, mode="entity", discovery_prefix="ha")
    async with Agent(settings) as agent, _watch(b, "ha/#") as ha:
        await wait_for(lambda: agent.link.connected, timeout=10)
        await _publish_config(b, 1, GATE)
        await wait_for(lambda: "ha/switch/edge_gate_running/config" in ha, timeout=10)
        await wait_for(lambda: len(ha) == 11, timeout=10)  # yard: 6 entities, gate: 5
        switch = expand(json.loads(ha["ha/switch/edge_gate_running/config"]))
        assert switch["uniq_id"] == "glimpser_edge_gate_running"
        assert switch["cmd_t"] == "glimpser/edge/gate/set" and switch["dev"]["name"]

        gate = [t for t in ha if "_gate_" in t]
        await _publish_config(b, 2)
        await wait_for(lambda: all(ha[t] == b"" for t in gate), timeout=10)
        assert all(ha[t] for t in ha if "_yard_" in t)
    async with _watch(b, "ha/#") as left:
        await wait_for(lambda: len(left) == 6, timeout=5)
        await asyncio.sleep(0.2)
    assert sorted(left) == sorted(t for t in ha if "_yard_" in t)


async def test_discovery_is_sent_again_after_a_reconnect(
    mosquitto_broker: Any, tmp_path: Path
) -> None:
    b = mosquitto_broker
    async with Agent(_settings(b, tmp_path), mqtt_backoff=Backoff(base=0.1, cap=0.3)) as agent:
        await wait_for(lambda: agent.link.connected, timeout=10)
        assert await retained(b.host, b.port, DEVICE_TOPIC)
        await b.stop()  # no persistence: the broker forgets every retained message
        await wait_for(lambda: not agent.link.connected, timeout=10)
        await b.start()
        await wait_for(lambda: agent.link.connected, timeout=10)
        assert "yard_camera" in cmps(await retained(b.host, b.port, DEVICE_TOPIC))
