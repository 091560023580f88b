"""The fleet: every agent the hub knows, online or not, with what it reports about itself."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from glimpser.hub.http.errors import ApiError
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.http.templates import known_agents
from glimpser.shared.ids import validate_id

routes = web.RouteTableDef()


@routes.get("/api/agents")
async def list_agents(request: web.Request) -> web.Response:
    """Agents seen over MQTT, pre-declared in settings, or holding templates."""
    hub = request.app[HUB]
    revisions = await hub.templates.agent_revisions()
    ids = await known_agents(hub)
    return web.json_response([_agent(hub, a, revisions.get(a)) for a in sorted(ids)])


@routes.get("/api/agents/{id}")
async def get_agent(request: web.Request) -> web.Response:
    """One agent; 404 when the hub has never heard of it."""
    hub = request.app[HUB]
    agent = validate_id(request.match_info["id"], "agent id")
    if agent not in await known_agents(hub):
        raise ApiError(404, f"unknown agent {agent!r}")
    revisions = await hub.templates.agent_revisions()
    return web.json_response(_agent(hub, agent, revisions.get(agent)))


def _agent(hub: Hub, agent: str, revision: int | None) -> dict[str, Any]:
    state = hub.registry.agent_state(agent)
    applied = state.config_revision if state is not None else None
    return {
        "id": agent,
        "online": hub.registry.agent_online(agent),
        "config_revision": revision,
        "applied_revision": applied,
        # The agent acknowledges each config revision in its state; a lag means it has not
        # applied the latest assignment yet (offline, or it rejected the config).
        "in_sync": revision is None or applied == revision,
        "state": state.model_dump(mode="json") if state is not None else None,
    }
