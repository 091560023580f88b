"""Templates on the hub: CRUD, lifecycle (desired/execution), per-agent config revisions, export.

The stored document is ``Template.model_dump_json()`` — the shared pydantic model is the only
schema; the other columns are indexes and lifecycle fields derived from or kept beside it.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from pydantic import Field, ValidationError

from glimpser.hub.store.db import Database
from glimpser.shared.config import format_validation_error
from glimpser.shared.errors import ConfigError, NotFoundError, StorageError
from glimpser.shared.ids import validate_id
from glimpser.shared.models import AgentConfig, Model, Template, utcnow

__all__ = [
    "AgentSyncReport",
    "ConflictMode",
    "Desired",
    "DuplicateError",
    "ExportedTemplate",
    "ImportReport",
    "Owner",
    "ReadOnlyError",
    "SqliteTemplates",
    "TemplateExport",
    "TemplateRecord",
    "TemplateRepository",
]

Owner = Literal["hub", "agent"]
Desired = Literal["started", "stopped"]
ConflictMode = Literal["skip", "overwrite", "create_new"]

EXPORT_FORMAT: Literal["glimpser.templates"] = "glimpser.templates"
MAX_PAGE = 1000
MAX_ERROR_CHARS = 2000


class DuplicateError(StorageError):
    """A template with the same id or name (case-insensitive) already exists."""

    def __init__(self, field: Literal["id", "name"], value: str) -> None:
        super().__init__(f"a template with {field} {value!r} already exists")
        self.field = field
        self.value = value


class ReadOnlyError(StorageError):
    """The template is defined in an agent's own YAML and cannot be changed on the hub."""


class TemplateRecord(Model):
    """A stored template with its hub-side lifecycle fields."""

    template: Template
    owner: Owner
    desired: Desired
    execution_status: str | None = None
    last_executed_at: datetime | None = None
    last_error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    revision: int = Field(ge=1, description="bumped on every change of the template itself")


class ExportedTemplate(Model):
    """One template in an export document."""

    template: Template
    desired: Desired = "started"


class TemplateExport(Model):
    """The export/import document (hub-managed templates only)."""

    format: Literal["glimpser.templates"] = EXPORT_FORMAT
    version: Literal[1] = 1
    exported_at: datetime = Field(default_factory=utcnow)
    templates: list[ExportedTemplate] = Field(default_factory=list)


class ImportReport(Model):
    """What an import did, by template id (ids as stored after the import)."""

    created: list[str] = Field(default_factory=list)
    overwritten: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    renamed: dict[str, str] = Field(
        default_factory=dict, description="id in the document -> fresh id (create_new)"
    )


class AgentSyncReport(Model):
    """What syncing an agent's own templates did; ``clashes`` maps id -> why it was skipped."""

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    clashes: dict[str, str] = Field(default_factory=dict)


class TemplateRepository(Protocol):
    """Template storage as the hub uses it; SQLite today, PostgreSQL later (DESIGN §10)."""

    async def list(
        self,
        offset: int = 0,
        limit: int = 50,
        search: str | None = None,
        agent_id: str | None = None,
        tag: str | None = None,
    ) -> tuple[list[TemplateRecord], int]: ...

    async def get(self, template_id: str) -> TemplateRecord: ...

    async def create(self, template: Template, owner: Owner = "hub") -> TemplateRecord: ...

    async def update(self, template: Template) -> TemplateRecord: ...

    async def delete(self, template_id: str) -> None: ...

    async def set_desired(self, template_id: str, desired: Desired) -> TemplateRecord: ...

    async def record_execution(
        self, template_id: str, status: str, at: datetime | None, error: str | None
    ) -> TemplateRecord: ...

    async def agent_revision(self, agent_id: str) -> int: ...

    async def agent_revisions(self) -> dict[str, int]: ...

    async def agent_ids(self) -> set[str]: ...

    async def sync_agent_templates(
        self, agent_id: str, templates: builtins.list[Template]
    ) -> AgentSyncReport: ...

    async def templates_for_agent(self, agent_id: str) -> builtins.list[Template]: ...

    async def agent_config(self, agent_id: str) -> AgentConfig: ...

    async def export_all(self) -> dict[str, Any]: ...

    async def import_all(
        self, doc: Mapping[str, Any], on_conflict: ConflictMode = "skip"
    ) -> ImportReport: ...


