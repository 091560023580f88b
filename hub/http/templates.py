"""``/api/templates``: CRUD, search and paging, export and import of hub-managed templates.

Every write validates the whole body against the shared ``Template`` model first and stores
nothing on any error; after a write the Assigner republishes the configs of the agents concerned.
"""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web
from pydantic import ValidationError

from glimpser.hub.http.errors import ApiError, field_problem
from glimpser.hub.http.keys import HUB, Hub
from glimpser.hub.http.validation import invalid, query_int, read_object
from glimpser.hub.store.templates import (
    ConflictMode,
    TemplateExport,
    TemplateRecord,
)
from glimpser.shared.errors import ConfigError, NotFoundError
from glimpser.shared.ids import slugify, validate_id
from glimpser.shared.models import Template

routes = web.RouteTableDef()

MAX_LIMIT = 500
MAX_SEARCH = 200
# Ids that would be shadowed by the fixed paths below (GET /api/templates/export).
RESERVED_IDS = frozenset({"export", "import"})


# Fixed paths first: aiohttp matches in registration order, and "export" is a valid id.
@routes.get("/api/templates/export")
async def export_templates(request: web.Request) -> web.Response:
    """Every hub-managed template with its desired state, as one JSON document."""
    doc = await request.app[HUB].templates.export_all()
    disposition = 'attachment; filename="glimpser-templates.json"'
    return web.json_response(doc, headers={"Content-Disposition": disposition})


@routes.post("/api/templates/import")
async def import_templates(request: web.Request) -> web.Response:
    """Import an export document; ``on_conflict`` = skip (default) | overwrite | create_new."""
    hub = request.app[HUB]
    mode = request.query.get("on_conflict", "skip")
    if mode not in get_args(ConflictMode):
        allowed = ", ".join(get_args(ConflictMode))
        raise ApiError(400, f"query parameter 'on_conflict' must be one of {allowed}")
    body = await read_object(request)
    try:
        doc = TemplateExport.model_validate(body)
    except ValidationError as err:
        raise invalid(err, "import document") from err
    known = await known_agents(hub)
    for index, item in enumerate(doc.templates):
        _check_agent(item.template, known, f"templates.{index}.template.agent_id")
    try:
        report = await hub.templates.import_all(body, on_conflict=mode)  # type: ignore[arg-type]
    except ConfigError as err:
        raise ApiError(422, str(err)) from err
    await hub.assigner.sync()
    return web.json_response(report.model_dump(mode="json"))


@routes.get("/api/templates")
async def list_templates(request: web.Request) -> web.Response:
    """One page of templates by name: ``offset``, ``limit`` (≤ 500), ``search``, ``agent``,
    ``tag``."""
    hub = request.app[HUB]
    offset = query_int(request, "offset", 0, 0, 10**9)
    limit = query_int(request, "limit", 50, 1, MAX_LIMIT)
    search = request.query.get("search") or None
    if search is not None and len(search) > MAX_SEARCH:
        raise ApiError(400, f"query parameter 'search' is longer than {MAX_SEARCH} characters")
    agent = request.query.get("agent") or None
    if agent is not None:
        validate_id(agent, "agent id")
    tag = request.query.get("tag") or None
    items, total = await hub.templates.list(offset, limit, search, agent, tag)
    return web.json_response(
        {"items": [_dump(r) for r in items], "total": total, "offset": offset, "limit": limit}
    )


@routes.get("/api/templates/{id}")
async def get_template(request: web.Request) -> web.Response:
    """One template record."""
    hub = request.app[HUB]
    return web.json_response(_dump(await hub.templates.get(_id(request))))


@routes.post("/api/templates")
async def create_template(request: web.Request) -> web.Response:
    """Create a hub-managed template (201); a missing id is made from the name."""
    hub = request.app[HUB]
    body = await read_object(request)
    if body.get("id") is None and isinstance(body.get("name"), str):
        body["id"] = await _unique_id(hub, body["name"])
    template = _validate(body)
    if template.id in RESERVED_IDS:
        message = f"the id {template.id!r} is reserved by the API; pick another"
        raise ApiError(422, message, [field_problem("id", message)])
    _check_agent(template, await known_agents(hub))
    record = await hub.templates.create(template)
    await hub.assigner.sync()
    return web.json_response(_dump(record), status=201)


