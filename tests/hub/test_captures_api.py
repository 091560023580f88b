"""Capture history: ingest through the router, the HTTP API, retention and snapshots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.config import HubSettings
from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.store.retention import RetentionSettings
from glimpser.shared.models import RetentionPolicy
from tests.helpers import wait_for
from tests.hub.support import FakeLink, capture, settings, state_bytes, template_body

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
T0 = 1_700_000_000.0


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def hub_settings(tmp_path: Path) -> HubSettings:
    return settings(data_dir=tmp_path / "hub", agents=["a1"])


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, hub_settings: HubSettings, link: FakeLink
) -> AsyncIterator[Client]:
    c = await aiohttp_client(create_app(hub_settings, link=link))
    router = c.app[HUB].router
    router.route("glimpser/a1/available", b"online")
    router.route("glimpser/a1/cam/state", state_bytes("a1", "cam"))
    router.route("glimpser/a1/door/state", state_bytes("a1", "door"))
    yield c


def _hub(client: Client) -> Hub:
    return client.app[HUB]


async def _ingest(client: Client, stream: str, *payloads: bytes) -> None:
    for payload in payloads:
        _hub(client).router.route(f"glimpser/a1/{stream}/capture", payload)
    await _hub(client).jobs.join()


async def _json(resp: aiohttp.ClientResponse, status: int = 200) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


def _cid(n: int) -> str:
    return f"cap{n:08d}"


def _files(hub: Hub) -> set[str]:
    return {rel for rel, _ in hub.captures.files()}


async def test_capture_is_listed_downloadable_and_deduplicated(client: Client) -> None:
    payload = capture(_cid(1), captured_at=T0)
    await _ingest(client, "cam", payload, payload, b"not a jpeg")
    hub = _hub(client)
    assert hub.metrics.rejected["not_jpeg"] == 1
    assert hub.metrics.captures_saved == 1
    page = await _json(await client.get("/api/captures"))
    [item] = page["items"]
    assert page["next_cursor"] is None
    assert (item["id"], item["stream_id"], item["agent_id"]) == (_cid(1), "cam", "a1")
    assert item["template_id"] == "cam" and item["reason"] == "interval"
    assert (item["width"], item["height"]) == (32, 24)
    assert item["captured_at"].startswith("2023-11-14T22:13:20")
    resp = await client.get(item["image_url"])
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert await resp.read() == payload
    assert await _json(await client.get(f"/api/captures/{_cid(1)}")) == item


async def test_capture_without_metadata_is_rejected(client: Client) -> None:
    from tests.hub.support import jpeg

    await _ingest(client, "cam", jpeg())
    assert _hub(client).metrics.rejected["invalid_payload"] == 1
    assert (await _json(await client.get("/api/captures")))["items"] == []


async def test_filters_and_cursor(client: Client) -> None:
    await _ingest(client, "cam", *(capture(_cid(i), captured_at=T0 + i) for i in range(5)))
    await _ingest(client, "door", capture(_cid(9), captured_at=T0 + 2.5))

    async def ids(query: str) -> list[str]:
        page = await _json(await client.get(f"/api/captures?{query}"))
        return [i["id"] for i in page["items"]]

    assert await ids("stream=door") == [_cid(9)]
    assert await ids("stream=a1.cam&limit=2") == [_cid(4), _cid(3)]
    since = quote(datetime.fromtimestamp(T0 + 1, UTC).isoformat())
    until = datetime.fromtimestamp(T0 + 3, UTC).isoformat()  # unescaped "+": arrives as a space
    assert await ids(f"stream=cam&since={since}&until={until}") == [_cid(2), _cid(1)]

    seen: list[str] = []
    cursor = ""
    while True:
        page = await _json(await client.get(f"/api/captures?limit=2&cursor={cursor}"))
        seen += [i["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == [_cid(4), _cid(3), _cid(9), _cid(2), _cid(1), _cid(0)]

    for bad in ("limit=0", "limit=501", "since=yesterday", "since=2024-01-01T00:00:00",
                "cursor=garbage", "pinned=maybe", "stream=../x"):  # fmt: skip
        resp = await client.get(f"/api/captures?{bad}")
        assert resp.status == 400, bad


async def test_pin_unpin_delete(client: Client) -> None:
    await _ingest(client, "cam", capture(_cid(1), captured_at=T0))
    hub = _hub(client)
    pinned = await _json(await client.post(f"/api/captures/{_cid(1)}/pin", json={"pinned": True}))
    assert pinned["pinned"] is True
    only = await _json(await client.get("/api/captures?pinned=true"))
    assert [i["id"] for i in only["items"]] == [_cid(1)]
    for body in ({"pinned": "yes"}, {"pinned": True, "x": 1}):
        await _json(await client.post(f"/api/captures/{_cid(1)}/pin", json=body), 422)
    unpinned = await _json(
        await client.post(f"/api/captures/{_cid(1)}/pin", json={"pinned": False})
    )
    assert unpinned["pinned"] is False
    assert len(_files(hub)) == 1
    await _json(await client.delete(f"/api/captures/{_cid(1)}"))
    assert _files(hub) == set()
    await _json(await client.get(f"/api/captures/{_cid(1)}"), 404)
    await _json(await client.get(f"/api/captures/{_cid(1)}/image"), 404)
    await _json(await client.delete(f"/api/captures/{_cid(1)}"), 404)
    await _json(await client.get("/api/captures/..%2F..%2Fetc"), 400)
    await _json(await client.post(f"/api/captures/{_cid(2)}/pin", json={"pinned": True}), 404)


async def _aged(client: Client, count: int, size_shades: bool = False) -> list[str]:
    """``count`` captures one day apart, oldest first, saved long enough ago to be deletable."""
    now = time.time()
    payloads = [capture(_cid(i), captured_at=now - (count - i) * 86400) for i in range(count)]
    await _ingest(client, "cam", *payloads)
    hub = _hub(client)
    # Backdate saved_at so the "still being handed over" guard does not spare them.
    await hub.db.run(lambda c: c.execute("UPDATE captures SET saved_at = saved_at - 3600"))
    return [_cid(i) for i in range(count)]


async def _remaining(client: Client) -> list[str]:
    page = await _json(await client.get("/api/captures?limit=500"))
    return sorted(i["id"] for i in page["items"])


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        (RetentionPolicy(max_count=2), [3, 4]),
        (RetentionPolicy(max_age_days=2.5), [3, 4]),
        (RetentionPolicy(max_bytes=1024), None),  # bytes: checked below against file sizes
    ],
)
async def test_retention_removes_oldest_unpinned_files_and_rows_together(
    client: Client, policy: RetentionPolicy, kept: list[int] | None
) -> None:
    ids = await _aged(client, 5)
    hub = _hub(client)
    await _json(await client.post(f"/api/captures/{ids[0]}/pin", json={"pinned": True}))
    hub.retention.settings = RetentionSettings(global_policy=policy)
    result = await hub.retention.run_once(with_reconcile=True)
    remaining = await _remaining(client)
    assert ids[0] in remaining, "a pinned capture was removed"
    if kept is not None:
        assert remaining == sorted([ids[0], *(ids[i] for i in kept)])
    else:
        sizes = {r.id: r.size for r in await hub.captures.index.rows()}
        assert sum(s for cid, s in sizes.items() if cid != ids[0]) <= 1024
        assert remaining[-1] == ids[-1], "the newest capture should be kept"
    assert {r.id for r in result.removed} == set(ids) - set(remaining)
    rows = {r.path for r in await hub.captures.index.rows()}
    assert rows == _files(hub), "files and rows out of step"


async def test_per_template_retention(client: Client) -> None:
    hub = _hub(client)
    body = template_body("cam", agent_id="a1", capture={"retention": {"max_count": 1}})
    await _json(await client.post("/api/templates", json=body), 201)
    ids = await _aged(client, 3)
    await hub.retention.run_once()
    assert await _remaining(client) == [ids[-1]]
    assert len(_files(hub)) == 1


async def test_captures_survive_a_restart(
    aiohttp_client: ClientFactory, hub_settings: HubSettings
) -> None:
    first = await aiohttp_client(create_app(hub_settings, link=FakeLink()))
    await _ingest(first, "cam", capture(_cid(1), captured_at=T0))
    await _json(await first.post(f"/api/captures/{_cid(1)}/pin", json={"pinned": True}))
    await first.close()
    second = await aiohttp_client(create_app(hub_settings, link=FakeLink()))
    [item] = (await _json(await second.get("/api/captures")))["items"]
    assert item["id"] == _cid(1) and item["pinned"] is True
    assert (await second.get(item["image_url"])).status == 200


async def test_snapshot_waits_for_the_capture_with_its_request_id(
    client: Client, link: FakeLink
) -> None:
    async def agent() -> None:
        await wait_for(lambda: link.commands, message="snapshot command")
        agent_id, stream, command = link.commands[-1]
        assert (agent_id, stream, command.action) == ("a1", "cam", "snapshot")
        router = _hub(client).router
        router.route("glimpser/a1/cam/capture", capture(_cid(7)))  # an unrelated interval one
        router.route(
            "glimpser/a1/cam/capture",
            capture(_cid(8), request_id=command.request_id, reason="manual"),
        )

    task = asyncio.create_task(agent())
    record = await _json(await client.post("/api/streams/cam/snapshot"), 201)
    await task
    assert record["id"] == _cid(8) and record["reason"] == "manual"
    assert (await client.get(record["image_url"])).status == 200


async def test_snapshot_errors(client: Client, link: FakeLink) -> None:
    resp = await client.post("/api/streams/cam/snapshot")
    assert resp.status == 504 and "no snapshot" in (await resp.json())["error"]

    async def failing_agent() -> None:
        await wait_for(lambda: len(link.commands) == 2)
        request_id = link.commands[-1][2].request_id
        _hub(client).router.route(
            "glimpser/a1/cam/state",
            state_bytes("a1", "cam", status="error", error="no camera", request_id=request_id),
        )

    task = asyncio.create_task(failing_agent())
    resp = await client.post("/api/streams/cam/snapshot")
    await task
    assert resp.status == 502 and "no camera" in (await resp.json())["error"]

    _hub(client).router.route("glimpser/a1/available", b"offline")
    resp = await client.post("/api/streams/cam/snapshot")
    assert resp.status == 503 and "offline" in (await resp.json())["error"]
    assert (await client.post("/api/streams/ghost/snapshot")).status == 404


async def test_a_full_queue_drops_new_captures_loudly(
    aiohttp_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub_settings = settings(data_dir=tmp_path / "hub", job_queue_size=10)
    client = await aiohttp_client(create_app(hub_settings, link=FakeLink()))
    hub = _hub(client)
    # route() is synchronous: the worker cannot take a job before the loop runs again.
    for i in range(15):
        hub.router.route("glimpser/a1/cam/capture", capture(_cid(i), captured_at=T0 + i))
    await hub.jobs.join()
    assert hub.metrics.jobs_dropped["capture"] == 5
    assert sum("dropped capture" in r.message for r in caplog.records) == 5
    assert len(await _remaining(client)) == 10
    text = await (await client.get("/metrics")).text()
    assert 'glimpser_hub_jobs_dropped_total{kind="capture"} 5' in text
