"""Alerts end to end at the hub: a real hub app on a real broker, a test client as the agent,
a real SMTP server and a real webhook receiver; rules made and alerts read over HTTP, live
updates read from the SSE feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from aiohttp import web

from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB
from glimpser.shared.models import Event
from tests.brokers import BrokerHandle
from tests.helpers import free_port, wait_for
from tests.hub.support import frame, settings, state_bytes
from tests.transports import SECRET, SmtpServer, WebhookReceiver

AGENT = "a1"
PREFIX = f"glimpser/{AGENT}"


# ---------------------------------------------------------------------- harness


@dataclass
class Hub:
    """A running hub: its base URL and an HTTP session."""

    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.url + path, json=body) as resp:
            data = await resp.json()
            assert resp.status < 300, (resp.status, data)
            return data

    async def alerts(self, **query: str) -> list[dict[str, Any]]:
        page = await self.call(
            "GET", "/api/alerts?" + "&".join(f"{k}={v}" for k, v in query.items())
        )
        items: list[dict[str, Any]] = page["items"]
        return items

    async def metrics(self) -> str:
        async with self.http.get(self.url + "/metrics") as resp:
            return await resp.text()


@asynccontextmanager
async def running_hub(broker: BrokerHandle, tmp_path: Path) -> AsyncIterator[Hub]:
    hub_settings = settings(
        embedded_broker=False,
        broker={"host": broker.host, "port": broker.port},
        http={"port": free_port()},
        data_dir=tmp_path / "hub",
        alerts={"offline_delay": 0.3, "retry_base": 0.05, "retry_cap": 0.2},
    )
    app = create_app(hub_settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hub_settings.http.port).start()
    try:
        await wait_for(lambda: app[HUB].link.connected, timeout=10, message="hub not connected")
        async with aiohttp.ClientSession() as http:
            yield Hub(f"http://127.0.0.1:{hub_settings.http.port}", http)
    finally:
        await runner.cleanup()


@dataclass
class Sse:
    """Reads ``GET /api/events`` in the background; ``seen(kind)`` lists the decoded data."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def seen(self, kind: str) -> list[Any]:
        return [data for k, data in self.events if k == kind]

    async def read(self, resp: aiohttp.ClientResponse) -> None:
        kind, data = "message", ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                self.events.append((kind, json.loads(data)))
                kind, data = "message", ""


