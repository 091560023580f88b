"""Template assignment, agent-owned templates, captures and snapshots over a real broker.

Runs against a real Mosquitto process and the embedded amqtt broker process (``broker``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt

from glimpser.shared.models import AgentConfig, Command
from tests.brokers import BrokerHandle
from tests.helpers import free_port, wait_for
from tests.hub.support import capture, settings, state_bytes, template_body
from tests.hub.test_ingest import running_hub


class ConfigWatcher:
    """An MQTT client recording every AgentConfig the hub publishes, by agent."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: dict[str, list[AgentConfig]] = {}

    def revisions(self, agent: str) -> list[int]:
        return [c.revision for c in self.seen.get(agent, [])]

    def last(self, agent: str) -> AgentConfig:
        return self.seen[agent][-1]

    async def run(self) -> None:
        async for message in self.client.messages:
            agent = message.topic.value.split("/")[1]
            payload = bytes(message.payload)
            if payload:
                self.seen.setdefault(agent, []).append(AgentConfig.model_validate_json(payload))


@asynccontextmanager
async def watching(broker: BrokerHandle, name: str) -> AsyncIterator[ConfigWatcher]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=name) as client:
        await client.subscribe("glimpser/+/config", qos=1)
        watcher = ConfigWatcher(client)
        task = asyncio.create_task(watcher.run())
        try:
            yield watcher
        finally:
            task.cancel()


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as resp:
        return resp.status, await resp.json()


async def test_config_follows_template_changes_and_survives_a_restart(
    broker: BrokerHandle, tmp_path: Path
) -> None:
    hub_settings = settings(
        embedded_broker=False,
        broker={"host": broker.host, "port": broker.port},
        http={"port": free_port()},
        data_dir=tmp_path / "hub",
        agents=["a1", "a2"],
    )
    api = "/api/templates"
    async with (
        running_hub(hub_settings) as url,
        aiohttp.ClientSession() as http,
        watching(broker, "watch-1") as w,
    ):
        status, _ = await _call(http, "POST", url + api, template_body("c1", agent_id="a1"))
        assert status == 201
        await wait_for(lambda: w.revisions("a1") == [1], message=lambda: str(w.seen))
        assert [t.id for t in w.last("a1").templates] == ["c1"]

        await _call(http, "PATCH", f"{url}{api}/c1", {"fps": 2})
        await wait_for(lambda: w.revisions("a1") == [1, 2], message=lambda: str(w.seen))
        assert w.last("a1").templates[0].fps == 2

        await _call(http, "POST", url + api, template_body("c2", agent_id="a2"))
        await wait_for(lambda: w.revisions("a2") == [1])

        status, body = await _call(http, "POST", f"{url}/api/streams/c1/stop")
        assert status == 202 and body["applied"] is False, body
        await wait_for(lambda: w.revisions("a1") == [1, 2, 3])
        assert w.last("a1").desired == {"c1": "stopped"}

        status, _ = await _call(http, "DELETE", f"{url}{api}/c1")
        assert status == 200
        await wait_for(lambda: w.revisions("a1") == [1, 2, 3, 4])
        assert w.last("a1").templates == [] and w.revisions("a2") == [1]

    # A restarted hub on the same data dir: templates are still there and a new subscriber
    # gets each agent's latest config (retained).
    async with (
        running_hub(hub_settings) as url,
        aiohttp.ClientSession() as http,
        watching(broker, "watch-2") as w2,
    ):
        status, page = await _call(http, "GET", url + api)
        assert [i["template"]["id"] for i in page["items"]] == ["c2"]
        await wait_for(lambda: w2.seen.get("a2"), message=lambda: str(w2.seen))
        assert w2.last("a2").revision == 1 and w2.last("a1").revision == 4


async def test_agent_templates_captures_and_snapshot(broker: BrokerHandle, tmp_path: Path) -> None:
    hub_settings = settings(
        embedded_broker=False,
        broker={"host": broker.host, "port": broker.port},
        http={"port": free_port()},
        data_dir=tmp_path / "hub",
        command_timeout=5,
    )
    local = {"templates": [template_body("yard")]}
    async with (
        running_hub(hub_settings) as url,
        aiohttp.ClientSession() as http,
        aiomqtt.Client(broker.host, broker.port, identifier="fake-agent") as agent,
    ):
        await agent.publish("glimpser/edge-1/available", b"online", qos=1, retain=True)
        await agent.publish(
            "glimpser/edge-1/templates", json.dumps(local).encode(), qos=1, retain=True
        )
        await agent.publish(
            "glimpser/edge-1/yard/state", state_bytes("edge-1", "yard"), qos=1, retain=True
        )

        async def owned() -> Any:
            status, body = await _call(http, "GET", f"{url}/api/templates/yard")
            return body if status == 200 else None

        record = await wait_for(owned, timeout=10, message="agent template never synced")
        assert record["owner"] == "agent" and record["template"]["agent_id"] == "edge-1"

        payload = capture("abcdef0123456789", captured_at=1_700_000_000.0)
        await agent.publish("glimpser/edge-1/yard/capture", payload, qos=1)

        async def listed() -> Any:
            _, page = await _call(http, "GET", f"{url}/api/captures?stream=yard")
            return page["items"]

        [item] = await wait_for(listed, timeout=10, message="capture never stored")
        async with http.get(f"{url}{item['image_url']}") as resp:
            assert await resp.read() == payload

        await agent.subscribe("glimpser/edge-1/yard/set", qos=1)

        async def answer() -> None:
            async for message in agent.messages:
                command = Command.model_validate_json(bytes(message.payload))
                if command.action == "snapshot":
                    shot = capture("feed0000beef", request_id=command.request_id, reason="manual")
                    await agent.publish("glimpser/edge-1/yard/capture", shot, qos=1)
                    return

        responder = asyncio.create_task(answer())
        status, body = await _call(http, "POST", f"{url}/api/streams/yard/snapshot")
        await asyncio.wait_for(responder, 5)
        assert status == 201, body
        assert body["id"] == "feed0000beef" and body["reason"] == "manual"

        await agent.publish("glimpser/edge-1/templates", b"", qos=1, retain=True)

        async def removed() -> bool:
            status, _ = await _call(http, "GET", f"{url}/api/templates/yard")
            return status == 404

        await wait_for(removed, timeout=10, message="agent template not removed")
        # Clean the retained messages so nothing leaks into another test on this broker.
        for leaf in ("available", "templates", "yard/state"):
            await agent.publish(f"glimpser/edge-1/{leaf}", b"", qos=1, retain=True)
