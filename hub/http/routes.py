"""The URL map and its handlers: the dashboard contract (DESIGN §4), health and metrics."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from aiohttp import web

from glimpser.hub.http.errors import ApiError
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.http.mjpeg import stream_parts
from glimpser.hub.http.streams import StreamRef, info_of, list_streams, resolve
from glimpser.hub.metrics import AlertFigures, render_alerts
from glimpser.hub.store.replies import StreamKey
from glimpser.shared.errors import TransportError
from glimpser.shared.models import Command, StreamInfo, StreamStatus

routes = web.RouteTableDef()


@routes.get("/api/streams")
async def get_streams(request: web.Request) -> web.Response:
    """Every stream the agents report and every template, running or not."""
    return _json(await list_streams(request.app[HUB]))


@routes.get("/api/streams/{id}")
async def get_stream(request: web.Request) -> web.Response:
    """One stream by ``stream`` or ``agent.stream``."""
    hub = request.app[HUB]
    return _json(await info_of(hub, await resolve(hub, request.match_info["id"])))


@routes.post("/api/streams/{id}/start")
async def start_stream(request: web.Request) -> web.Response:
    """Ask the agent to start the stream and wait for its answer."""
    return await _command(request, "start")


@routes.post("/api/streams/{id}/stop")
@routes.delete("/api/streams/{id}/stop")
async def stop_stream(request: web.Request) -> web.Response:
    """Ask the agent to stop the stream and wait for its answer."""
    return await _command(request, "stop")


@routes.get("/api/stream/{id}/snapshot")
async def snapshot(request: web.Request) -> web.Response:
    """The latest frame as image/jpeg."""
    hub = request.app[HUB]
    key = _key(request)
    frame = hub.registry.latest_frame(key)
    if frame is None:
        raise ApiError(404, f"no frame received yet for stream {request.match_info['id']!r}")
    return web.Response(
        body=frame.jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
    )


@routes.get("/api/stream/{id}/mjpeg")
async def mjpeg(request: web.Request) -> web.StreamResponse:
    """multipart/x-mixed-replace JPEG stream; the latest frame is sent at once."""
    hub = request.app[HUB]
    key = _key(request)
    async with hub.relay.watch(key, hub.registry.latest_frame(key)) as channel:
        return await stream_parts(request, channel, hub.metrics, hub.settings.mjpeg_write_timeout)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return _json({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready when connected to the broker; 503 otherwise."""
    if not request.app[HUB].link.connected:
        raise ApiError(503, "not connected to the MQTT broker")
    return _json({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    hub = request.app[HUB]
    text = hub.metrics.render(
        viewers=hub.relay.total_viewers(),
        streams=len(hub.registry.stream_keys()),
        agents_online=hub.registry.agents_online(),
        connected=hub.link.connected,
        job_queue_depth=hub.jobs.depth(),
    ) + render_alerts(_alert_figures(hub))
    return web.Response(
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Prometheus-Format": "0.0.4"},
    )


def _alert_figures(hub: Hub) -> AlertFigures:
    engine = hub.alerts.engine
    motion = hub.registry.motion_flags()
    return AlertFigures(
        alerts=engine.alerts,
        deliveries=hub.alerts.deliveries,
        dropped=engine.dropped,
        queue_depth=engine.depth,
        listeners=hub.alerts.live.listeners,
        motion={f"{agent}.{stream}": on for (agent, stream), on in motion.items()},
    )


async def _command(request: web.Request, action: Literal["start", "stop"]) -> web.Response:
    hub = request.app[HUB]
    ref = await resolve(hub, request.match_info["id"])
    if ref.record is not None:
        deferred = await _persist_desired(hub, ref, action)
        if deferred is not None:
            return web.json_response(
                {"success": True, "applied": False, "message": deferred}, status=202
            )
    assert ref.key is not None  # a ref without a live stream always has a record
    key = ref.key
    if not hub.registry.agent_online(key[0]):
        raise ApiError(503, f"agent {key[0]} is offline")
    request_id = uuid.uuid4().hex
    command = Command(action=action, request_id=request_id)
    with hub.registry.replies.expect(key, request_id) as answer:
        try:
            await hub.link.publish_command(key[0], key[1], command)
        except TransportError as err:
            raise ApiError(503, str(err)) from err
        try:
            async with asyncio.timeout(hub.settings.command_timeout):
                state = await answer
        except TimeoutError as err:
            raise ApiError(
                504,
                f"agent {key[0]} did not answer {action} of {key[1]} "
                f"within {hub.settings.command_timeout:g} s",
            ) from err
    failed = state.status == StreamStatus.ERROR
    body: dict[str, Any] = {
        "success": not failed,
        "applied": not failed,
        "request_id": request_id,
        "stream": _info(hub, key).model_dump(mode="json"),
    }
    if failed:
        body["error"] = state.error or f"{action} failed"
    return _json(body)


async def _persist_desired(hub: Hub, ref: StreamRef, action: str) -> str | None:
    """Store the durable choice and republish the agent's config; a message when the agent
    cannot be asked now (it applies the config when it comes)."""
    assert ref.record is not None
    template_id = ref.record.template.id
    await hub.templates.set_desired(template_id, "started" if action == "start" else "stopped")
    await hub.assigner.sync()
    agent = ref.agent
    if agent is None:
        return f"template {template_id} is not assigned to an agent; saved for when it is"
    if not hub.registry.agent_online(agent):
        return f"agent {agent} is offline; it will apply this when it reconnects"
    if ref.key is None:
        return f"agent {agent} does not run {template_id} yet; it will apply this with its config"
    return None


def _key(request: web.Request) -> StreamKey:
    return request.app[HUB].registry.resolve(request.match_info["id"])


def _info(hub: Hub, key: StreamKey) -> StreamInfo:
    return hub.registry.stream_info(key, hub.relay.viewers(key))


def _json(data: Any) -> web.Response:
    if isinstance(data, StreamInfo):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, StreamInfo) else d for d in data]
    return web.json_response(data)