_COLUMNS = (
    "body, owner, desired, execution_status, last_executed_at, last_error_message, "
    "created_at, updated_at, revision"
)


class SqliteTemplates:
    """TemplateRepository on the hub's SQLite database."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def list(
        self,
        offset: int = 0,
        limit: int = 50,
        search: str | None = None,
        agent_id: str | None = None,
        tag: str | None = None,
    ) -> tuple[list[TemplateRecord], int]:
        """One page ordered by name (case-insensitive) and the total matching count."""
        if offset < 0:
            raise ValueError("offset must be >= 0")
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        where, params = _filters(search, agent_id, tag)

        def query(conn: sqlite3.Connection) -> tuple[list[TemplateRecord], int]:
            total = conn.execute(f"SELECT COUNT(*) FROM templates {where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM templates {where} ORDER BY name_key, id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return [_record(row) for row in rows], int(total)

        return await self._db.run(query)

    async def get(self, template_id: str) -> TemplateRecord:
        """The template ``template_id``; NotFoundError names it when unknown."""
        return await self._db.run(lambda conn: _get(conn, template_id))

    async def create(self, template: Template, owner: Owner = "hub") -> TemplateRecord:
        """Store a new template; DuplicateError names the field (id or name) that clashes."""
        _check_literal(owner, Owner, "owner")
        now = self._clock()

        def write(conn: sqlite3.Connection) -> TemplateRecord:
            _ensure_free(conn, template)
            _insert(conn, template, owner, "started", now)
            if owner == "hub":
                _bump_agents(conn, [template.agent_id])
            return _get(conn, template.id)

        return await self._db.transaction(write)

    async def update(self, template: Template) -> TemplateRecord:
        """Replace a hub-managed template; its agents' revisions move only if it changed."""
        now = self._clock()

        def write(conn: sqlite3.Connection) -> TemplateRecord:
            old = _get(conn, template.id)
            _ensure_hub_owned(old)
            if old.template == template:
                return old
            _ensure_name_free(conn, template.name, template.id)
            _replace(conn, template, now)
            _bump_agents(conn, [old.template.agent_id, template.agent_id])
            return _get(conn, template.id)

        return await self._db.transaction(write)

    async def delete(self, template_id: str) -> None:
        """Delete a hub-managed template; NotFoundError when unknown."""

        def write(conn: sqlite3.Connection) -> None:
            old = _get(conn, template_id)
            _ensure_hub_owned(old)
            conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))
            _bump_agents(conn, [old.template.agent_id])

        await self._db.transaction(write)

    async def set_desired(self, template_id: str, desired: Desired) -> TemplateRecord:
        """Record whether the user wants the template running; survives hub restarts.

        A change moves the agent's config revision: AgentConfig carries ``desired``.
        """
        _check_literal(desired, Desired, "desired")

        def write(conn: sqlite3.Connection) -> TemplateRecord:
            old = _get(conn, template_id)
            if old.desired == desired:
                return old
            conn.execute("UPDATE templates SET desired = ? WHERE id = ?", (desired, template_id))
            _bump_agents(conn, [old.template.agent_id])
            return _get(conn, template_id)

        return await self._db.transaction(write)

    async def record_execution(
        self, template_id: str, status: str, at: datetime | None, error: str | None
    ) -> TemplateRecord:
        """Record what an agent last reported about running the template (``at`` None keeps
        the last execution time)."""
        message = error[:MAX_ERROR_CHARS] if error else None
        when = _ts(at) if at is not None else None

        def write(conn: sqlite3.Connection) -> TemplateRecord:
            _require(conn, template_id)
            conn.execute(
                "UPDATE templates SET execution_status = ?, "
                "last_executed_at = COALESCE(?, last_executed_at), "
                "last_error_message = ? WHERE id = ?",
                (str(status), when, message, template_id),
            )
            return _get(conn, template_id)

        return await self._db.transaction(write)

    async def agent_revision(self, agent_id: str) -> int:
        """The agent's config revision: 0 until a template is first assigned to it."""
        return await self._db.run(lambda conn: _revision(conn, agent_id))

    async def templates_for_agent(self, agent_id: str) -> builtins.list[Template]:
        """The hub-managed templates assigned to ``agent_id``, by id."""
        return await self._db.run(lambda conn: _for_agent(conn, agent_id))

    async def agent_config(self, agent_id: str) -> AgentConfig:
        """What to publish on the agent's config topic: revision, templates and desired states
        (of its hub-managed and its own templates), read together."""

        def read(conn: sqlite3.Connection) -> AgentConfig:
            desired = conn.execute(
                "SELECT id, desired FROM templates WHERE agent_id = ? ORDER BY id", (agent_id,)
            ).fetchall()
            return AgentConfig(
                revision=_revision(conn, agent_id),
                templates=_for_agent(conn, agent_id),
                desired=dict(desired),
            )

        return await self._db.run(read)

    async def agent_revisions(self) -> dict[str, int]:
        """Every agent that ever had a config, with its current revision."""

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT agent_id, revision FROM agent_revisions").fetchall()
            return {agent: int(rev) for agent, rev in rows}

        return await self._db.run(read)

    async def agent_ids(self) -> set[str]:
        """Agents named by a stored template or holding a config revision."""

        def read(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                "SELECT agent_id FROM templates WHERE agent_id IS NOT NULL "
                "UNION SELECT agent_id FROM agent_revisions"
            ).fetchall()
            return {row[0] for row in rows}

        return await self._db.run(read)

    async def seed_once(self, templates: builtins.list[Template]) -> builtins.list[str]:
        """Create ``templates`` (hub-managed) if no template was ever stored nor seeded before.

        Returns the ids created; a seed whose id or name repeats an earlier seed is skipped.
        """
        now = self._clock()

        def write(conn: sqlite3.Connection) -> builtins.list[str]:
            seeded = conn.execute("SELECT 1 FROM hub_meta WHERE key = 'seeded'").fetchone()
            empty = conn.execute("SELECT 1 FROM templates LIMIT 1").fetchone() is None
            conn.execute("INSERT OR REPLACE INTO hub_meta (key, value) VALUES ('seeded', '1')")
            if seeded or not empty:
                return []
            created: builtins.list[str] = []
            for template in templates:
                try:
                    _ensure_free(conn, template)
                except DuplicateError:
                    continue
                _insert(conn, template, "hub", "started", now)
                created.append(template.id)
            _bump_agents(conn, [t.agent_id for t in templates if t.id in created])
            return created

        return await self._db.transaction(write)

    async def sync_agent_templates(
        self, agent_id: str, templates: builtins.list[Template]
    ) -> AgentSyncReport:
        """Make the agent-owned templates of ``agent_id`` exactly ``templates`` (one transaction).

        Each template is stored with ``agent_id`` set to the publishing agent; one whose id or
        name is taken by a hub template or another agent's is skipped and reported as a clash.
        """
        validate_id(agent_id, "agent id")
        now = self._clock()

        def write(conn: sqlite3.Connection) -> AgentSyncReport:
            report = AgentSyncReport()
            listed: set[str] = set()
            for template in templates:
                listed.add(template.id)
                _sync_one(conn, agent_id, template, now, report)
            rows = conn.execute(
                "SELECT id FROM templates WHERE owner = 'agent' AND agent_id = ?", (agent_id,)
            ).fetchall()
            for (tid,) in rows:
                if tid not in listed:
                    conn.execute("DELETE FROM templates WHERE id = ?", (tid,))
                    report.deleted.append(tid)
            return report

        return await self._db.transaction(write)

    async def export_all(self) -> dict[str, Any]:
        """Every hub-managed template with its desired state, as a JSON-ready document."""

        def read(conn: sqlite3.Connection) -> builtins.list[ExportedTemplate]:
            rows = conn.execute(
                "SELECT body, desired FROM templates WHERE owner = 'hub' ORDER BY id"
            ).fetchall()
            return [
                ExportedTemplate(template=_template(body), desired=desired)
                for body, desired in rows
            ]

        items = await self._db.run(read)
        doc = TemplateExport(exported_at=self._clock(), templates=items)
        return doc.model_dump(mode="json")

    async def import_all(
        self, doc: Mapping[str, Any], on_conflict: ConflictMode = "skip"
    ) -> ImportReport:
        """Import an export document in one transaction; nothing is written unless all of it fits.

        Conflicts are an existing id or name: ``skip`` leaves the stored one, ``overwrite``
        replaces the stored template with the same id, ``create_new`` stores a copy under a fresh
        id and/or a name with a " (2)"-style suffix.
        """
        _check_literal(on_conflict, ConflictMode, "on_conflict")
        parsed = _parse_export(doc)
        now = self._clock()

        def write(conn: sqlite3.Connection) -> ImportReport:
            plan = _plan_import(_Existing.load(conn), parsed.templates, on_conflict)
            _apply_import(conn, plan, now)
            return plan.report

        return await self._db.transaction(write)


