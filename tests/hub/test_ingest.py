"""MQTT ingest end to end: agents' retained states and frames show up in /api/streams.

Runs against a real Mosquitto process and the embedded amqtt broker process (the suite's
``broker`` fixture), and against a hub that embeds its own broker in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import aiomqtt
from aiohttp import web

from glimpser.hub.config import HubSettings
from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB
from glimpser.shared.models import Command, Demand
from tests.brokers import BrokerHandle
from tests.helpers import free_port, wait_for
from tests.hub.support import frame, settings, state_bytes


@asynccontextmanager
async def running_hub(hub_settings: HubSettings) -> AsyncIterator[str]:
    """The full hub app on a real TCPSite; yields its base URL."""
    app = create_app(hub_settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", hub_settings.http.port)
    await site.start()
    try:
        await wait_for(lambda: app[HUB].link.connected, timeout=10, message="hub never connected")
        yield f"http://127.0.0.1:{hub_settings.http.port}"
    finally:
        await runner.cleanup()


async def _streams(http: aiohttp.ClientSession, url: str) -> list[dict[str, object]]:
    async with http.get(f"{url}/api/streams") as resp:
        data: list[dict[str, object]] = await resp.json()
        return data


async def _publish_agent(host: str, port: int) -> None:
    async with aiomqtt.Client(host, port, identifier="agent-a1") as agent:
        await agent.publish("glimpser/a1/available", b"online", qos=1, retain=True)
        await agent.publish("glimpser/a1/cam/state", state_bytes(), qos=1, retain=True)


async def _check_hub_sees_agent(url: str, host: str, port: int) -> None:
    async with aiohttp.ClientSession() as http:
        streams = await wait_for(lambda: _streams(http, url), timeout=10, message="no stream")
        assert streams[0]["id"] == "cam" and streams[0]["agent_online"] is True
        async with aiomqtt.Client(host, port, identifier="agent-a1b") as agent:
            await agent.publish("glimpser/a1/cam/frame", b"junk", qos=0)
            await agent.publish("glimpser/a1/cam/frame", frame(320, 240), qos=0)

            async def resolution() -> bool:
                return (await _streams(http, url))[0]["resolution"] == "320x240"

            await wait_for(resolution, timeout=10, message="frame never reached the hub")
            await agent.publish("glimpser/a1/cam/state", b"", qos=1, retain=True)

            async def gone() -> bool:
                return await _streams(http, url) == []

            await wait_for(gone, timeout=10, message="empty retained state did not remove it")
        async with http.get(f"{url}/metrics") as resp:
            assert 'rejected_total{reason="not_jpeg"} 1' in await resp.text()


async def test_external_broker_end_to_end(broker: BrokerHandle, tmp_path: object) -> None:
    await _publish_agent(broker.host, broker.port)  # retained before the hub starts
    hub_settings = settings(
        embedded_broker=False,
        broker={"host": broker.host, "port": broker.port},
        http={"port": free_port()},
    )
    async with running_hub(hub_settings) as url:
        await _check_hub_sees_agent(url, broker.host, broker.port)


async def test_embedded_broker_end_to_end_with_commands_and_demand() -> None:
    mqtt_port = free_port()
    hub_settings = settings(
        broker={"port": mqtt_port}, http={"port": free_port()}, command_timeout=5
    )
    async with running_hub(hub_settings) as url:
        await _publish_agent("127.0.0.1", mqtt_port)
        async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier="agent-a1") as agent:
            await agent.subscribe("glimpser/a1/cam/set", qos=1)
            await agent.subscribe("glimpser/a1/cam/demand", qos=1)
            await agent.subscribe("glimpser/hub/available", qos=1)

            async def answer_commands() -> list[str]:
                seen: list[str] = []
                async for message in agent.messages:
                    topic = message.topic.value
                    seen.append(topic)
                    if topic.endswith("/set"):
                        command = Command.model_validate_json(bytes(message.payload))
                        reply = state_bytes(status="inactive", request_id=command.request_id)
                        await agent.publish("glimpser/a1/cam/state", reply, qos=1, retain=True)
                    if topic.endswith("/demand"):
                        demand = Demand.model_validate_json(bytes(message.payload))
                        assert demand.hub_id == "main"
                        return seen
                return seen

            responder = asyncio.create_task(answer_commands())
            async with aiohttp.ClientSession() as http:
                await wait_for(lambda: _streams(http, url), timeout=10)
                async with http.post(f"{url}/api/streams/cam/stop") as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                    assert body["success"] is True and body["stream"]["status"] == "inactive"
                await agent.publish("glimpser/a1/cam/frame", frame(), qos=0)
                async with http.get(f"{url}/api/stream/cam/mjpeg") as resp:
                    assert resp.status == 200
                    seen = await asyncio.wait_for(responder, 10)
            assert "glimpser/hub/available" in seen
            assert "glimpser/a1/cam/set" in seen and "glimpser/a1/cam/demand" in seen


async def test_hub_reconnects_after_a_broker_restart(broker: BrokerHandle) -> None:
    hub_settings = settings(
        embedded_broker=False,
        broker={"host": broker.host, "port": broker.port},
        http={"port": free_port()},
    )
    app_url = ""
    async with running_hub(hub_settings) as url:
        app_url = url
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                async with http.get(f"{app_url}/readyz") as resp:
                    return resp.status == 200

            await broker.stop()
            await wait_for(lambda: _not(ready), timeout=10, message="readyz stayed 200")
            await broker.start()
            await wait_for(ready, timeout=20, message="hub did not reconnect")
            await _publish_agent(broker.host, broker.port)
            await wait_for(lambda: _streams(http, app_url), timeout=10)


async def _not(predicate: Callable[[], Awaitable[bool]]) -> bool:
    return not await predicate()
