"""Alert routes answer validation errors in the same shape as the other routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.http.app import create_app
from tests.hub.support import FakeLink, settings

Client = TestClient[web.Request, web.Application]


async def test_invalid_rule_lists_each_field(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(data_dir=tmp_path), link=FakeLink()))
    resp = await client.post(
        "/api/alert-rules", json={"name": "x", "events": ["explosion"], "channels": ["nope"]}
    )
    assert resp.status == 422
    body = await resp.json()
    fields = [p["field"] for p in body["detail"]]
    assert fields == ["events.0", "channels.0"], body
    assert "events.0" in body["error"] and "channels.0" in body["error"]
    assert await (await client.get("/api/alert-rules")).json() == []
