"""The systemd units: required directives, and ``systemd-analyze verify`` where available."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
BINARY = "/opt/glimpser/.venv/bin/glimpser"


def directives(unit: Path) -> dict[str, list[str]]:
    """``Key`` -> every value it is given (systemd allows repeated keys)."""
    out: dict[str, list[str]] = {}
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.parametrize(
    ("side", "extra"),
    [("agent", {"SupplementaryGroups": ["video"]}), ("hub", {})],
)
def test_unit_directives(side: str, extra: dict[str, list[str]]) -> None:
    d = directives(UNITS / f"glimpser-{side}.service")
    expected = {
        "Type": ["exec"],
        "ExecStart": [f"{BINARY} {side} --config /etc/glimpser/{side}.yaml"],
        "Restart": ["on-failure"],
        "TimeoutStopSec": ["15"],
        "User": ["glimpser"],
        "StateDirectory": [f"glimpser-{side}"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "ReadWritePaths": [f"/var/lib/glimpser-{side}"],
        "WantedBy": ["multi-user.target"],
        **extra,
    }
    for key, value in expected.items():
        assert d.get(key) == value, key
    assert 0 < float(d["RestartSec"][0]) <= 10


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists: point it at a stub, keep everything else.
    stub = tmp_path / "glimpser"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    units = []
    for unit in sorted(UNITS.glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(BINARY, str(stub)))
        units.append(copy)
    assert len(units) == 2
    proc = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = proc.stdout + proc.stderr
    # verify exits 0 on unknown keys and unparsable values ("..., ignoring"): fail on any
    # complaint about our own files.
    ours = [line for line in output.splitlines() if any(u.name in line for u in units)]
    assert proc.returncode == 0, output
    assert not ours, "\n".join(ours)