def _sync_one(
    conn: sqlite3.Connection,
    agent_id: str,
    template: Template,
    now: datetime,
    report: AgentSyncReport,
) -> None:
    if template.agent_id not in (None, agent_id):
        report.clashes[template.id] = f"it names agent {template.agent_id!r}"
        return
    template = template.model_copy(update={"agent_id": agent_id})
    row = conn.execute(
        "SELECT owner, agent_id FROM templates WHERE id = ?", (template.id,)
    ).fetchone()
    if row is not None and (row[0] != "agent" or row[1] != agent_id):
        holder = "a hub template" if row[0] == "hub" else f"agent {row[1]}'s template"
        report.clashes[template.id] = f"its id is taken by {holder}"
        return
    clash = conn.execute(
        "SELECT id FROM templates WHERE name_key = ? AND id != ?",
        (_name_key(template.name), template.id),
    ).fetchone()
    if clash is not None:
        report.clashes[template.id] = f"its name {template.name!r} is taken by {clash[0]!r}"
        return
    if row is None:
        _insert(conn, template, "agent", "started", now)
        report.created.append(template.id)
    elif _get(conn, template.id).template != template:
        _replace(conn, template, now)
        report.updated.append(template.id)


# --------------------------------------------------------------------------- import planning


@dataclass
class _Existing:
    """Ids and names already stored, updated while planning so entries see each other."""

    owners: dict[str, str]
    name_keys: dict[str, str]  # name_key -> id

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> _Existing:
        rows = conn.execute("SELECT id, owner, name_key FROM templates").fetchall()
        return cls(owners={r[0]: r[1] for r in rows}, name_keys={r[2]: r[0] for r in rows})

    def name_holder(self, name: str) -> str | None:
        return self.name_keys.get(_name_key(name))

    def take(self, template: Template, replaces: str | None = None) -> None:
        if replaces is not None:
            self.name_keys = {k: v for k, v in self.name_keys.items() if v != replaces}
        self.owners[template.id] = "hub"
        self.name_keys[_name_key(template.name)] = template.id


