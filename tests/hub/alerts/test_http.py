"""The alerts HTTP API over a real in-process server and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.alerts import AlertService, ManualClock
from glimpser.hub.http.alerts import ALERTS, alert_routes, alerts_ctx, close_live
from glimpser.hub.http.errors import error_middleware
from glimpser.hub.store.db import Database
from glimpser.shared.models import Event
from tests.helpers import wait_for
from tests.hub.alerts.conftest import fast
from tests.transports import SECRET, WebhookReceiver

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db: Database, clock: ManualClock
) -> AsyncIterator[Client]:
    app = web.Application(middlewares=[error_middleware])
    app[ALERTS] = AlertService(db, fast(live_queue=8), clock=clock)
    app.add_routes(alert_routes)
    app.cleanup_ctx.append(alerts_ctx)
    app.on_shutdown.append(close_live)
    yield await aiohttp_client(app)


def service(client: Client) -> AlertService:
    app = client.app
    assert app is not None
    return app[ALERTS]


RULE: dict[str, Any] = {"name": "door", "events": ["motion"], "channels": []}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name": None}, "name", "Field required"),
        ({"events": ["explode"]}, "events.0", "unknown event type"),
        ({"events": []}, "events", "at least 1"),
        ({"channels": ["foo://bar"]}, "channels.0", "unknown channel scheme 'foo'"),
        ({"channels": ["mailto://"]}, "channels.0", "malformed mailto"),
        ({"channels": ["tgram://bad"]}, "channels.0", "malformed tgram"),
        ({"channels": ["not a url"]}, "channels.0", "spaces"),
        ({"channels": ["glimpser-webhook://h/x?secret=short"]}, "channels.0", "secret"),
        (
            {"channels": [{"type": "webhook", "url": "ftp://h/x", "secret": SECRET}]},
            "channels.0.url",
            "http",
        ),
        (
            {"channels": [{"type": "webhook", "url": "http://h/x", "secret": "x"}]},
            "channels.0.secret",
            "at least 16",
        ),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone", "unknown time zone"),
        (
            {"schedule": {"quiet_hours": {"start": "25:00", "end": "07:00"}}},
            "schedule.quiet_hours.start",
            "pattern",
        ),
        ({"schedule": {"weekdays": ["funday"]}}, "schedule.weekdays.0", "mon"),
        ({"cooldown": -1}, "cooldown", "greater than or equal"),
        ({"min_failures": 0}, "min_failures", "greater than or equal"),
        ({"streams": ["Bad/Id"]}, "streams.0", "stream id"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
async def test_bad_rules_are_422_naming_the_field(
    client: Client, change: dict[str, Any], field: str, words: str
) -> None:
    body = {**RULE, **change}
    body = {k: v for k, v in body.items() if v is not None}
    resp = await client.post("/api/alert-rules", json=body)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert f"{field}: " in error and words in error, error
    assert await (await client.get("/api/alert-rules")).json() == []


async def test_bad_json_and_unknown_rule(client: Client) -> None:
    resp = await client.post("/api/alert-rules", data=b"{nope")
    assert resp.status == 400
    assert (await client.get("/api/alert-rules/missing")).status == 404
    assert (await client.post("/api/alerts/missing/ack")).status == 404
    resp = await client.post("/api/alert-rules/missing/snooze", json={"minutes": 5})
    assert resp.status == 404
    resp = await client.post("/api/alert-channels/test", json={"url": "foo://x"})
    assert resp.status == 422 and "url: unknown channel scheme" in (await resp.json())["error"]


async def test_rule_crud_masks_secrets(client: Client) -> None:
    mail = "mailto://user:hunter2@127.0.0.1:2525?smtp=127.0.0.1&from=a@example.com"
    hook = {"type": "webhook", "url": "https://example.com/hook", "secret": SECRET}
    resp = await client.post("/api/alert-rules", json={**RULE, "channels": [mail, hook]})
    assert resp.status == 201
    created = await resp.json()
    text = str(created)
    assert "hunter2" not in text and SECRET not in text
    rid = created["id"]
    # PATCH without channels keeps the stored (unmasked) channels.
    resp = await client.patch(f"/api/alert-rules/{rid}", json={"enabled": False, "cooldown": 5})
    assert resp.status == 200
    rule = await service(client).store.get_rule(rid)
    assert not rule.enabled and rule.cooldown == 5 and mail in rule.channels
    resp = await client.put(f"/api/alert-rules/{rid}", json={**RULE, "name": "renamed"})
    assert (await resp.json())["name"] == "renamed"
    resp = await client.post(f"/api/alert-rules/{rid}/snooze", json={"minutes": 30})
    assert (await resp.json())["snoozed_until"] is not None
    resp = await client.post(f"/api/alert-rules/{rid}/snooze", json={"minutes": -3})
    assert resp.status == 422 and "minutes" in (await resp.json())["error"]
    assert (await client.delete(f"/api/alert-rules/{rid}")).status == 200
    assert (await client.get(f"/api/alert-rules/{rid}")).status == 404


async def test_alert_list_filters_paging_and_state(client: Client, clock: ManualClock) -> None:
    await client.post("/api/alert-rules", json={**RULE, "cooldown": 0})
    engine = service(client).engine
    for stream in ("cam", "cam", "cam", "door", "door"):
        await engine.handle_event(Event(agent_id="a1", stream_id=stream, type="motion"))
        await clock.advance(1)
    page = await (await client.get("/api/alerts?limit=2")).json()
    assert len(page["items"]) == 2 and page["next"]
    seen = [a["id"] for a in page["items"]]
    while page["next"]:
        page = await (await client.get(f"/api/alerts?limit=2&before={page['next']}")).json()
        seen += [a["id"] for a in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    doors = await (await client.get("/api/alerts?stream=a1.door")).json()
    assert [a["stream_id"] for a in doors["items"]] == ["door", "door"]
    target = seen[0]
    assert (await (await client.post(f"/api/alerts/{target}/ack")).json())["state"] == (
        "acknowledged"
    )
    assert (await (await client.post(f"/api/alerts/{target}/resolve")).json())["state"] == (
        "resolved"
    )
    resp = await client.post(f"/api/alerts/{target}/ack")
    assert resp.status == 409
    resolved = await (await client.get("/api/alerts?state=resolved")).json()
    assert [a["id"] for a in resolved["items"]] == [target]
    since = await (await client.get("/api/alerts?since=2024-01-01T12:00:03Z")).json()
    assert len(since["items"]) == 2
    assert (await client.get("/api/alerts?state=bogus")).status == 422
    detail = await (await client.get(f"/api/alerts/{target}")).json()
    assert detail["deliveries"] == []


async def test_stream_snooze_endpoint(client: Client) -> None:
    await client.post("/api/alert-rules", json={**RULE, "cooldown": 0})
    resp = await client.post("/api/streams/a1.cam/snooze", json={"minutes": 10})
    assert (await resp.json())["stream"] == "a1.cam"
    [alert] = await service(client).engine.handle_event(
        Event(agent_id="a1", stream_id="cam", type="motion")
    )
    assert alert.suppressed == "snoozed"


async def test_channel_test_endpoint(client: Client, receiver: WebhookReceiver) -> None:
    resp = await client.post("/api/alert-channels/test", json={"url": receiver.channel})
    assert await resp.json() == {"success": True}
    assert receiver.received[0].doc["kind"] == "test"
    down = {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": SECRET}
    body = await (await client.post("/api/alert-channels/test", json={"url": down})).json()
    assert body["success"] is False and body["error"]


async def _read_events(resp: aiohttp.ClientResponse, kind: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if fields.get("event") == kind:
                return fields
            fields = {}
        elif not line.startswith(":") and ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    raise AssertionError("stream ended")


async def test_sse_delivers_alerts_and_a_stalled_listener_blocks_nobody(client: Client) -> None:
    await client.post("/api/alert-rules", json={**RULE, "cooldown": 0})
    live = service(client).live
    # A listener that sends its request and then never reads a byte.
    assert client.server.port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await wait_for(lambda: live.listeners == 1)
    async with client.get("/api/events?kinds=alert") as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        await wait_for(lambda: live.listeners == 2)
        # Flood well past the stalled socket's buffers and its queue of 8.
        for n in range(400):
            live.publish("stream", {"n": n, "pad": "x" * 20_000})
        await asyncio.sleep(0.1)
        await service(client).engine.handle_event(
            Event(agent_id="a1", stream_id="cam", type="motion")
        )
        async with asyncio.timeout(5):
            event = await _read_events(resp, "alert")
        assert '"type": "motion"' in event["data"] or '"type":"motion"' in event["data"]
    stalled = [listener for listener in live._listeners if listener.dropped]
    assert stalled and all(listener.pending <= 8 for listener in live._listeners)
    writer.close()
