"""Alert HTTP API: alerts history, rules CRUD, snoozes, channel tests and the SSE live feed.

Wiring (the app owns the Database; the alerts context must start after it)::

    app[ALERTS] = AlertService(db, settings.alerts, contexts=..., resolve_stream=...)
    app.add_routes(alert_routes)
    app.cleanup_ctx.append(alerts_ctx)
    app.on_shutdown.append(close_live)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from glimpser.hub.alerts.channels import redact
from glimpser.hub.alerts.live import messages
from glimpser.hub.alerts.models import (
    EVENT_TYPES,
    AlertRule,
    AlertState,
    ChannelTestBody,
    RuleSpec,
    SnoozeBody,
    WebhookChannel,
)
from glimpser.hub.alerts.service import AlertService
from glimpser.hub.alerts.store import AlertFilter, StateError
from glimpser.hub.http.errors import ApiError

__all__ = ["ALERTS", "alert_routes", "alerts_ctx", "close_live"]

ALERTS = web.AppKey("alerts", AlertService)

alert_routes = web.RouteTableDef()

M = TypeVar("M", bound=BaseModel)

SSE_HEARTBEAT = 15.0  # seconds; proxies drop idle connections after 30-60 s
SSE_WRITE_TIMEOUT = 30.0  # a client that reads nothing this long is dropped
MAX_PAGE = 500


async def alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the alert service for the app's lifetime."""
    async with app[ALERTS]:
        yield


async def close_live(app: web.Application) -> None:
    """on_shutdown: end SSE responses so shutdown does not wait for them."""
    app[ALERTS].live.close()


# ---------------------------------------------------------------------- alerts