@dataclass
class _ImportPlan:
    inserts: list[ExportedTemplate] = field(default_factory=list)
    overwrites: list[ExportedTemplate] = field(default_factory=list)
    report: ImportReport = field(default_factory=ImportReport)


def _parse_export(doc: Mapping[str, Any]) -> TemplateExport:
    try:
        parsed = TemplateExport.model_validate(doc)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, "import")) from err
    ids: set[str] = set()
    names: set[str] = set()
    for index, item in enumerate(parsed.templates):
        key = _name_key(item.template.name)
        if item.template.id in ids:
            raise ConfigError(f"import: templates.{index}: duplicate id {item.template.id!r}")
        if key in names:
            raise ConfigError(f"import: templates.{index}: duplicate name {item.template.name!r}")
        ids.add(item.template.id)
        names.add(key)
    return parsed


def _plan_import(
    existing: _Existing, items: Iterable[ExportedTemplate], mode: ConflictMode
) -> _ImportPlan:
    plan = _ImportPlan()
    for item in items:
        t = item.template
        holder = existing.name_holder(t.name)
        id_taken = t.id in existing.owners
        if not id_taken and holder is None:
            plan.inserts.append(item)
            plan.report.created.append(t.id)
            existing.take(t)
        elif mode == "skip":
            plan.report.skipped.append(t.id)
        elif mode == "overwrite":
            _plan_overwrite(existing, item, holder, id_taken, plan)
        else:
            fresh = _fresh_copy(existing, t, id_taken, holder is not None)
            plan.inserts.append(ExportedTemplate(template=fresh, desired=item.desired))
            plan.report.created.append(fresh.id)
            if fresh.id != t.id:
                plan.report.renamed[t.id] = fresh.id
            existing.take(fresh)
    return plan