@routes.put("/api/templates/{id}")
async def replace_template(request: web.Request) -> web.Response:
    """Replace a hub-managed template whole; the body's id must match the URL or be absent."""
    hub = request.app[HUB]
    old = await _writable(hub, _id(request))
    body = _with_id(await read_object(request), old.template.id)
    return await _store_update(hub, old, _validate(body))


@routes.patch("/api/templates/{id}")
async def patch_template(request: web.Request) -> web.Response:
    """Merge the body into the template (JSON merge patch, RFC 7386), then validate the whole."""
    hub = request.app[HUB]
    old = await _writable(hub, _id(request))
    patch = _with_id(await read_object(request), old.template.id)
    merged = merge_patch(old.template.model_dump(mode="json"), patch)
    return await _store_update(hub, old, _validate(merged))


@routes.delete("/api/templates/{id}")
async def delete_template(request: web.Request) -> web.Response:
    """Delete a hub-managed template; its agent gets a config without it."""
    hub = request.app[HUB]
    template_id = _id(request)
    await _writable(hub, template_id)
    await hub.templates.delete(template_id)
    await hub.assigner.sync()
    return web.json_response({"success": True, "id": template_id})


async def known_agents(hub: Hub) -> set[str]:
    """Agents seen over MQTT, named by stored templates, or declared in the settings."""
    return hub.registry.agent_ids() | await hub.templates.agent_ids() | set(hub.settings.agents)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge; a ``source`` of another kind replaces the old source whole."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif key == "source" and _kind_changes(out.get(key), value):
            out[key] = value
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _kind_changes(old: Any, new: Any) -> bool:
    return (
        isinstance(old, dict)
        and isinstance(new, dict)
        and new.get("kind", old.get("kind")) != old.get("kind")
    )


async def _store_update(hub: Hub, old: TemplateRecord, template: Template) -> web.Response:
    known = await known_agents(hub)
    if template.agent_id != old.template.agent_id:
        _check_agent(template, known)
    record = await hub.templates.update(template)
    await hub.assigner.sync()
    return web.json_response(_dump(record))


async def _writable(hub: Hub, template_id: str) -> TemplateRecord:
    record = await hub.templates.get(template_id)
    if record.owner != "hub":
        raise ApiError(
            409,
            f"template {template_id!r} is defined in agent {record.template.agent_id}'s own "
            "configuration file and is read-only on the hub; change it on the agent",
        )
    return record


def _validate(body: dict[str, Any]) -> Template:
    try:
        return Template.model_validate(body)
    except ValidationError as err:
        raise invalid(err, "template") from err


def _check_agent(template: Template, known: set[str], field: str = "agent_id") -> None:
    agent = template.agent_id
    if agent is None or agent in known:
        return
    names = ", ".join(sorted(known)) or "none yet"
    message = f"unknown agent {agent!r}; known agents: {names}"
    raise ApiError(422, message, [field_problem(field, message)])


def _with_id(body: dict[str, Any], template_id: str) -> dict[str, Any]:
    if body.get("id", template_id) != template_id:
        message = f"the id in the body ({body['id']!r}) must match the URL ({template_id!r})"
        raise ApiError(422, message, [field_problem("id", message)])
    return {**body, "id": template_id}


async def _unique_id(hub: Hub, name: str) -> str:
    base = slugify(name)
    candidate, n = base, 2
    while await _exists(hub, candidate):
        suffix = f"-{n}"
        candidate = base[: 63 - len(suffix)] + suffix
        n += 1
    return candidate


async def _exists(hub: Hub, template_id: str) -> bool:
    if template_id in RESERVED_IDS:
        return True
    try:
        await hub.templates.get(template_id)
    except NotFoundError:
        return False
    return True


def _id(request: web.Request) -> str:
    return validate_id(request.match_info["id"], "template id")


def _dump(record: TemplateRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")
