"""The Agent end to end on the agent side: real runners, real link, real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiomqtt

from glimpser.agent.app import Agent
from glimpser.agent.config import AgentSettings
from tests.agent.conftest import retained
from tests.helpers import wait_for


def _settings(broker: Any, tmp_path: Path) -> AgentSettings:
    return AgentSettings.model_validate(
        {
            "agent_id": "edge",
            "broker": {"host": broker.host, "port": broker.port},
            "data_dir": str(tmp_path),
            "templates": [
                {
                    "id": "yard",
                    "name": "Yard",
                    "fps": 10,
                    "keepalive": 1,
                    "source": {"kind": "test", "pattern": "motion", "width": 160, "height": 120},
                },
                {"id": "off", "name": "Off", "enabled": False, "source": {"kind": "test"}},
            ],
        }
    )


async def _stream_status(broker: Any, stream: str) -> str:
    payload = await retained(broker.host, broker.port, f"glimpser/edge/{stream}/state")
    return str(json.loads(payload)["status"])


async def test_agent_runs_streams_and_obeys_commands(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    async with Agent(_settings(b, tmp_path)) as agent:
        await wait_for(lambda: agent.link.connected, timeout=10)

        async def status_is(stream: str, status: str) -> bool:
            return await _stream_status(b, stream) == status

        await wait_for(lambda: status_is("yard", "active"), timeout=10)
        await wait_for(lambda: status_is("off", "inactive"), timeout=10)
        state = json.loads(await retained(b.host, b.port, "glimpser/edge/state"))
        assert state["streams"] == ["yard", "off"] and state["version"]

        async with aiomqtt.Client(b.host, b.port) as peer:
            await peer.publish("glimpser/edge/yard/set", b'{"action":"stop","request_id":"x1"}', 1)
            await peer.publish("glimpser/edge/yard/set", b"{bad", 1)
            await peer.publish("glimpser/edge/nope/set", b"ON", 1)
        await wait_for(lambda: status_is("yard", "inactive"), timeout=10)
        yard = json.loads(await retained(b.host, b.port, "glimpser/edge/yard/state"))
        assert yard["request_id"] == "x1" and yard["desired"] == "stopped"

        async def rejected_shown() -> bool:
            st = json.loads(await retained(b.host, b.port, "glimpser/edge/state"))
            return bool(st["rejected_messages"] == 2)

        await wait_for(rejected_shown, timeout=10, interval=0.2)
    assert await retained(b.host, b.port, "glimpser/edge/available") == b"offline"
    assert await _stream_status(b, "yard") == "inactive"
