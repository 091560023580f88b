"""The agent command line: help, check-config, and a real process stopped by signals."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from glimpser.agent.cli import main
from tests.agent.conftest import retained
from tests.helpers import wait_for


def _config(tmp_path: Path, port: int = 1883, **extra: Any) -> Path:
    data = {
        "agent_id": "edge",
        "broker": {"host": "127.0.0.1", "port": port},
        "data_dir": str(tmp_path / "data"),
        "templates": [
            {
                "id": "yard",
                "name": "Yard",
                "fps": 5,
                "source": {"kind": "test", "width": 160, "height": 120},
            }
        ],
        **extra,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--check-config" in out and "example:" in out


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(_config(tmp_path)), "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "config OK: agent edge, broker mqtt://127.0.0.1:1883, 1 template(s)" in out
    assert "yard: test, 5 fps" in out


def test_check_config_errors_exit_2_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, state_interval="often")
    assert main(["--config", str(path), "--check-config"]) == 2
    err = capsys.readouterr().err
    line = path.read_text().splitlines().index("state_interval: often") + 1
    assert f"{path}:{line}: state_interval" in err and "Traceback" not in err


def test_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err


async def _spawn(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "glimpser.agent",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_process_sigterm_is_a_clean_stop(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    proc = await _spawn(_config(tmp_path, b.port))
    try:

        async def online() -> bool:
            try:
                return await retained(b.host, b.port, "glimpser/edge/available", 0.5) == b"online"
            except (TimeoutError, AssertionError):
                return False

        await wait_for(online, timeout=20, interval=0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = out.decode()
    assert proc.returncode == 0, log
    assert "agent edge running 1 streams, broker mqtt://127.0.0.1:" in log
    assert await retained(b.host, b.port, "glimpser/edge/available") == b"offline"


async def test_process_crash_leaves_the_last_will(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    proc = await _spawn(
        _config(tmp_path, b.port, broker={"host": b.host, "port": b.port, "keepalive": 5})
    )
    try:

        async def online() -> bool:
            try:
                return await retained(b.host, b.port, "glimpser/edge/available", 0.5) == b"online"
            except (TimeoutError, AssertionError):
                return False

        await wait_for(online, timeout=20, interval=0.2)
    finally:
        proc.kill()
        await proc.wait()

    async def offline() -> bool:
        return await retained(b.host, b.port, "glimpser/edge/available") == b"offline"

    await wait_for(offline, timeout=10, interval=0.2)
