"""/api/templates over a real in-process server and a real SQLite file; MQTT is FakeLink."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.config import HubSettings
from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB
from glimpser.shared.models import AgentConfig
from tests.helpers import wait_for
from tests.hub.support import FakeLink, settings, state_bytes, template_body

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def hub_settings(tmp_path: Path) -> HubSettings:
    return settings(data_dir=tmp_path / "hub", agents=["a1", "a2"])


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, hub_settings: HubSettings, link: FakeLink
) -> AsyncIterator[Client]:
    yield await aiohttp_client(create_app(hub_settings, link=link))


async def _ok(resp: aiohttp.ClientResponse, status: int | None = None) -> Any:
    """The JSON body of a success: ``status`` exactly when given, else any 2xx."""
    body = await resp.json()
    assert resp.status == status if status else 200 <= resp.status < 300, body
    return body


async def _error(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json()
    assert resp.status == status, body
    assert body["status"] == status and body["error"]
    return body


async def _ids(client: Client, query: str = "") -> list[str]:
    page = await _ok(await client.get(f"/api/templates{query}"))
    return [item["template"]["id"] for item in page["items"]]


def _configs(link: FakeLink, agent: str) -> list[AgentConfig]:
    topic = f"glimpser/{agent}/config"
    return [AgentConfig.model_validate_json(p) for t, p in link.retained if t == topic]


async def test_create_get_update_patch_delete(client: Client) -> None:
    created = await _ok(await client.post("/api/templates", json=template_body("cam1")), 201)
    assert created["template"]["id"] == "cam1" and created["owner"] == "hub"
    assert created["desired"] == "started" and created["revision"] == 1
    assert await _ok(await client.get("/api/templates/cam1")) == created

    body = template_body("cam1", fps=5, agent_id="a1")
    replaced = await _ok(await client.put("/api/templates/cam1", json=body))
    assert replaced["template"]["fps"] == 5 and replaced["revision"] == 2

    patched = await _ok(await client.patch("/api/templates/cam1", json={"tags": ["door"]}))
    assert patched["template"]["fps"] == 5 and patched["template"]["tags"] == ["door"]
    # A source of another kind replaces the old one whole; null resets a field to its default.
    source = {"kind": "http", "url": "http://cam.local/snap.jpg"}
    patched = await _ok(
        await client.patch("/api/templates/cam1", json={"source": source, "fps": None})
    )
    assert patched["template"]["source"] == source and patched["template"]["fps"] is None

    assert (await _ok(await client.delete("/api/templates/cam1")))["success"] is True
    await _error(await client.get("/api/templates/cam1"), 404)
    assert await _ids(client) == []


async def test_id_from_the_name_is_made_unique(client: Client) -> None:
    first = await _ok(await client.post("/api/templates", json=template_body(name="Front Door")))
    second_body = template_body(name="Front  door!")
    second = await _ok(await client.post("/api/templates", json=second_body), 201)
    assert first["template"]["id"] == "front-door"
    assert second["template"]["id"] == "front-door-2"
    third = await _ok(await client.post("/api/templates", json=template_body(name="Export")))
    assert third["template"]["id"] == "export-2"


async def test_paging_search_and_filters(client: Client) -> None:
    for i in range(7):
        tags = ["even"] if i % 2 == 0 else []
        agent = "a1" if i < 4 else "a2"
        body = template_body(f"cam{i}", tags=tags, agent_id=agent, notes=f"note {i}")
        await _ok(await client.post("/api/templates", json=body), 201)
    page = await _ok(await client.get("/api/templates?offset=2&limit=3"))
    assert (page["total"], page["offset"], page["limit"]) == (7, 2, 3)
    assert [i["template"]["id"] for i in page["items"]] == ["cam2", "cam3", "cam4"]
    assert await _ids(client, "?search=NOTE%205") == ["cam5"]
    assert await _ids(client, "?agent=a2") == ["cam4", "cam5", "cam6"]
    assert await _ids(client, "?tag=even&agent=a1") == ["cam0", "cam2"]
    await _error(await client.get("/api/templates?limit=501"), 400)
    await _error(await client.get("/api/templates?offset=-1"), 400)
    await _error(await client.get("/api/templates?agent=Bad!"), 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (template_body("x", source={"kind": "ftp"}), "source"),
        (template_body("x", fps=500), "fps"),
        (template_body("x", fps=0), "fps"),
        (template_body("x", source={"kind": "rtsp", "url": "http://nope"}), "source.url"),
        (template_body("x", name="../../etc/passwd"), "name"),
        (template_body("x", name="a/b"), "name"),
        (template_body("../evil"), "id"),
        (template_body("x", agent_id="ghost"), "agent_id"),
        (template_body("x", colour="red"), "colour"),
        (template_body("x", capture={"interval": 0.1}), "capture.interval"),
        (template_body("export"), "id"),
    ],
)
async def test_bad_templates_are_422_naming_the_field_and_nothing_is_stored(
    client: Client, body: dict[str, Any], field: str
) -> None:
    error = await _error(await client.post("/api/templates", json=body), 422)
    assert field in [d["field"] for d in error["detail"]], error
    assert await _ids(client) == []


async def test_unknown_agent_lists_the_known_ones(client: Client) -> None:
    client.app[HUB].router.route("glimpser/edge-9/available", b"online")
    body = template_body("x", agent_id="ghost")
    error = await _error(await client.post("/api/templates", json=body), 422)
    assert "a1, a2, edge-9" in error["error"]
    assert error["detail"][0]["field"] == "agent_id"


async def test_malformed_and_conflicting_input(client: Client) -> None:
    await _error(await client.post("/api/templates", data=b"{not json"), 400)
    await _error(await client.post("/api/templates", data=b"[1, 2]"), 422)
    await _error(await client.post("/api/templates", data=b""), 422)
    await _ok(await client.post("/api/templates", json=template_body("cam1")), 201)
    dup_id = await _error(
        await client.post("/api/templates", json=template_body("cam1", name="Other")), 409
    )
    assert dup_id["detail"][0]["field"] == "id"
    dup_name = await _error(
        await client.post("/api/templates", json=template_body("cam2", name="CAM1")), 409
    )
    assert dup_name["detail"][0]["field"] == "name"
    mismatch = await _error(
        await client.put("/api/templates/cam1", json=template_body("cam9")), 422
    )
    assert mismatch["detail"][0]["field"] == "id"
    await _error(await client.put("/api/templates/nope", json=template_body("nope")), 404)
    await _error(await client.patch("/api/templates/cam1", json={"fps": -1}), 422)
    await _error(await client.get("/api/templates/Bad..Id"), 400)
    assert await _ids(client) == ["cam1"]
    assert (await _ok(await client.get("/api/templates/cam1")))["revision"] == 1


async def test_agent_owned_templates_are_read_only(client: Client) -> None:
    local = {"templates": [template_body("yard", source={"kind": "test", "pattern": "noise"})]}
    hub = client.app[HUB]
    hub.router.route("glimpser/a1/templates", json.dumps(local).encode())
    await hub.jobs.join()
    record = await _ok(await client.get("/api/templates/yard"))
    assert record["owner"] == "agent" and record["template"]["agent_id"] == "a1"
    for resp in (
        await client.put("/api/templates/yard", json=template_body("yard")),
        await client.patch("/api/templates/yard", json={"fps": 2}),
        await client.delete("/api/templates/yard"),
    ):
        assert "read-only" in (await _error(resp, 409))["error"]
    doc = await _ok(await client.get("/api/templates/export"))
    assert doc["templates"] == []  # agent-owned templates live in the agent's YAML

    # A clash with a hub template is skipped and counted; a dropped entry is deleted.
    await _ok(await client.post("/api/templates", json=template_body("cam1")), 201)
    local["templates"].append(template_body("cam1"))
    hub.router.route("glimpser/a1/templates", json.dumps(local).encode())
    hub.router.route("glimpser/a1/templates", json.dumps({"templates": []}).encode())
    await hub.jobs.join()
    assert hub.metrics.template_clashes == 1
    assert await _ids(client) == ["cam1"]
    hub.router.route("glimpser/a1/templates", b'{"templates": [{"id": 1}]}')
    assert hub.metrics.rejected["invalid_payload"] == 1


async def test_assignment_publishes_configs_only_for_affected_agents(
    client: Client, link: FakeLink
) -> None:
    await _ok(await client.post("/api/templates", json=template_body("c1", agent_id="a1")), 201)
    await _ok(await client.post("/api/templates", json=template_body("c2", agent_id="a2")), 201)
    [a1] = _configs(link, "a1")
    assert a1.revision == 1 and [t.id for t in a1.templates] == ["c1"]
    assert a1.desired == {"c1": "started"}

    await _ok(await client.patch("/api/templates/c1", json={"fps": 3}))
    assert [c.revision for c in _configs(link, "a1")] == [1, 2]
    assert _configs(link, "a1")[-1].templates[0].fps == 3
    assert len(_configs(link, "a2")) == 1  # untouched

    await _ok(await client.patch("/api/templates/c1", json={"agent_id": "a2"}))  # moved
    assert _configs(link, "a1")[-1].templates == []
    assert [t.id for t in _configs(link, "a2")[-1].templates] == ["c1", "c2"]

    resp = await client.post("/api/streams/c2/stop")  # a2 offline: stored, applied later
    body = await _ok(resp, 202)
    assert body["applied"] is False and "a2 is offline" in body["message"]
    last = _configs(link, "a2")[-1]
    assert last.desired["c2"] == "stopped" and last.revision == 3

    await _ok(await client.delete("/api/templates/c2"))
    assert [t.id for t in _configs(link, "a2")[-1].templates] == ["c1"]
    revisions = [c.revision for c in _configs(link, "a2")]
    assert revisions == sorted(set(revisions)), "every publish carries a new revision"


async def test_configs_wait_for_the_broker_and_go_out_on_reconnect(
    client: Client, link: FakeLink
) -> None:
    link.connected = False
    await _ok(await client.post("/api/templates", json=template_body("c1", agent_id="a1")), 201)
    assert link.retained == []
    link.connected = True
    client.app[HUB].assigner.reconnected()
    await wait_for(lambda: _configs(link, "a1"), message="config after reconnect")
    assert _configs(link, "a1")[-1].revision == 1


async def test_streams_cover_every_template(client: Client) -> None:
    router = client.app[HUB].router
    for tid, agent in (("live", "a1"), ("waiting", "a1"), ("away", "a2"), ("parked", None)):
        await _ok(await client.post("/api/templates", json=template_body(tid, agent_id=agent)))
    router.route("glimpser/a1/available", b"online")
    router.route("glimpser/a1/live/state", state_bytes("a1", "live"))
    router.route("glimpser/a1/extra/state", state_bytes("a1", "extra"))  # no template record
    streams = {s["id"]: s for s in await _ok(await client.get("/api/streams"))}
    assert set(streams) == {"live", "waiting", "away", "parked", "extra"}
    assert streams["live"]["status"] == "active" and streams["live"]["fps"] == 4.5
    assert streams["waiting"]["error"] == "waiting for agent a1 to run it"
    assert streams["away"]["error"] == "agent a2 is offline"
    assert streams["away"]["agent_online"] is False and streams["away"]["fps"] == 0.0
    assert streams["parked"]["error"] == "not assigned to an agent"
    assert streams["waiting"]["configured_fps"] == 1.0 and streams["waiting"]["resolution"] is None
    assert (await _ok(await client.get("/api/streams/a2.away")))["status"] == "inactive"
    await _error(await client.get("/api/streams/a1.away"), 404)

    # Execution status from the agent's report is kept on the template.
    router.route(
        "glimpser/a1/live/state", state_bytes("a1", "live", status="error", error="lens cap")
    )
    await client.app[HUB].jobs.join()
    record = await _ok(await client.get("/api/templates/live"))
    assert record["execution_status"] == "error"
    assert record["last_error_message"] == "lens cap"


async def test_execution_status_is_written_on_change_not_every_message(client: Client) -> None:
    hub = client.app[HUB]
    await _ok(await client.post("/api/templates", json=template_body("live", agent_id="a1")))
    writes: list[str] = []
    original = hub.templates.record_execution

    async def counting(*args: Any, **kw: Any) -> Any:
        writes.append(args[1])
        return await original(*args, **kw)

    hub.templates.record_execution = counting  # type: ignore[method-assign]
    for status in ("active", "active", "active", "error", "error", "active"):
        hub.router.route("glimpser/a1/live/state", state_bytes("a1", "live", status=status))
    await hub.jobs.join()
    assert writes == ["active", "error", "active"]


async def test_export_import_round_trip(client: Client) -> None:
    await _ok(await client.post("/api/templates", json=template_body("c1", agent_id="a1")))
    await _ok(await client.post("/api/streams/c1/stop"), 202)
    resp = await client.get("/api/templates/export")
    assert "attachment" in resp.headers["Content-Disposition"]
    doc = await _ok(resp)
    assert doc["templates"][0]["desired"] == "stopped"

    skipped = await _ok(await client.post("/api/templates/import", json=doc))
    assert skipped["skipped"] == ["c1"]
    copy = await _ok(await client.post("/api/templates/import?on_conflict=create_new", json=doc))
    assert copy["renamed"] == {"c1": "c1-2"}
    doc["templates"][0]["template"]["fps"] = 7
    over = await _ok(await client.post("/api/templates/import?on_conflict=overwrite", json=doc))
    assert over["overwritten"] == ["c1"]
    assert (await _ok(await client.get("/api/templates/c1")))["template"]["fps"] == 7

    await _error(await client.post("/api/templates/import?on_conflict=merge", json=doc), 400)
    bad = json.loads(json.dumps(doc))
    bad["templates"][0]["template"]["fps"] = 999
    error = await _error(await client.post("/api/templates/import", json=bad), 422)
    assert error["detail"][0]["field"] == "templates.0.template.fps"
    ghost = json.loads(json.dumps(doc))
    ghost["templates"][0]["template"] |= {"id": "new1", "name": "New", "agent_id": "ghost"}
    error = await _error(await client.post("/api/templates/import", json=ghost), 422)
    assert error["detail"][0]["field"] == "templates.0.template.agent_id"
    assert await _ids(client) == ["c1", "c1-2"]


async def test_templates_and_desired_survive_a_restart(
    aiohttp_client: ClientFactory, hub_settings: HubSettings
) -> None:
    first = await aiohttp_client(create_app(hub_settings, link=FakeLink()))
    await _ok(await first.post("/api/templates", json=template_body("c1", agent_id="a1")))
    await _ok(await first.post("/api/streams/c1/stop"), 202)
    await first.close()

    link = FakeLink()
    second = await aiohttp_client(create_app(hub_settings, link=link))
    record = await _ok(await second.get("/api/templates/c1"))
    assert record["desired"] == "stopped"
    # On (re)connect the hub republishes every agent's config from the store.
    await wait_for(lambda: _configs(link, "a1"), message="config republished after restart")
    assert _configs(link, "a1")[-1].desired == {"c1": "stopped"}


async def test_seed_templates_are_created_once(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    seeds = [template_body("demo", agent_id="a1")]
    hub_settings = settings(data_dir=tmp_path / "hub", seed_templates=seeds)
    first = await aiohttp_client(create_app(hub_settings, link=FakeLink()))
    assert await _ids(first) == ["demo"]
    await _ok(await first.delete("/api/templates/demo"))
    await first.close()
    second = await aiohttp_client(create_app(hub_settings, link=FakeLink()))
    assert await _ids(second) == [], "a deleted seed came back"
