"""Templates managed on the hub run on a real agent; their captures are kept as history."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.e2e.deploy import Deployment, deployed, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

HUB = {"agents": ["edge-1"], "retention": {"interval": 1, "fresh_seconds": 1}}


def hub_template(stream_id: str, **extra: Any) -> dict[str, Any]:
    """A hub-managed test-pattern template assigned to edge-1."""
    body: dict[str, Any] = {
        "id": stream_id,
        "name": stream_id.replace("-", " ").title(),
        "agent_id": "edge-1",
        "source": {"kind": "test", "pattern": "motion", "width": 320, "height": 240},
        "fps": 5,
        "keepalive": 2,
    }
    body.update(extra)
    return body


async def _create(dep: Deployment, body: dict[str, Any]) -> dict[str, Any]:
    status, record = await dep.send("POST", "/api/templates", body)
    assert status == 201, record
    return record  # type: ignore[no-any-return]


async def test_create_change_delete_through_the_api(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [], HUB) as dep:
        await _create(dep, hub_template("porch"))
        await _create(dep, hub_template("garden"))
        porch = await dep.wait_status("porch", "active")
        garden = await dep.wait_status("garden", "active")
        assert porch["configured_fps"] == 5

        status, record = await dep.send("PATCH", "/api/templates/porch", {"fps": 2})
        assert status == 200, record

        async def porch_at_2fps() -> dict[str, Any] | None:
            info = await dep.stream("porch")
            ok = info and info["status"] == "active" and info["configured_fps"] == 2
            return info if ok else None

        await eventually(porch_at_2fps, timeout=20)
        after = await dep.stream("garden")
        assert after is not None and after["started_at"] == garden["started_at"], "garden touched"

        status, _ = await dep.send("DELETE", "/api/templates/porch")
        assert status == 200

        async def porch_gone() -> bool:
            status, body = await dep.get_json("/api/streams")
            return status == 200 and [s["id"] for s in body] == ["garden"]

        await eventually(porch_gone, timeout=20)
        status, _ = await dep.get_json("/api/streams/porch")
        assert status == 404
        await dep.wait_status("garden", "active")


async def test_bad_templates_are_rejected_and_nothing_is_stored(
    broker: Any, tmp_path: Path
) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [], HUB) as dep:
        await _create(dep, hub_template("yard"))
        bad: list[tuple[Any, int, str]] = [
            ({**hub_template("a1"), "source": {"kind": "teleport"}}, 422, "source"),
            ({**hub_template("a2"), "fps": 500}, 422, "fps"),
            ({**hub_template("a3"), "agent_id": "nobody"}, 422, "agent_id"),
            ({**hub_template("a4"), "name": "Yard"}, 409, "name"),
            ({**hub_template("a5"), "name": "../../etc/passwd"}, 422, "name"),
            ({**hub_template("a6"), "id": "../x"}, 422, "id"),
            (b"{not json", 400, ""),
        ]
        for body, code, field in bad:
            status, answer = await dep.send("POST", "/api/templates", body)
            assert status == code, (body, answer)
            assert field in str(answer), (field, answer)
        status, listing = await dep.get_json("/api/templates")
        assert status == 200
        assert [r["template"]["id"] for r in listing["items"]] == ["yard"]
        assert dep.hub is not None and dep.hub.alive


async def test_captures_follow_policy_and_retention(broker: Any, tmp_path: Path) -> None:
    tpl = hub_template(
        "drive", capture={"interval": 1, "retention": {"max_count": 3}}, width=160, height=120
    )
    async with deployed(tmp_path, broker.host, broker.port, [], HUB) as dep:
        await _create(dep, tpl)
        await dep.wait_status("drive", "active")

        async def three() -> list[dict[str, Any]] | None:
            status, page = await dep.get_json("/api/captures?stream=drive")
            assert status == 200, page
            return page["items"] if len(page["items"]) >= 3 else None

        items = await eventually(three, timeout=20)
        first = items[0]
        assert first["reason"] == "interval" and (first["width"], first["height"]) == (160, 120)
        assert dep.http is not None
        async with dep.http.get(f"{dep.url}/api/captures/{first['id']}/image") as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
            image = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (120, 160)

        pin = f"/api/captures/{first['id']}/pin"
        status, pinned = await dep.send("POST", pin, {"pinned": True})
        assert status == 200 and pinned["pinned"] is True
        await asyncio.sleep(5)  # more captures arrive; retention passes every second

        async def trimmed() -> list[dict[str, Any]] | None:
            _status, page = await dep.get_json("/api/captures?stream=drive&limit=100")
            items = page["items"]
            unpinned = [c for c in items if not c["pinned"]]
            # max_count 3, plus at most one capture younger than fresh_seconds.
            return items if len(unpinned) <= 4 else None

        items = await eventually(trimmed, timeout=20)
        assert first["id"] in {c["id"] for c in items}, "the pinned capture was deleted"
        _assert_no_orphans(tmp_path / "hub-data", {c["path"] for c in items}, slack=2)


def _assert_no_orphans(data: Path, indexed: set[str], slack: int) -> None:
    files = {str(p.relative_to(data)) for p in (data / "captures").rglob("*.jpg")}
    # A capture or two may land between the listing and the directory walk.
    assert indexed <= files, f"rows without files: {indexed - files}"
    assert len(files - indexed) <= slack, f"files without rows: {files - indexed}"


async def test_hub_restart_keeps_templates_desired_state_and_history(
    broker: Any, tmp_path: Path
) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [], HUB) as dep:
        await _create(dep, hub_template("gate"))
        await _create(dep, hub_template("shed"))
        await dep.wait_status("gate", "active")
        status, capture = await dep.send("POST", "/api/streams/gate/snapshot")
        assert status == 201, capture
        assert capture["reason"] == "manual"
        status, body = await dep.send("POST", "/api/streams/shed/stop")
        assert status == 200 and body["success"], body
        await dep.wait_status("shed", "inactive")

        await dep.restart_hub()

        status, listing = await dep.get_json("/api/templates")
        assert sorted(r["template"]["id"] for r in listing["items"]) == ["gate", "shed"]
        shed = next(r for r in listing["items"] if r["template"]["id"] == "shed")
        assert shed["desired"] == "stopped"
        status, page = await dep.get_json("/api/captures?stream=gate")
        assert capture["id"] in {c["id"] for c in page["items"]}
        await dep.wait_status("gate", "active")
        info = await dep.wait_status("shed", "inactive")
        assert info["desired"] == "stopped"

        # The agent restarting keeps the stopped stream stopped too (desired is durable).
        await dep.restart_agent()
        await dep.wait_status("gate", "active", timeout=30)
        info = await dep.wait_status("shed", "inactive")
        assert info["desired"] == "stopped"


async def test_agent_restart_with_broker_down_runs_cached_streams(
    broker: Any, tmp_path: Path
) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [], HUB) as dep:
        await _create(dep, hub_template("dock"))
        before = await dep.wait_status("dock", "active")

        await dep.restart_agent(before_start=broker.stop)
        assert dep.agent is not None

        async def running_offline() -> bool:
            assert dep.agent is not None and dep.agent.alive, dep.agent.tail() if dep.agent else ""
            return "started ['dock']" in dep.agent.log.read_text(errors="replace").split(
                "agent edge-1 stopped"
            )[-1]

        await eventually(running_offline, timeout=20)
        await asyncio.sleep(2)
        await broker.start()

        async def fresh() -> dict[str, Any] | None:
            info = await dep.stream("dock")
            ok = info and info["status"] == "active" and info["started_at"] > before["started_at"]
            return info if ok else None

        await eventually(fresh, timeout=45)


async def test_agent_yaml_templates_are_listed_read_only(broker: Any, tmp_path: Path) -> None:
    local = hub_template("barn")
    del local["agent_id"]
    async with deployed(tmp_path, broker.host, broker.port, [local], HUB) as dep:
        await dep.wait_status("barn", "active")

        async def listed() -> dict[str, Any] | None:
            status, record = await dep.get_json("/api/templates/barn")
            return record if status == 200 else None

        record = await eventually(listed, timeout=15)
        assert record["owner"] == "agent"
        assert record["template"]["agent_id"] == "edge-1"
        status, body = await dep.send("PATCH", "/api/templates/barn", {"fps": 1})
        assert status == 409, body
        assert "read-only" in body["error"]
        status, body = await dep.send("DELETE", "/api/templates/barn")
        assert status == 409, body
        await dep.wait_status("barn", "active")
