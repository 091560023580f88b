"""A template on a real agent becomes a live stream on a real hub, over a real broker.

Every test here runs against both brokers of the ``broker`` fixture: a Mosquitto process and
the embedded amqtt broker, each started by the fixture on a free loopback port.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import cv2
import numpy as np
import pytest

from tests.e2e.deploy import deployed, dumps, eventually, template

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_template_becomes_active_stream(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("yard")]) as dep:
        info = await dep.wait_status("yard", "active")
        assert info["agent_id"] == "edge-1"
        assert info["template_id"] == "yard"
        assert info["source"] == "test"
        assert info["agent_online"] is True
        first = _ts(info["last_frame_at"])

        # Measured, not configured: wait for the agent's fps window to fill.
        async def measured() -> dict[str, Any] | None:
            now = await dep.stream("yard")
            return now if now and now["fps"] >= 6 else None

        info = await eventually(measured, timeout=15)
        assert info["resolution"] == "320x240"
        assert 6 <= info["fps"] <= 12, info
        assert _ts(info["last_frame_at"]) > first
        status, single = await dep.get_json("/api/streams/yard")
        assert status == 200 and single["id"] == "yard"


async def test_snapshot_and_mjpeg_with_a_real_client(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("gate")]) as dep:
        await dep.wait_status("gate", "active")
        assert dep.http is not None
        async with dep.http.get(f"{dep.url}/api/stream/gate/snapshot") as resp:
            assert resp.status == 200
            assert resp.content_type == "image/jpeg"
            body = await resp.read()
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (240, 320)

        frames = await asyncio.to_thread(_read_mjpeg, f"{dep.url}/api/stream/gate/mjpeg", 12)
        assert len(frames) == 12
        assert all(f.shape[:2] == (240, 320) for f in frames)
        # The motion pattern moves: the first and last frames differ visibly.
        diff = cv2.absdiff(frames[0], frames[-1])
        assert float(diff.mean()) > 1.0


def _read_mjpeg(url: str, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    try:
        assert cap.isOpened(), f"OpenCV could not open {url}"
        frames = []
        for _ in range(count):
            ok, frame = cap.read()
            assert ok, "OpenCV stopped reading the MJPEG stream"
            frames.append(frame)
        return frames
    finally:
        cap.release()


async def test_stop_and_start(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("door")]) as dep:
        await dep.wait_status("door", "active")
        status, body = await dep.call("POST", "/api/streams/door/stop")
        assert status == 200 and body["success"] is True, body
        info = await dep.wait_status("door", "inactive")
        stopped_at = info["last_frame_at"]
        await asyncio.sleep(1.5)
        later = await dep.stream("door")
        assert later is not None and later["last_frame_at"] == stopped_at, "still capturing"

        status, body = await dep.call("POST", "/api/streams/door/start")
        assert status == 200 and body["success"] is True, body
        await dep.wait_status("door", "active")

        status, body = await dep.call("DELETE", "/api/streams/door/stop")
        assert status == 200 and body["success"] is True, body
        await dep.wait_status("door", "inactive")


async def _count_frames(host: str, port: int, topic: str, seconds: float) -> int:
    count = 0
    async with aiomqtt.Client(host, port, identifier=f"counter-{port}-{id(topic)}") as client:
        await client.subscribe(topic, qos=0)

        async def consume() -> None:
            nonlocal count
            async for _message in client.messages:
                count += 1

        task = asyncio.create_task(consume())
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return count


async def test_frames_follow_viewer_demand(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("lane")]) as dep:
        await dep.wait_status("lane", "active")
        topic = "glimpser/edge-1/lane/frame"
        idle = await _count_frames(broker.host, broker.port, topic, 6)
        # keep-alive 2 s over 6 s: 3, with one of slack for window alignment.
        assert idle <= 4, f"{idle} frames in 6 s with no viewer"

        assert dep.http is not None
        async with dep.http.get(
            f"{dep.url}/api/stream/lane/mjpeg", timeout=aiohttp.ClientTimeout(total=60)
        ) as resp:
            assert resp.status == 200
            drain = asyncio.create_task(_drain(resp))
            await asyncio.sleep(1.0)  # lease reaches the agent
            watched = await _count_frames(broker.host, broker.port, topic, 5)
            drain.cancel()
        assert watched >= 30, f"only {watched} frames in 5 s at 10 fps with a viewer"


async def _drain(resp: aiohttp.ClientResponse) -> None:
    async for _chunk in resp.content.iter_any():
        pass


async def test_unknown_stream_is_404_json(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("porch")]) as dep:
        await dep.wait_status("porch", "active")
        for method, path in [
            ("GET", "/api/streams/nope"),
            ("POST", "/api/streams/nope/start"),
            ("POST", "/api/streams/nope/stop"),
            ("GET", "/api/stream/nope/snapshot"),
            ("GET", "/api/stream/nope/mjpeg"),
        ]:
            status, body = await dep.call(method, path)
            assert status == 404, (method, path, body)
            assert "nope" in body["error"]


async def test_bad_input_is_rejected_and_counted(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("shed")]) as dep:
        await dep.wait_status("shed", "active")
        before = await dep.metrics()
        async with aiomqtt.Client(broker.host, broker.port, identifier="vandal") as client:
            base = "glimpser/edge-1/shed"
            await client.publish(f"{base}/frame", b"not a jpeg at all")
            await client.publish(f"{base}/frame", b"\xff\xd8" + b"\x00" * 100)
            await client.publish(f"{base}/frame", b"\xff\xd8" + b"\x00" * (17 * 1024 * 1024))
            await client.publish(f"{base}/state", b"{not json", qos=1)
            await client.publish(f"{base}/state", dumps({"status": 42}), qos=1)
            await client.publish("glimpser/Bad.Id/x/state", b"{}", qos=1)
            await client.publish(f"{base}/set", b"\x00\x01garbage", qos=1)
            await client.publish(f"{base}/set", dumps({"action": "explode"}), qos=1)
            await client.publish(f"{base}/demand", dumps({"ttl": "forever"}), qos=1)
            await client.publish("glimpser/edge-1/ghost/set", dumps({"action": "start"}), qos=1)

        async def rejected_more() -> float | None:
            now = await dep.metrics()
            name = "glimpser_hub_messages_rejected_total"
            total = _sum(now, name) - _sum(before, name)
            return total if total >= 4 else None

        await eventually(rejected_more, timeout=10)
        state = await _agent_state(broker.host, broker.port, "edge-1")

        async def agent_counted() -> int | None:
            st = await _agent_state(broker.host, broker.port, "edge-1")
            return st["rejected_messages"] if st["rejected_messages"] >= 3 else None

        await eventually(agent_counted, timeout=25, interval=1)
        assert state["agent_id"] == "edge-1"
        assert dep.hub is not None and dep.hub.alive
        assert dep.agent is not None and dep.agent.alive
        # The real stream is unharmed.
        await dep.wait_status("shed", "active")
        status, _ = await dep.get_json("/api/streams/shed")
        assert status == 200


def _sum(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k.split("{")[0].startswith(name))


async def _agent_state(host: str, port: int, agent: str) -> dict[str, Any]:
    import json

    async with aiomqtt.Client(host, port, identifier=f"peek-{agent}") as client:
        await client.subscribe(f"glimpser/{agent}/state", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return json.loads(message.payload)  # type: ignore[no-any-return]
    raise AssertionError("no retained agent state")


async def test_broker_restart_recovers(broker: Any, tmp_path: Path) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [template("dock")]) as dep:
        await dep.wait_status("dock", "active")
        await broker.stop()
        await asyncio.sleep(2)
        await broker.start()
        # Mosquitto here keeps no persistence: everything is rebuilt from fresh publications.
        info = await dep.wait_status("dock", "active", timeout=45)
        first = _ts(info["last_frame_at"])

        async def advancing() -> bool:
            now = await dep.stream("dock")
            return bool(now and now["status"] == "active" and _ts(now["last_frame_at"]) > first)

        await eventually(advancing, timeout=15)
        assert dep.hub is not None and dep.hub.alive
        assert dep.agent is not None and dep.agent.alive


