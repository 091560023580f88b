"""Capture history: list with filters and cursor, image download, delete, pin; and on-demand
snapshots (``POST /api/streams/{id}/snapshot``) that wait for the agent's capture."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from glimpser.hub.http.errors import ApiError
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.http.streams import resolve
from glimpser.hub.http.validation import invalid, query_bool, query_int, read_object
from glimpser.hub.store.captures import MAX_PAGE, CaptureRecord
from glimpser.hub.store.replies import StreamKey
from glimpser.shared.errors import TransportError
from glimpser.shared.ids import validate_id
from glimpser.shared.models import Command, Model, StreamState, StreamStatus

routes = web.RouteTableDef()

_CAPTURE_ID = re.compile(r"\A[a-z0-9]{8,64}\Z")
_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")


class PinBody(Model):
    """Body of ``POST /api/captures/{id}/pin``."""

    pinned: bool = True


@routes.get("/api/captures")
async def list_captures(request: web.Request) -> web.Response:
    """Newest first: ``stream`` (id or agent.stream), ``template``, ``agent``, ``since``,
    ``until`` (ISO-8601), ``pinned``, ``limit`` (≤ 500), ``cursor``."""
    hub = request.app[HUB]
    q = request.query
    agent, stream = _stream_filter(q.get("stream"))
    if q.get("agent"):
        agent = validate_id(q["agent"], "agent id")
    template = validate_id(q["template"], "template id") if q.get("template") else None
    page = await hub.captures.list(
        stream_id=stream,
        template_id=template,
        agent_id=agent,
        since=_time(q.get("since"), "since"),
        until=_time(q.get("until"), "until"),
        pinned=query_bool(request, "pinned"),
        limit=query_int(request, "limit", 50, 1, MAX_PAGE),
        cursor=q.get("cursor") or None,
    )
    return web.json_response(
        {"items": [_dump(r) for r in page.items], "next_cursor": page.next_cursor}
    )


@routes.get("/api/captures/{id}")
async def get_capture(request: web.Request) -> web.Response:
    """One capture record."""
    return web.json_response(_dump(await request.app[HUB].captures.get(_id(request))))


@routes.get("/api/captures/{id}/image")
async def capture_image(request: web.Request) -> web.FileResponse:
    """The capture's JPEG, byte for byte as the agent sent it."""
    path = await request.app[HUB].captures.path_of(_id(request))
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


@routes.delete("/api/captures/{id}")
async def delete_capture(request: web.Request) -> web.Response:
    """Delete the file, then the record (pinned or not)."""
    capture_id = _id(request)
    await request.app[HUB].captures.delete(capture_id)
    return web.json_response({"success": True, "id": capture_id})


@routes.post("/api/captures/{id}/pin")
async def pin_capture(request: web.Request) -> web.Response:
    """``{"pinned": true|false}``: pinned captures are never removed by retention."""
    capture_id = _id(request)
    try:
        body = PinBody.model_validate(await read_object(request), strict=True)
    except ValidationError as err:
        raise invalid(err, "pin request") from err
    record = await request.app[HUB].captures.pin(capture_id, body.pinned)
    return web.json_response(_dump(record))


@routes.post("/api/streams/{id}/snapshot")
async def take_snapshot(request: web.Request) -> web.Response:
    """Ask the agent for a capture now and answer with its record once stored (201)."""
    hub = request.app[HUB]
    ref = await resolve(hub, request.match_info["id"])
    agent = ref.agent
    if agent is None:
        raise ApiError(409, f"template {ref.stream} is not assigned to an agent")
    if not hub.registry.agent_online(agent):
        raise ApiError(503, f"agent {agent} is offline; it cannot take a snapshot now")
    record = await _snapshot(hub, (agent, ref.stream))
    return web.json_response(_dump(record), status=201)


async def _snapshot(hub: Hub, key: StreamKey) -> CaptureRecord:
    request_id = uuid.uuid4().hex
    command = Command(action="snapshot", request_id=request_id)
    with (
        hub.persist.capture_waiters.expect((key[0], key[1], request_id)) as capture,
        hub.registry.replies.expect(key, request_id) as reply,
    ):
        try:
            await hub.link.publish_command(key[0], key[1], command)
        except TransportError as err:
            raise ApiError(503, str(err)) from err
        try:
            async with asyncio.timeout(hub.settings.command_timeout):
                return await _capture_or_failure(capture, reply)
        except TimeoutError as err:
            raise ApiError(
                504,
                f"agent {key[0]} sent no snapshot of {key[1]} "
                f"within {hub.settings.command_timeout:g} s",
            ) from err


async def _capture_or_failure(
    capture: asyncio.Future[CaptureRecord], reply: asyncio.Future[StreamState]
) -> CaptureRecord:
    """The capture; an answer in the stream state with status error ends the wait early."""
    pending: set[asyncio.Future[Any]] = {capture, reply}
    while True:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if capture.done():
            return capture.result()
        pending.discard(reply)
        state = reply.result()
        if state.status == StreamStatus.ERROR:
            raise ApiError(502, f"the agent could not take a snapshot: {state.error or 'error'}")


def _stream_filter(raw: str | None) -> tuple[str | None, str | None]:
    if not raw:
        return None, None
    agent, _, stream = raw.rpartition(".")
    validate_id(stream, "stream id")
    return (validate_id(agent, "agent id") if agent else None), stream


def _time(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    # An unescaped "+00:00" in a query string arrives as " 00:00".
    raw = _SPACED_OFFSET.sub(r"+\1", raw)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as err:
        raise ApiError(400, f"query parameter {name!r} must be an ISO-8601 time") from err
    if value.tzinfo is None:
        raise ApiError(400, f"query parameter {name!r} needs a timezone (e.g. Z or +00:00)")
    return value


def _id(request: web.Request) -> str:
    capture_id = request.match_info["id"]
    if not _CAPTURE_ID.match(capture_id):
        raise ApiError(400, f"invalid capture id {capture_id[:80]!r}: use 8-64 characters a-z, 0-9")
    return capture_id


def _dump(record: CaptureRecord) -> dict[str, Any]:
    return {**record.model_dump(mode="json"), "image_url": f"/api/captures/{record.id}/image"}