def _plan_overwrite(
    existing: _Existing,
    item: ExportedTemplate,
    holder: str | None,
    id_taken: bool,
    plan: _ImportPlan,
) -> None:
    t = item.template
    if not id_taken or (holder is not None and holder != t.id):
        # Overwrite matches by id; replacing a different template that merely shares the name
        # would silently change ids other systems refer to, so the import fails instead.
        raise DuplicateError("name", t.name)
    if existing.owners[t.id] != "hub":
        raise ReadOnlyError(f"template {t.id!r} is defined by its agent and cannot be overwritten")
    plan.overwrites.append(item)
    plan.report.overwritten.append(t.id)
    existing.take(t, replaces=t.id)


def _fresh_copy(existing: _Existing, t: Template, id_taken: bool, name_taken: bool) -> Template:
    new_id, new_name = t.id, t.name
    n = 2
    while id_taken and new_id in existing.owners:
        suffix = f"-{n}"
        new_id = validate_id(t.id[: 63 - len(suffix)] + suffix, "template id")
        n += 1
    n = 2
    while name_taken and existing.name_holder(new_name) is not None:
        suffix = f" ({n})"
        new_name = t.name[: 100 - len(suffix)] + suffix
        n += 1
    return t.model_copy(update={"id": new_id, "name": new_name})


def _apply_import(conn: sqlite3.Connection, plan: _ImportPlan, now: datetime) -> None:
    agents: list[str | None] = []
    for item in plan.inserts:
        _insert(conn, item.template, "hub", item.desired, now)
        agents.append(item.template.agent_id)
    for item in plan.overwrites:
        agents.append(_get(conn, item.template.id).template.agent_id)
        _replace(conn, item.template, now)
        conn.execute(
            "UPDATE templates SET desired = ? WHERE id = ?", (item.desired, item.template.id)
        )
        agents.append(item.template.agent_id)
    _bump_agents(conn, agents)


# --------------------------------------------------------------------------- SQL helpers


def _filters(search: str | None, agent_id: str | None, tag: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if search:
        # instr() rather than LIKE: the user's text is matched literally, '%' and '_' included.
        clauses.append("instr(search_text, ?) > 0")
        params.append(search.casefold())
    if agent_id is not None:
        clauses.append("agent_id = ?")
        params.append(agent_id)
    if tag:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(templates.body, '$.tags') WHERE lower(value) = ?)"
        )
        params.append(tag.lower())
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _insert(conn: sqlite3.Connection, t: Template, owner: str, desired: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO templates (id, name, name_key, agent_id, kind, enabled, owner, desired, "
        "created_at, updated_at, revision, search_text, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (
            t.id, t.name, _name_key(t.name), t.agent_id, t.source.kind, int(t.enabled),
            owner, desired, _ts(now), _ts(now), _search_text(t), t.model_dump_json(),
        ),
    )  # fmt: skip


