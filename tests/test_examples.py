"""The example configs in provisioning/examples/ load with the real loaders, so they cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from glimpser.agent.config import load_agent_settings
from glimpser.hub.config import load_hub_settings

EXAMPLES = Path(__file__).resolve().parent.parent / "provisioning" / "examples"


def test_agent_example_loads() -> None:
    settings = load_agent_settings(EXAMPLES / "agent.yaml")
    assert settings.agent_id == "pi-garage"
    # The example must keep showing what docs/configuration.md points to: a Pi camera, an RTSP
    # camera with motion detection and a website, and MQTT credentials named after the agent.
    kinds = {t.source.kind for t in settings.templates}
    assert kinds == {"picamera", "rtsp", "website"}
    assert any(t.motion is not None for t in settings.templates if t.source.kind == "rtsp")
    assert settings.broker.username == settings.agent_id


def test_hub_example_loads() -> None:
    settings = load_hub_settings(EXAMPLES / "hub.yaml")
    assert settings.embedded_broker is False
    assert settings.broker.username == "glimpser-hub"
    assert settings.retention.policy.max_age_days is not None
    assert "alerts" in settings.model_fields_set
    # Seed templates may only name agents the hub accepts before they connect.
    assert {t.agent_id for t in settings.seed_templates} <= set(settings.agents)


def test_agent_example_passes_check_config() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "glimpser.agent",
            "--check-config",
            "--config",
            str(EXAMPLES / "agent.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config OK: agent pi-garage")


def test_mosquitto_example_has_acl_and_passwords() -> None:
    text = (EXAMPLES / "mosquitto.conf").read_text()
    lines = [line.strip() for line in text.splitlines()]
    for directive in ("allow_anonymous false", "password_file ", "acl_file ", "listener "):
        assert any(line.startswith(directive) for line in lines), directive
    assert "pattern readwrite glimpser/%u/#" in text
    assert "user glimpser-hub" in text