@alert_routes.get("/api/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    """Alerts newest first; filters state, rule, stream, agent, type, since; paging by before."""
    query = request.query
    where = _filter(query)
    limit = _int(query.get("limit", "50"), "limit", 1, MAX_PAGE)
    before = _cursor(query["before"]) if "before" in query else None
    alerts, cursor = await request.app[ALERTS].store.list_alerts(where, limit, before)
    return web.json_response(
        {
            "items": [a.model_dump(mode="json") for a in alerts],
            "next": f"{cursor[0]!r}_{cursor[1]}" if cursor else None,
        }
    )


@alert_routes.get("/api/alerts/{id}")
async def get_alert(request: web.Request) -> web.Response:
    """One alert with its deliveries and every attempt."""
    detail = await request.app[ALERTS].store.get_detail(request.match_info["id"])
    return web.json_response(detail.model_dump(mode="json"))


@alert_routes.get("/api/alerts/{id}/snapshot")
async def alert_snapshot(request: web.Request) -> web.Response:
    """The JPEG stored with the alert."""
    jpeg = await request.app[ALERTS].store.snapshot(request.match_info["id"])
    if jpeg is None:
        raise ApiError(404, f"alert {request.match_info['id']!r} has no snapshot")
    return web.Response(body=jpeg, content_type="image/jpeg")


@alert_routes.post("/api/alerts/{id}/ack")
async def ack_alert(request: web.Request) -> web.Response:
    """Acknowledge an alert (idempotent)."""
    return await _set_state(request, AlertState.ACKNOWLEDGED)


@alert_routes.post("/api/alerts/{id}/resolve")
async def resolve_alert(request: web.Request) -> web.Response:
    """Resolve an alert (idempotent)."""
    return await _set_state(request, AlertState.RESOLVED)


async def _set_state(request: web.Request, state: AlertState) -> web.Response:
    try:
        alert = await request.app[ALERTS].set_state(request.match_info["id"], state)
    except StateError as err:
        raise ApiError(409, str(err)) from err
    return web.json_response(alert.model_dump(mode="json"))


# ---------------------------------------------------------------------- rules


@alert_routes.get("/api/alert-rules")
async def list_rules(request: web.Request) -> web.Response:
    """Every rule (channel secrets masked)."""
    rules = await request.app[ALERTS].store.list_rules()
    return web.json_response([_public(rule) for rule in rules])


@alert_routes.post("/api/alert-rules")
async def create_rule(request: web.Request) -> web.Response:
    """Create a rule; 422 naming the field when invalid (nothing stored)."""
    spec = _validate(RuleSpec, await _json(request))
    rule = await request.app[ALERTS].create_rule(spec)
    return web.json_response(_public(rule), status=201)


@alert_routes.get("/api/alert-rules/{id}")
async def get_rule(request: web.Request) -> web.Response:
    """One rule."""
    return web.json_response(_public(await request.app[ALERTS].store.get_rule(_rid(request))))


@alert_routes.put("/api/alert-rules/{id}")
async def replace_rule(request: web.Request) -> web.Response:
    """Replace a rule with a full spec."""
    spec = _validate(RuleSpec, await _json(request))
    rule = await request.app[ALERTS].replace_rule(_rid(request), spec)
    return web.json_response(_public(rule))


@alert_routes.patch("/api/alert-rules/{id}")
async def patch_rule(request: web.Request) -> web.Response:
    """Change some fields; omitted ones (channels with their secrets too) stay as stored."""
    service = request.app[ALERTS]
    current = await service.store.get_rule(_rid(request))
    body = await _json(request)
    merged = RuleSpec.model_validate(current.model_dump(include=set(RuleSpec.model_fields)))
    spec = _validate(RuleSpec, {**merged.model_dump(), **body})
    rule = await service.replace_rule(current.id, spec)
    return web.json_response(_public(rule))


@alert_routes.delete("/api/alert-rules/{id}")
async def delete_rule(request: web.Request) -> web.Response:
    """Delete a rule; its alerts stay in the history."""
    await request.app[ALERTS].delete_rule(_rid(request))
    return web.json_response({"success": True})


@alert_routes.post("/api/alert-rules/{id}/snooze")
async def snooze_rule(request: web.Request) -> web.Response:
    """Record but do not send the rule's alerts for ``minutes`` (0 ends the snooze)."""
    body = _validate(SnoozeBody, await _json(request))
    rule = await request.app[ALERTS].snooze_rule(_rid(request), body.minutes)
    return web.json_response(_public(rule))


@alert_routes.post("/api/streams/{id}/snooze")
async def snooze_stream(request: web.Request) -> web.Response:
    """Record but do not send any alert for this stream for ``minutes`` (0 ends it)."""
    body = _validate(SnoozeBody, await _json(request))
    result = await request.app[ALERTS].snooze_stream(request.match_info["id"], body.minutes)
    return web.json_response(result)


@alert_routes.post("/api/alert-channels/test")
async def test_channel(request: web.Request) -> web.Response:
    """Send a test message to a channel now: ``{"success": bool, "error"?: str}``."""
    body = _validate(ChannelTestBody, await _json(request))
    error = await request.app[ALERTS].test_channel(body.url)
    if error is None:
        return web.json_response({"success": True})
    return web.json_response({"success": False, "error": error})


# ---------------------------------------------------------------------- live


@alert_routes.get("/api/events")
async def live_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``alert``, ``delivery`` and whatever else the hub publishes.

    ``?kinds=alert,stream`` limits the kinds. A listener that falls behind loses its oldest
    messages (never slows the others); one that stops reading is dropped after a timeout.
    """
    kinds = {k for k in request.query.get("kinds", "").split(",") if k}
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        }
    )
    async with request.app[ALERTS].live.listen() as listener:
        await response.prepare(request)
        await response.write(b"retry: 3000\n: connected\n\n")
        async for message in messages(listener, SSE_HEARTBEAT):
            if message is None:
                chunk = b": keep-alive\n\n"
            elif kinds and message.kind not in kinds:
                continue
            else:
                text = f"id: {message.seq}\nevent: {message.kind}\ndata: {message.data}\n\n"
                chunk = text.encode()
            try:
                async with asyncio.timeout(SSE_WRITE_TIMEOUT):
                    await response.write(chunk)
            except (TimeoutError, ConnectionResetError):
                break
    return response


# ---------------------------------------------------------------------- helpers


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as err:
        raise ApiError(400, f"the body is not valid JSON: {err}") from err


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = _problems(err)
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10])
        # Same shape as the template and capture routes: a summary plus one entry per field.
        raise ApiError(422, f"invalid input: {text}", problems) from err


def _problems(err: ValidationError) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    for error in err.errors():
        # Drop union branch labels ("str", "WebhookChannel", "function-after[...]") from the
        # location so the field reads as the user wrote it: channels.0, schedule.timezone.
        parts = [
            str(p)
            for p in error["loc"]
            if isinstance(p, int) or (not p[:1].isupper() and "[" not in p and p != "str")
        ]
        field = ".".join(parts) or "body"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "literal_error" and parts and parts[0] == "events":
            message = f"unknown event type; expected one of {', '.join(sorted(EVENT_TYPES))}"
        # A union (URL string | webhook object) fails once per branch: the first says it best.
        if all(p["field"] != field for p in problems):
            problems.append({"field": field, "message": message})
    return problems


def _public(rule: AlertRule) -> dict[str, Any]:
    data = rule.model_dump(mode="json")
    data["channels"] = [
        {"type": "webhook", "url": c.url, "secret": "***"}
        if isinstance(c, WebhookChannel)
        else redact(c)
        for c in rule.channels
    ]
    return data


def _rid(request: web.Request) -> str:
    return request.match_info["id"]


def _filter(query: Any) -> AlertFilter:
    state = query.get("state")
    if state is not None and state not in {s.value for s in AlertState}:
        raise ApiError(422, f"state: expected one of {', '.join(s.value for s in AlertState)}")
    agent = query.get("agent")
    stream = query.get("stream")
    if stream is not None and "." in stream:
        agent, stream = stream.split(".", 1)
    since = query.get("since")
    return AlertFilter(
        state=AlertState(state) if state else None,
        rule_id=query.get("rule"),
        agent_id=agent,
        stream_id=stream,
        type=query.get("type"),
        since=_time(since, "since") if since else None,
    )


def _time(text: str, field: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError as err:
        raise ApiError(422, f"{field}: expected ISO 8601 or UNIX seconds") from err
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _int(text: str, field: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise ApiError(422, f"{field}: expected an integer") from err
    if not low <= value <= high:
        raise ApiError(422, f"{field}: must be between {low} and {high}")
    return value


def _cursor(text: str) -> tuple[float, str]:
    stamp, _, alert_id = text.partition("_")
    try:
        return float(stamp), alert_id
    except ValueError as err:
        raise ApiError(422, "before: not a cursor from a previous page") from err