def _replace(conn: sqlite3.Connection, t: Template, now: datetime) -> None:
    conn.execute(
        "UPDATE templates SET name = ?, name_key = ?, agent_id = ?, kind = ?, enabled = ?, "
        "updated_at = ?, revision = revision + 1, search_text = ?, body = ? WHERE id = ?",
        (
            t.name, _name_key(t.name), t.agent_id, t.source.kind, int(t.enabled), _ts(now),
            _search_text(t), t.model_dump_json(), t.id,
        ),
    )  # fmt: skip


def _ensure_free(conn: sqlite3.Connection, t: Template) -> None:
    if conn.execute("SELECT 1 FROM templates WHERE id = ?", (t.id,)).fetchone():
        raise DuplicateError("id", t.id)
    _ensure_name_free(conn, t.name, t.id)


def _ensure_name_free(conn: sqlite3.Connection, name: str, own_id: str) -> None:
    row = conn.execute(
        "SELECT id FROM templates WHERE name_key = ? AND id != ?", (_name_key(name), own_id)
    ).fetchone()
    if row:
        raise DuplicateError("name", name)


def _ensure_hub_owned(record: TemplateRecord) -> None:
    if record.owner != "hub":
        raise ReadOnlyError(
            f"template {record.template.id!r} is defined in its agent's configuration file "
            "and is read-only on the hub"
        )


def _require(conn: sqlite3.Connection, template_id: str) -> None:
    if not conn.execute("SELECT 1 FROM templates WHERE id = ?", (template_id,)).fetchone():
        raise NotFoundError(f"unknown template {template_id!r}")


def _get(conn: sqlite3.Connection, template_id: str) -> TemplateRecord:
    row = conn.execute(f"SELECT {_COLUMNS} FROM templates WHERE id = ?", (template_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"unknown template {template_id!r}")
    return _record(row)


def _for_agent(conn: sqlite3.Connection, agent_id: str) -> list[Template]:
    rows = conn.execute(
        "SELECT body FROM templates WHERE owner = 'hub' AND agent_id = ? ORDER BY id", (agent_id,)
    ).fetchall()
    return [_template(row[0]) for row in rows]


def _revision(conn: sqlite3.Connection, agent_id: str) -> int:
    row = conn.execute(
        "SELECT revision FROM agent_revisions WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def _bump_agents(conn: sqlite3.Connection, agent_ids: Iterable[str | None]) -> None:
    for agent_id in sorted({a for a in agent_ids if a is not None}):
        conn.execute(
            "INSERT INTO agent_revisions (agent_id, revision) VALUES (?, 1) "
            "ON CONFLICT (agent_id) DO UPDATE SET revision = revision + 1",
            (agent_id,),
        )


def _record(row: tuple[Any, ...]) -> TemplateRecord:
    body, owner, desired, status, executed, error, created, updated, revision = row
    return TemplateRecord(
        template=_template(body),
        owner=owner,
        desired=desired,
        execution_status=status,
        last_executed_at=_dt(executed) if executed is not None else None,
        last_error_message=error,
        created_at=_dt(created),
        updated_at=_dt(updated),
        revision=revision,
    )


def _template(body: str) -> Template:
    try:
        return Template.model_validate_json(body)
    except ValidationError as err:
        raise StorageError(f"stored template no longer validates: {err}") from err


def _search_text(t: Template) -> str:
    return "\n".join([t.id, t.name, t.notes, *t.tags]).casefold()


def _name_key(name: str) -> str:
    return name.strip().casefold()


def _check_literal(value: str, kind: Any, what: str) -> None:
    allowed = get_args(kind)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def _ts(value: datetime) -> float:
    if value.tzinfo is None:
        raise ValueError("naive datetime: give a timezone-aware time")
    return value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
