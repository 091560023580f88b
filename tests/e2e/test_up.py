"""``glimpser up``: the all-in-one box with the embedded broker, a hub and a demo agent."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from tests.e2e.deploy import eventually, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_up_runs_demo_and_stops_cleanly(tmp_path: Path) -> None:
    http_port, mqtt_port = free_port(), free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "glimpser.shared.cli", "up",
            "--data-dir", str(tmp_path / "data"),
            "--http-port", str(http_port), "--mqtt-port", str(mqtt_port),
            stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def demo_active() -> list[str] | None:
                assert proc.returncode is None, log.read_text()
                async with http.get(f"http://127.0.0.1:{http_port}/api/streams") as resp:
                    streams = await resp.json()
                active = sorted(s["id"] for s in streams if s["status"] == "active")
                return active if len(active) >= 2 else None

            active = await eventually(demo_active, timeout=60)
            assert active == ["motion-demo", "test-pattern"]
        # The embedded broker is a real MQTT broker that other tools can use.
        async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier="probe") as client:
            await client.subscribe("glimpser/local/available", qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(client.messages))
            assert message.payload == b"online"
        text = log.read_text()
        assert f"http://127.0.0.1:{http_port}" in text
        assert f"mqtt://127.0.0.1:{mqtt_port}" in text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()


async def test_up_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "glimpser.shared.cli", "up",
            "--data-dir", str(tmp_path), "--mqtt-port", str(port), "--http-port", str(free_port()),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert f"port {port}" in err.decode() and "--mqtt-port" in err.decode()
    assert b"Traceback" not in out + err
