"""HTTP API over a real in-process server; MQTT replaced by FakeLink at the hub's own seam."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB
from glimpser.hub.ingest.router import Router
from glimpser.shared.codec import decode_frame
from tests.helpers import wait_for
from tests.hub.support import FakeLink, frame, settings, state_bytes

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def app(link: FakeLink) -> web.Application:
    app = create_app(settings(max_viewers_per_stream=2), link=link)
    router = app[HUB].router
    router.route("glimpser/a1/available", b"online")
    router.route("glimpser/a1/cam/state", state_bytes("a1", "cam", width=640, height=480))
    return app


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app: web.Application) -> Client:
    return await aiohttp_client(app)


def _router(client: Client) -> Router:
    return client.app[HUB].router


async def _error(resp: aiohttp.ClientResponse, status: int) -> str:
    assert resp.status == status
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["status"] == status
    return str(body["error"])


async def test_list_and_get(client: Client) -> None:
    resp = await client.get("/api/streams")
    assert resp.status == 200
    [info] = await resp.json()
    assert info["id"] == "cam" and info["agent_id"] == "a1"
    assert info["status"] == "active" and info["resolution"] == "640x480"
    for key in ("name", "source", "fps", "last_frame_at", "template_id", "agent_online"):
        assert key in info
    assert (await (await client.get("/api/streams/a1.cam")).json()) == info


async def test_lookup_errors_are_json(client: Client) -> None:
    assert "'nope'" in await _error(await client.get("/api/streams/nope"), 404)
    assert "invalid stream id" in await _error(await client.get("/api/streams/NOPE"), 400)
    assert "/api/nothing" in await _error(await client.get("/api/nothing"), 404)
    await _error(await client.put("/api/streams/cam"), 405)
    _router(client).route("glimpser/a2/cam/state", state_bytes("a2", "cam"))
    msg = await _error(await client.get("/api/streams/cam"), 409)
    assert "a1.cam" in msg and "a2.cam" in msg


async def test_start_waits_for_the_agent_answer(
    client: Client,
    link: FakeLink,
) -> None:
    async def agent_answers() -> None:
        await wait_for(lambda: link.commands)
        agent, stream, command = link.commands[0]
        assert (agent, stream, command.action) == ("a1", "cam", "start")
        _router(client).route(
            "glimpser/a1/cam/state",
            state_bytes(status="starting", request_id=command.request_id),
        )

    answer = asyncio.create_task(agent_answers())
    resp = await client.post("/api/streams/cam/start")
    await answer
    body = await resp.json()
    assert resp.status == 200
    assert body["success"] is True
    assert body["request_id"] == link.commands[0][2].request_id
    assert body["stream"]["status"] == "starting"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_stop_times_out_with_504(
    client: Client,
    link: FakeLink,
    method: str,
) -> None:
    resp = await client.request(method, "/api/streams/cam/stop")
    assert "did not answer stop" in await _error(resp, 504)
    assert link.commands[0][2].action == "stop"


async def test_command_to_offline_agent_is_503(
    client: Client,
    link: FakeLink,
) -> None:
    _router(client).route("glimpser/a1/available", b"offline")
    assert "agent a1 is offline" in await _error(await client.post("/api/streams/cam/start"), 503)
    assert link.commands == []


async def test_command_without_broker_is_503(
    client: Client,
    link: FakeLink,
) -> None:
    link.connected = False
    await _error(await client.post("/api/streams/cam/start"), 503)


async def test_snapshot(client: Client) -> None:
    assert "no frame" in await _error(await client.get("/api/stream/cam/snapshot"), 404)
    payload = frame(80, 60)
    _router(client).route("glimpser/a1/cam/frame", payload)
    resp = await client.get("/api/stream/cam/snapshot")
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    body = await resp.read()
    assert body == payload
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (60, 80, 3)


async def test_health_ready_metrics(
    client: Client,
    link: FakeLink,
) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    _router(client).route("glimpser/a1/cam/frame", b"not a jpeg")
    text = await (await client.get("/metrics")).text()
    assert 'glimpser_hub_messages_rejected_total{reason="not_jpeg"} 1' in text
    assert 'glimpser_hub_messages_received_total{kind="stream_state"} 1' in text
    assert "glimpser_hub_agents_online 1" in text
    assert "glimpser_hub_streams 1" in text
    link.connected = False
    await _error(await client.get("/readyz"), 503)


async def _read_part(resp: aiohttp.ClientResponse) -> tuple[dict[str, str], bytes]:
    headers: dict[str, str] = {}
    line = await resp.content.readline()
    if line == b"\r\n":  # the CRLF that ends the previous part
        line = await resp.content.readline()
    assert line == b"--frame\r\n", line
    while (line := await resp.content.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await resp.content.readexactly(int(headers["content-length"]))
    return headers, body


async def test_mjpeg_parts_are_valid_jpegs_and_demand_follows_viewers(
    client: Client,
    link: FakeLink,
) -> None:
    router = _router(client)
    router.route("glimpser/a1/cam/frame", frame(64, 48, seq=1))
    async with client.get("/api/stream/cam/mjpeg") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "multipart/x-mixed-replace;boundary=frame"
        headers, body = await _read_part(resp)  # the latest frame, sent at once
        assert headers["content-type"] == "image/jpeg"
        assert decode_frame(body).meta is not None
        await wait_for(lambda: link.demands, message="demand lease while watched")
        for seq in (2, 3):
            router.route("glimpser/a1/cam/frame", frame(64, 48, seq=seq))
            _, body = await _read_part(resp)
            decoded = decode_frame(body)
            assert decoded.meta is not None and decoded.meta.seq == seq
            assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
        info = await (await client.get("/api/streams/cam")).json()
        assert info["viewers"] == 1
    hub = client.app[HUB]
    await wait_for(lambda: hub.relay.viewers(("a1", "cam")) == 0, message="viewer released")
    count = len(link.demands)
    await asyncio.sleep(0.25)  # more than one renewal period (ttl 0.3 / 3)
    assert len(link.demands) == count, "demand kept being renewed after the viewer left"


async def test_mjpeg_viewer_cap_is_503(client: Client) -> None:
    _router(client).route("glimpser/a1/cam/frame", frame())
    async with client.get("/api/stream/cam/mjpeg") as r1, client.get("/api/stream/cam/mjpeg") as r2:
        assert (r1.status, r2.status) == (200, 200)
        assert "2 viewers" in await _error(await client.get("/api/stream/cam/mjpeg"), 503)


async def test_mjpeg_unknown_stream_is_404(client: Client) -> None:
    await _error(await client.get("/api/stream/ghost/mjpeg"), 404)


async def test_stalled_mjpeg_viewer_is_dropped_without_slowing_others(
    aiohttp_client: ClientFactory, link: FakeLink
) -> None:
    app = create_app(settings(mjpeg_write_timeout=0.5), link=link)
    router = app[HUB].router
    router.route("glimpser/a1/available", b"online")
    router.route("glimpser/a1/cam/state", state_bytes())
    router.route("glimpser/a1/cam/frame", frame(640, 480))
    client = await aiohttp_client(app)
    # A raw socket that asks for the stream and never reads: its send buffer fills up.
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /api/stream/cam/mjpeg HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    metrics = app[HUB].metrics
    async with client.get("/api/stream/cam/mjpeg") as fast:
        await _read_part(fast)
        big = frame(1920, 1080)
        for _ in range(400):
            router.route("glimpser/a1/cam/frame", big)
            _, body = await asyncio.wait_for(_read_part(fast), 2)
            assert body
            if metrics.viewers_dropped:
                break
        await wait_for(lambda: metrics.viewers_dropped == 1, timeout=5, message="never dropped")
        assert app[HUB].relay.viewers(("a1", "cam")) == 1
    writer.close()
