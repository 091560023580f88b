"""Agent settings: the issue's example loads; mistakes come back with their line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpser.agent.config import AgentSettings, load_agent_settings
from glimpser.shared.errors import ConfigError

EXAMPLE = """\
agent_id: pi-garage
broker: {host: 127.0.0.1, port: 1883}
data_dir: /var/lib/glimpser-agent
templates:
  - id: test-pattern
    name: Test pattern
    source: {kind: test, pattern: motion, width: 640, height: 480}
    fps: 10
  - id: driveway
    name: Driveway
    source: {kind: rtsp, url: "rtsp://192.0.2.10/stream1"}
    interval: 2
    width: 1280
    height: 720
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_example_config_loads(tmp_path: Path) -> None:
    settings = load_agent_settings(_write(tmp_path, EXAMPLE))
    assert isinstance(settings, AgentSettings)
    assert settings.agent_id == "pi-garage"
    assert [t.id for t in settings.templates] == ["test-pattern", "driveway"]
    assert settings.templates[1].period == 2
    assert settings.state_interval == 15
    assert settings.log_level == "INFO"


def test_overrides_win(tmp_path: Path) -> None:
    settings = load_agent_settings(_write(tmp_path, EXAMPLE), {"log_level": "debug"})
    assert settings.log_level == "DEBUG"


def test_duplicate_template_id_is_named_with_its_line(tmp_path: Path) -> None:
    text = EXAMPLE.replace("id: driveway", "id: test-pattern")
    with pytest.raises(ConfigError) as err:
        load_agent_settings(_write(tmp_path, text))
    assert "duplicate template id 'test-pattern'" in str(err.value)
    assert "agent.yaml:4:" in str(err.value)  # the templates: key


def test_reserved_agent_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.yaml:1: agent_id: .*reserved"):
        load_agent_settings(_write(tmp_path, EXAMPLE.replace("pi-garage", "hub")))


def test_errors_carry_line_numbers(tmp_path: Path) -> None:
    text = EXAMPLE.replace("fps: 10", "fps: fast").replace("interval: 2", "intervall: 2")
    with pytest.raises(ConfigError) as err:
        load_agent_settings(_write(tmp_path, text))
    message = str(err.value)
    assert "agent.yaml:8: templates.0.fps" in message
    assert "agent.yaml:12: templates.1.intervall" in message


def test_unknown_top_level_key_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.yaml:1: brokr: Extra inputs"):
        load_agent_settings(_write(tmp_path, "brokr: {}\n" + EXAMPLE))
    with pytest.raises(ConfigError, match=r"invalid YAML"):
        load_agent_settings(_write(tmp_path, "agent_id: [unclosed\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_agent_settings(tmp_path / "nope.yaml")
