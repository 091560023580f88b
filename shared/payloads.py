"""Parse MQTT payloads into contract models with clear, bounded errors."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from glimpser.shared.errors import ProtocolError
from glimpser.shared.models import PLAIN_COMMANDS, Command

MAX_JSON_BYTES = 256 * 1024
M = TypeVar("M", bound=BaseModel)


def parse_json(model: type[M], payload: bytes | bytearray | str, what: str = "") -> M:
    """Validate a JSON payload as ``model``; raise ProtocolError naming the bad field."""
    if len(payload) > MAX_JSON_BYTES:
        raise ProtocolError(f"{what or model.__name__} payload of {len(payload)} bytes is too big")
    try:
        return model.model_validate_json(payload)
    except ValidationError as err:
        raise ProtocolError(f"invalid {what or model.__name__}: {_summary(err)}") from err


def parse_command(payload: bytes | bytearray | str) -> Command:
    """A JSON Command, or one of Home Assistant's plain ``ON``/``OFF``/``PRESS`` payloads."""
    text = payload.decode(errors="replace") if isinstance(payload, bytes | bytearray) else payload
    plain = PLAIN_COMMANDS.get(text.strip().upper())
    if plain is not None:
        return Command(action=plain)
    return parse_json(Command, payload, "command")


def _summary(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "payload"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)
