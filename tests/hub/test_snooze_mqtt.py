"""Snoozing alert rules and streams over MQTT (``glimpser/hub/snooze``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from glimpser.hub.http.app import create_app
from glimpser.hub.http.keys import HUB
from tests.hub.support import FakeLink, settings

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
TOPIC = "glimpser/hub/snooze"


async def test_snooze_rule_and_reject_bad_requests(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    app = create_app(settings(data_dir=tmp_path), link=FakeLink())
    client = await aiohttp_client(app)
    hub = app[HUB]
    resp = await client.post(
        "/api/alert-rules",
        json={"name": "m", "events": ["motion"], "channels": ["json://127.0.0.1:9/x"]},
    )
    assert resp.status == 201, await resp.text()
    rule = await resp.json()
    assert rule["snoozed_until"] is None

    before = dict(hub.metrics.rejected)
    hub.router.route(TOPIC, json.dumps({"rule": rule["id"], "minutes": 30}).encode())
    hub.router.route(TOPIC, b"{not json")
    hub.router.route(TOPIC, json.dumps({"rule": "a", "stream": "b", "minutes": 1}).encode())
    hub.router.route(TOPIC, json.dumps({"stream": "cam", "minutes": -5}).encode())
    await hub.jobs.join()

    resp = await client.get(f"/api/alert-rules/{rule['id']}")
    assert (await resp.json())["snoozed_until"] is not None
    rejected = sum(hub.metrics.rejected.values()) - sum(before.values())
    assert rejected == 3

    hub.router.route(TOPIC, json.dumps({"rule": rule["id"], "minutes": 0}).encode())
    await hub.jobs.join()
    resp = await client.get(f"/api/alert-rules/{rule['id']}")
    assert (await resp.json())["snoozed_until"] is None