@asynccontextmanager
async def live(hub: Hub) -> AsyncIterator[Sse]:
    sse = Sse()
    async with hub.http.get(hub.url + "/api/events") as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        task = asyncio.create_task(sse.read(resp))
        try:
            yield sse
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def agent(broker: BrokerHandle) -> AsyncIterator[aiomqtt.Client]:
    """The test agent: online, one active stream ``cam`` with a frame."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="agent-a1") as client:
        await client.publish(f"{PREFIX}/available", b"online", qos=1, retain=True)
        await client.publish(f"{PREFIX}/cam/state", state_bytes(), qos=1, retain=True)
        await client.publish(f"{PREFIX}/cam/frame", frame(160, 120), qos=0)
        yield client


async def publish_event(client: aiomqtt.Client, event_id: str, type_: str = "motion") -> None:
    event = Event(id=event_id, agent_id=AGENT, stream_id="cam", type=type_)
    await client.publish(f"{PREFIX}/cam/event", event.model_dump_json().encode(), qos=1)


async def stream_has_frame(hub: Hub) -> bytes:
    async with hub.http.get(hub.url + "/api/stream/cam/snapshot") as resp:
        return await resp.read() if resp.status == 200 else b""


def webhook(receiver: WebhookReceiver) -> dict[str, Any]:
    return {"type": "webhook", "url": receiver.url, "secret": SECRET}


def alert_types(receiver: WebhookReceiver) -> list[str]:
    return [r.doc["alert"]["type"] for r in receiver.received]


# ---------------------------------------------------------------------- tests


async def test_motion_reaches_email_and_signed_webhook_once(
    broker: BrokerHandle, tmp_path: Path, smtp: SmtpServer, receiver: WebhookReceiver
) -> None:
    async with running_hub(broker, tmp_path) as hub, agent(broker) as client, live(hub) as sse:
        await hub.call(
            "POST",
            "/api/alert-rules",
            {"name": "mail", "events": ["motion"], "channels": [smtp.url()]},
        )
        await hub.call(
            "POST",
            "/api/alert-rules",
            {"name": "hook", "events": ["motion"], "channels": [webhook(receiver)]},
        )
        latest = await wait_for(lambda: stream_has_frame(hub), message="no frame reached the hub")

        # The same event id twice (an agent's outbox replay), then 99 more inside the cooldown.
        for _ in range(2):
            await publish_event(client, "evt-first-0001")
        for n in range(99):
            await publish_event(client, f"evt-more-{n:04d}")

        async def folded() -> bool:
            alerts = await hub.alerts(type="motion")
            return len(alerts) == 2 and all(a["repeats"] == 99 for a in alerts)

        await wait_for(folded, timeout=10, message="the 100 events were not all folded in")
        await wait_for(lambda: smtp.sink.messages and receiver.received, timeout=10)
        await asyncio.sleep(0.3)  # any second notification would be on its way by now
        assert len(smtp.sink.messages) == 1 and len(receiver.received) == 1

        [picture] = [
            p for p in smtp.sink.messages[0].walk() if p.get_content_type() == "image/jpeg"
        ]
        assert picture.get_payload(decode=True) == latest
        assert "Cam" in smtp.sink.messages[0]["Subject"]  # the stream's name from its state

        assert receiver.bad == []  # every request carried a valid HMAC signature
        doc = receiver.received[0].doc
        assert doc["alert"]["event_id"] == "evt-first-0001"
        assert doc["alert"]["stream_id"] == "cam" and doc["alert"]["rule_name"] == "hook"

        await wait_for(lambda: len(sse.seen("alert")) >= 2, message=lambda: str(sse.events))
        assert {a["event_id"] for a in sse.seen("alert")} == {"evt-first-0001"}
        text = await hub.metrics()
        assert 'glimpser_hub_alerts_total{state="new"} 2' in text
        await wait_for(lambda: _has(hub, 'glimpser_hub_alert_deliveries_total{status="sent"} 2'))


async def test_offline_and_stream_error_alerts_and_live_stream_changes(
    broker: BrokerHandle, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    rule = {
        "name": "health",
        "events": ["stream_error", "stream_recovered", "agent_offline", "agent_online"],
        "channels": [webhook(receiver)],
        "min_failures": 3,
    }
    async with running_hub(broker, tmp_path) as hub, live(hub) as sse:
        await hub.call("POST", "/api/alert-rules", rule)
        will = await connect_with_will(broker, f"{PREFIX}/available", b"offline")
        async with agent(broker) as client:
            await wait_for(lambda: _stream_status(sse, "active"), message=lambda: str(sse.events))
            for n in range(5):
                error = state_bytes(status="error", error="camera lost", fps=0, frames=n)
                await client.publish(f"{PREFIX}/cam/state", error, qos=1, retain=True)
            await wait_for(lambda: alert_types(receiver) == ["stream_error"], timeout=10)
            await client.publish(f"{PREFIX}/cam/state", state_bytes(), qos=1, retain=True)
            await wait_for(lambda: len(receiver.received) == 2, timeout=10)
            assert alert_types(receiver) == ["stream_error", "stream_recovered"]
            assert receiver.received[0].doc["alert"]["data"]["failures"] == 3

            # Only the first error report and the recovery are stream changes worth a push.
            statuses = [s["status"] for s in sse.seen("stream") if s["agent_id"] == AGENT]
            assert statuses == ["active", "error", "active"], statuses
            [error_alert] = await hub.alerts(type="stream_error")
            assert error_alert["state"] == "resolved"

        # The agent's connection dies without DISCONNECT: the broker publishes its will.
        will.abort()
        await wait_for(lambda: "agent_offline" in alert_types(receiver), timeout=10)
        await wait_for(lambda: any(not s["agent_online"] for s in sse.seen("stream")))
        async with aiomqtt.Client(broker.host, broker.port, identifier="agent-back") as back:
            await back.publish(f"{PREFIX}/available", b"online", qos=1, retain=True)
            await wait_for(lambda: "agent_online" in alert_types(receiver), timeout=10)
        assert alert_types(receiver)[2:] == ["agent_offline", "agent_online"]
        types = [a["type"] for a in sse.seen("alert")]
        assert "agent_offline" in types and "agent_online" in types
        [offline] = await hub.alerts(type="agent_offline")
        assert offline["state"] == "resolved" and receiver.bad == []


async def test_bad_events_and_motion_flags_are_rejected_and_counted(
    mosquitto_broker: BrokerHandle, tmp_path: Path
) -> None:
    broker = mosquitto_broker
    async with running_hub(broker, tmp_path) as hub, agent(broker) as client, live(hub) as sse:
        await hub.call(
            "POST", "/api/alert-rules", {"name": "log", "events": ["motion"], "channels": []}
        )
        topic = f"{PREFIX}/cam/event"
        bad = [
            b"{not json",
            json.dumps({"agent_id": AGENT, "stream_id": "cam", "type": 7}).encode(),
            json.dumps(
                {"id": "x", "agent_id": AGENT, "stream_id": "cam", "type": "motion"}
            ).encode(),
            Event(agent_id="a2", stream_id="cam", type="motion").model_dump_json().encode(),
            Event(agent_id=AGENT, stream_id="door", type="motion").model_dump_json().encode(),
        ]
        for payload in bad:
            await client.publish(topic, payload, qos=1)
        await client.publish(f"{PREFIX}/cam/motion", b"MAYBE", qos=1, retain=True)
        await client.publish(f"{PREFIX}/cam/motion", b"ON", qos=1, retain=True)
        await publish_event(client, "evt-good-0001")  # the ingest still works after all that

        await wait_for(lambda: hub.alerts(type="motion"), message="the good event made no alert")
        text = await hub.metrics()
        assert 'glimpser_hub_messages_rejected_total{reason="invalid_payload"} 4' in text, text
        assert 'glimpser_hub_messages_rejected_total{reason="id_mismatch"} 2' in text
        assert 'glimpser_hub_messages_received_total{kind="stream_event"} 1' in text
        assert 'glimpser_hub_stream_motion{stream="a1.cam"} 1' in text
        assert 'glimpser_hub_alerts_total{state="new"} 1' in text
        assert "glimpser_hub_alert_jobs_dropped_total 0" in text
        await wait_for(lambda: sse.seen("motion"), message=lambda: str(sse.events))
        assert sse.seen("motion") == [{"agent_id": AGENT, "stream_id": "cam", "motion": True}]


# ---------------------------------------------------------------------- helpers


async def _has(hub: Hub, line: str) -> bool:
    return line in await hub.metrics()


def _stream_status(sse: Sse, status: str) -> bool:
    return any(s["status"] == status for s in sse.seen("stream"))


class _Will:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def abort(self) -> None:
        """Drop the TCP connection without an MQTT DISCONNECT (a crash or a lost network)."""
        self._writer.transport.abort()


async def connect_with_will(broker: BrokerHandle, topic: str, payload: bytes) -> _Will:
    """A raw MQTT 3.1.1 connection whose retained QoS 1 will is ``payload`` on ``topic``.

    Raw bytes because aiomqtt cannot drop its socket without sending DISCONNECT first.
    """
    reader, writer = await asyncio.open_connection(broker.host, broker.port)
    flags = 0x02 | 0x04 | 0x08 | 0x20  # clean session, will, will QoS 1, will retain
    body = _text(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 60)
    body += _text(b"agent-a1-will") + _text(topic.encode()) + _text(payload)
    writer.write(bytes([0x10]) + _length(len(body)) + body)
    await writer.drain()
    connack = await asyncio.wait_for(reader.readexactly(4), 5)
    assert connack[0] == 0x20 and connack[3] == 0, connack
    return _Will(writer)


def _text(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
