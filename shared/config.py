"""Config pieces both sides share, and YAML loading whose errors point at the file's line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from glimpser.shared.errors import ConfigError
from glimpser.shared.models import SOURCE_KINDS, Model

M = TypeVar("M", bound=BaseModel)


class BrokerSettings(Model):
    """How to reach the MQTT broker."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    prefix: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}(/[A-Za-z0-9_-]{1,32}){0,3}$")
    ] = "glimpser"
    keepalive: int = Field(30, ge=5, le=3600)

    @property
    def url(self) -> str:
        """``mqtt://host:port`` for logs and banners (never the password)."""
        return f"mqtt://{self.host}:{self.port}"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines: dict[Any, int] = {}
    for key_node, _value in node.value:
        lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1
    mapping["__lines__"] = lines
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("__lines__", "__line__")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _line_of(tree: Any, loc: tuple[int | str, ...]) -> int | None:
    """Best line number for a pydantic error location within the annotated tree."""
    line: int | None = tree.get("__line__") if isinstance(tree, dict) else None
    node = tree
    for part in loc:
        if isinstance(node, dict):
            if part in node.get("__lines__", {}):
                line = node["__lines__"][part]
                node = node[part]
            else:
                break
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict) and "__line__" in node:
                line = node["__line__"]
        else:
            break
    return line


def _drop_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the union-tag parts pydantic puts in locations (``source.rtsp.url``)."""
    out: list[int | str] = []
    for part in loc:
        if out and out[-1] == "source" and isinstance(part, str) and part in SOURCE_KINDS:
            continue
        if isinstance(part, str) and part.startswith(("function-", "tagged-union[")):
            continue
        out.append(part)
    return tuple(out)


def format_validation_error(err: ValidationError, source: str, tree: Any = None) -> str:
    """One line per problem: ``source:line: field.path: message``."""
    lines = []
    for e in err.errors():
        loc = _drop_tags(e["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(tree, loc) if tree is not None else None
        prefix = f"{source}:{line}" if line else source
        lines.append(f"{prefix}: {where}: {e['msg']}")
    return "\n".join(lines)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``, merging nested mappings instead of replacing them."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml_model(path: Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Load ``path`` as ``model``; ConfigError lists every problem with its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}): save it as UTF-8") from err
    return parse_yaml_model(text, model, str(path), overrides)


def parse_yaml_model(
    text: str, model: type[M], source: str = "<config>", overrides: dict[str, Any] | None = None
) -> M:
    """Parse YAML text as ``model``; see load_yaml_model."""
    try:
        tree = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from err
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings")
    data = deep_merge(_strip(tree), overrides or {})
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, tree)) from err
