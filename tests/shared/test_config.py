"""YAML config loading: every error carries the file's line; BrokerSettings limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from glimpser.shared.config import BrokerSettings, deep_merge, load_yaml_model, parse_yaml_model
from glimpser.shared.errors import ConfigError
from glimpser.shared.models import AgentConfig, Model

GOOD = """\
revision: 2
templates:
  - id: yard
    name: Yard
    source:
      kind: test
    fps: 5
  - id: gate
    name: Gate
    source:
      kind: rtsp
      url: rtsp://10.0.0.5/live
"""


def test_valid_yaml_loads_without_line_markers() -> None:
    cfg = parse_yaml_model(GOOD, AgentConfig)
    assert [t.id for t in cfg.templates] == ["yard", "gate"]
    dumped = cfg.model_dump_json()
    assert "__line" not in dumped


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(GOOD)
    assert load_yaml_model(path, AgentConfig).revision == 2


def test_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(GOOD.replace("fps: 5", "fps: 500"))
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, AgentConfig)
    assert str(info.value).startswith(f"{path}:7: templates.0.fps: ")
    assert "less than or equal to 60" in str(info.value)
    assert isinstance(info.value.__cause__, ValidationError)


def test_every_problem_is_listed_with_its_own_line() -> None:
    text = GOOD.replace("fps: 5", "fps: 0").replace("url: rtsp://", "url: http://")
    with pytest.raises(ConfigError) as info:
        parse_yaml_model(text, AgentConfig, "agent.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("agent.yaml:7: templates.0.fps:")
    # The discriminated source error points at least at the source block of the 2nd template.
    assert "templates.1.source" in lines[1]
    assert int(lines[1].split(":")[1]) >= 10


def test_error_inside_a_discriminated_source_points_at_the_field_line() -> None:
    text = GOOD.replace("url: rtsp://", "url: http://")
    with pytest.raises(ConfigError, match=r"^agent\.yaml:12: templates\.1\.source\.url: "):
        parse_yaml_model(text, AgentConfig, "agent.yaml")


def test_unknown_key_is_reported_on_its_line() -> None:
    text = GOOD + "colour: red\n"
    with pytest.raises(ConfigError, match=r"^<config>:13: colour: Extra inputs are not permitted"):
        parse_yaml_model(text, AgentConfig)


def test_invalid_id_in_list_item_is_reported_on_its_line() -> None:
    text = GOOD.replace("id: gate", "id: Gate/1")
    with pytest.raises(ConfigError, match=r"^<config>:8: templates\.1\.id: .*invalid"):
        parse_yaml_model(text, AgentConfig)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("revision: 1\ntemplates: [\n", 3),
        ("revision: 1\n  bad indent: 2\n", 2),
        ("revision: 1\ntemplates:\n\t- id: x\n", 3),
        ('revision: "1\n', 2),
    ],
)
def test_invalid_yaml_carries_a_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError, match=rf"^agent\.yaml:{line}: invalid YAML"):
        parse_yaml_model(text, AgentConfig, "agent.yaml")


def test_unsafe_yaml_tags_are_refused() -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse_yaml_model("revision: !!python/object/apply:os.system ['true']\n", AgentConfig)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_yaml_model(text, AgentConfig, "agent.yaml")


@pytest.mark.parametrize("text", ["[]\n", "0\n", "false\n"])
def test_falsy_non_mapping_top_level_is_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_yaml_model(text, AgentConfig, "agent.yaml")


def test_empty_file_is_an_empty_mapping() -> None:
    with pytest.raises(ConfigError, match="revision: Field required"):
        parse_yaml_model("", AgentConfig, "agent.yaml")


def test_overrides_win_over_the_file() -> None:
    cfg = parse_yaml_model(GOOD, AgentConfig, overrides={"revision": 9})
    assert cfg.revision == 9


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_yaml_model(tmp_path / "missing.yaml", AgentConfig)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_yaml_model(tmp_path, AgentConfig)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes("revision: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError):
        load_yaml_model(path, AgentConfig)


# --------------------------------------------------------------------------- BrokerSettings


def test_broker_settings_defaults_and_url_hide_the_password() -> None:
    s = BrokerSettings(password="secret")
    assert (s.host, s.port, s.prefix, s.keepalive) == ("127.0.0.1", 1883, "glimpser", 30)
    assert s.url == "mqtt://127.0.0.1:1883"
    assert "secret" not in s.url


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", 0), ("port", 65536), ("keepalive", 1), ("prefix", "a+b"), ("prefix", "#"),
     ("prefix", "/glimpser"), ("prefix", ""), ("prefix", "x" * 65), ("colour", "red")],
)  # fmt: skip
def test_broker_settings_reject(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        BrokerSettings.model_validate({field: value})


@pytest.mark.parametrize("prefix", ["glimpser/", "a//b"])
def test_broker_prefix_with_empty_topic_level_is_rejected(prefix: str) -> None:
    with pytest.raises(ValidationError):
        BrokerSettings(prefix=prefix)


def test_deep_merge_merges_nested_mappings_without_mutating() -> None:
    base = {"broker": {"host": "a", "port": 1}, "x": [1]}
    merged = deep_merge(base, {"broker": {"port": 2}, "x": [2], "y": 3})
    assert merged == {"broker": {"host": "a", "port": 2}, "x": [2], "y": 3}
    assert base == {"broker": {"host": "a", "port": 1}, "x": [1]}


def test_nested_overrides_keep_the_rest_of_the_file() -> None:
    text = "broker:\n  host: 10.0.0.1\n  port: 1884\n"

    class Holder(Model):
        broker: BrokerSettings

    cfg = parse_yaml_model(text, Holder, overrides={"broker": {"port": 1999}})
    assert (cfg.broker.host, cfg.broker.port) == ("10.0.0.1", 1999)
