"""GET /api/agents: the fleet as retained messages and the template store describe it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB
from glimpser.shared.models import AgentState, utcnow
from tests.hub.support import FakeLink, settings, template_body

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


async def test_agents_lists_seen_declared_and_assigned(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    app = create_app(settings(data_dir=tmp_path, agents=["spare", "a1"]), link=FakeLink())
    client = await aiohttp_client(app)
    hub = app[HUB]
    hub.router.route("glimpser/edge-1/available", b"online")
    state = AgentState(
        agent_id="edge-1", version="0.1.0", hostname="pi", started_at=utcnow(), uptime=3
    )
    hub.router.route("glimpser/edge-1/state", state.model_dump_json().encode())
    resp = await client.post("/api/templates", json=template_body("cam", agent_id="a1"))
    assert resp.status == 201, await resp.text()

    agents = await _get(client, "/api/agents")
    assert [a["id"] for a in agents] == ["a1", "edge-1", "spare"]
    a1, edge, spare = agents
    assert edge["online"] is True and edge["state"]["hostname"] == "pi"
    assert edge["config_revision"] is None and edge["in_sync"] is True
    assert a1["config_revision"] == 1 and a1["applied_revision"] is None
    assert a1["in_sync"] is False  # assigned but never acknowledged
    assert spare["online"] is False and spare["state"] is None

    assert (await _get(client, "/api/agents/edge-1"))["id"] == "edge-1"
    resp = await client.get("/api/agents/nobody")
    assert resp.status == 404 and "nobody" in (await resp.json())["error"]
    resp = await client.get("/api/agents/Bad.Id")
    assert resp.status == 400


async def _get(client: Client, path: str) -> Any:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return await resp.json()
