"""Request bodies and query parameters → validated values, or 4xx ApiErrors naming the field."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from glimpser.hub.http.errors import ApiError, field_problem
from glimpser.shared.models import SOURCE_KINDS


async def read_object(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body; 400 when it is not JSON, 422 when it is not an object."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError) as err:
        raise ApiError(400, f"malformed JSON body: {err}") from err
    if not isinstance(body, dict):
        kind = "empty" if body is None else type(body).__name__
        raise ApiError(
            422, f"expected a JSON object, got {kind}", [field_problem("", "not an object")]
        )
    return body


def invalid(err: ValidationError, what: str, prefix: str = "") -> ApiError:
    """422 listing every problem with its field path (union tags dropped: ``source.url``)."""
    problems = [field_problem(_join(prefix, _path(e["loc"])), e["msg"]) for e in err.errors()]
    first = problems[0]
    where = f"{first['field']}: " if first["field"] else ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ApiError(422, f"invalid {what}: {where}{first['message']}{more}", problems)


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 naming it otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ApiError(400, f"query parameter {name!r} must be an integer, not {raw!r}") from err
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name!r} must be between {low} and {high}")
    return value


def query_bool(request: web.Request, name: str) -> bool | None:
    """``true``/``false`` (or 1/0); None when absent; 400 otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false, not {raw!r}")


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if parts and parts[-1] == "source" and isinstance(part, str) and part in SOURCE_KINDS:
            continue
        if isinstance(part, str) and part.startswith(("function-", "tagged-union[")):
            continue
        parts.append(str(part))
    return ".".join(parts)


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path
