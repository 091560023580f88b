"""Templates on the hub: CRUD, lifecycle across restarts, agent revisions, export/import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from glimpser.hub.store.db import Database
from glimpser.hub.store.templates import (
    DuplicateError,
    ReadOnlyError,
    SqliteTemplates,
    TemplateRepository,
)
from glimpser.shared.errors import ConfigError, NotFoundError
from glimpser.shared.models import Template


def make(tid: str, name: str | None = None, **kw: Any) -> Template:
    """A valid test-pattern template."""
    return Template.model_validate(
        {"id": tid, "name": name or tid.title(), "source": {"kind": "test"}, **kw}
    )


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[SqliteTemplates]:
    async with Database(tmp_path / "hub.db") as db:
        yield SqliteTemplates(db)


async def count(repo: SqliteTemplates) -> int:
    return (await repo.list(0, 1000))[1]


def test_sqlite_templates_is_a_template_repository(tmp_path: Path) -> None:
    impl: TemplateRepository = SqliteTemplates(Database(tmp_path / "x.db"))
    assert impl is not None


async def test_create_get_update_delete(repo: SqliteTemplates) -> None:
    created = await repo.create(make("cam1", "Front door", fps=5))
    assert created.owner == "hub" and created.desired == "started" and created.revision == 1
    got = await repo.get("cam1")
    assert got.template == make("cam1", "Front door", fps=5)

    updated = await repo.update(make("cam1", "Front door", fps=10))
    assert updated.template.fps == 10 and updated.revision == 2
    assert updated.created_at == created.created_at

    await repo.delete("cam1")
    with pytest.raises(NotFoundError, match="cam1"):
        await repo.get("cam1")
    with pytest.raises(NotFoundError, match="cam1"):
        await repo.delete("cam1")
    with pytest.raises(NotFoundError, match="nope"):
        await repo.update(make("nope"))


async def test_list_pages_searches_and_filters(repo: SqliteTemplates) -> None:
    for i in range(7):
        await repo.create(make(f"t{i}", f"Camera {i}", agent_id="pi1" if i % 2 else "pi2"))
    await repo.create(make("garage", "Garage", notes="Looks at the DRIVEWAY", tags=["Outdoor"]))

    page, total = await repo.list(offset=0, limit=3)
    assert total == 8 and [r.template.id for r in page] == ["t0", "t1", "t2"]
    page, total = await repo.list(offset=6, limit=3)
    assert [r.template.id for r in page] == ["t6", "garage"]
    assert (await repo.list(search="driveway"))[1] == 1  # notes, case-insensitive
    assert (await repo.list(search="GARAGE"))[0][0].template.id == "garage"  # name
    assert (await repo.list(search="t3"))[0][0].template.id == "t3"  # id
    assert (await repo.list(search="outdoor"))[1] == 1  # tags
    assert (await repo.list(search="%"))[1] == 0  # literal, not a LIKE wildcard
    assert (await repo.list(tag="OUTDOOR"))[1] == 1
    assert (await repo.list(agent_id="pi1"))[1] == 3
    items, total = await repo.list(agent_id="pi2", search="camera", limit=2)
    assert total == 4 and len(items) == 2
    with pytest.raises(ValueError):
        await repo.list(limit=0)


async def test_list_orders_by_name_case_insensitively(repo: SqliteTemplates) -> None:
    await repo.create(make("b", "beta"))
    await repo.create(make("a", "Alpha"))
    await repo.create(make("c", "Gamma"))
    page, _ = await repo.list()
    assert [r.template.name for r in page] == ["Alpha", "beta", "Gamma"]


async def test_duplicate_id_or_name_rejected_and_nothing_stored(repo: SqliteTemplates) -> None:
    await repo.create(make("cam1", "Front Door", agent_id="pi1"))
    revision = await repo.agent_revision("pi1")
    with pytest.raises(DuplicateError) as info:
        await repo.create(make("cam1", "Other", agent_id="pi1"))
    assert info.value.field == "id"
    with pytest.raises(DuplicateError) as info:
        await repo.create(make("cam2", "front DOOR", agent_id="pi1"))
    assert info.value.field == "name"
    assert await count(repo) == 1
    assert await repo.agent_revision("pi1") == revision
    await repo.create(make("cam2", "Back door"))
    with pytest.raises(DuplicateError):
        await repo.update(make("cam2", "FRONT door"))
    assert (await repo.get("cam2")).template.name == "Back door"


async def test_lifecycle_survives_a_hub_restart(tmp_path: Path) -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with Database(tmp_path / "hub.db") as db:
        repo = SqliteTemplates(db)
        await repo.create(make("cam1", agent_id="pi1"))
        await repo.set_desired("cam1", "stopped")
        await repo.record_execution("cam1", "error", at, "camera unplugged")
        with pytest.raises(ValueError):
            await repo.set_desired("cam1", "paused")  # type: ignore[arg-type]
        with pytest.raises(NotFoundError):
            await repo.set_desired("ghost", "started")
    async with Database(tmp_path / "hub.db") as db:
        record = await SqliteTemplates(db).get("cam1")
        revision = await SqliteTemplates(db).agent_revision("pi1")
    assert record.desired == "stopped"
    assert record.execution_status == "error"
    assert record.last_executed_at == at
    assert record.last_error_message == "camera unplugged"
    assert revision == 2  # created, then stopped (AgentConfig carries desired)


async def test_agent_revision_moves_only_for_affected_agents(repo: SqliteTemplates) -> None:
    assert await repo.agent_revision("pi1") == 0
    await repo.create(make("a", agent_id="pi1"))
    await repo.create(make("b", agent_id="pi2"))
    await repo.create(make("c"))  # unassigned: nobody's config changes
    assert (await repo.agent_revision("pi1"), await repo.agent_revision("pi2")) == (1, 1)

    await repo.update(make("a", agent_id="pi1", fps=2))
    assert (await repo.agent_revision("pi1"), await repo.agent_revision("pi2")) == (2, 1)
    await repo.update(make("a", agent_id="pi1", fps=2))  # no change, no new revision
    assert await repo.agent_revision("pi1") == 2

    await repo.update(make("a", agent_id="pi2", fps=2))  # moved: both configs change
    assert (await repo.agent_revision("pi1"), await repo.agent_revision("pi2")) == (3, 2)
    await repo.set_desired("b", "stopped")  # AgentConfig carries desired: a new revision
    assert await repo.agent_revision("pi2") == 3
    await repo.set_desired("b", "stopped")  # unchanged: no new revision
    await repo.record_execution("b", "active", datetime.now(UTC), None)
    assert await repo.agent_revision("pi2") == 3  # execution reports are not configuration

    await repo.delete("b")
    assert (await repo.agent_revision("pi1"), await repo.agent_revision("pi2")) == (3, 4)
    config = await repo.agent_config("pi2")
    assert config.revision == 4 and [t.id for t in config.templates] == ["a"]
    assert config.desired == {"a": "started"}
    assert await repo.templates_for_agent("pi1") == []


async def test_agent_owned_templates_are_read_only(repo: SqliteTemplates) -> None:
    await repo.create(make("yaml1", agent_id="pi1"), owner="agent")
    assert await repo.agent_revision("pi1") == 0  # not part of the hub-assigned config
    assert await repo.templates_for_agent("pi1") == []
    with pytest.raises(ReadOnlyError):
        await repo.update(make("yaml1", agent_id="pi1", fps=3))
    with pytest.raises(ReadOnlyError):
        await repo.delete("yaml1")
    assert (await repo.set_desired("yaml1", "stopped")).desired == "stopped"


async def seeded(repo: SqliteTemplates) -> dict[str, Any]:
    await repo.create(make("cam1", "Front", agent_id="pi1", tags=["door"]))
    await repo.create(make("cam2", "Back", agent_id="pi2", fps=3))
    await repo.set_desired("cam2", "stopped")
    await repo.create(make("yaml1", "From YAML", agent_id="pi1"), owner="agent")
    return await repo.export_all()


async def test_export_holds_hub_templates_and_imports_into_an_empty_hub(tmp_path: Path) -> None:
    async with Database(tmp_path / "a.db") as db:
        doc = await seeded(SqliteTemplates(db))
    assert [e["template"]["id"] for e in doc["templates"]] == ["cam1", "cam2"]
    async with Database(tmp_path / "b.db") as db:
        other = SqliteTemplates(db)
        report = await other.import_all(doc)
        assert report.created == ["cam1", "cam2"]
        assert (await other.get("cam2")).desired == "stopped"
        assert (await other.get("cam1")).template.tags == ["door"]
        assert await other.agent_revision("pi1") == 1


async def test_import_skip_leaves_existing(repo: SqliteTemplates) -> None:
    doc = await seeded(repo)
    doc["templates"][0]["template"]["fps"] = 9
    report = await repo.import_all(doc, on_conflict="skip")
    assert report.skipped == ["cam1", "cam2"] and report.created == []
    assert (await repo.get("cam1")).template.fps is None


async def test_import_overwrite_replaces_by_id(repo: SqliteTemplates) -> None:
    doc = await seeded(repo)
    doc["templates"][0]["template"]["fps"] = 9
    doc["templates"][0]["desired"] = "stopped"
    before = await repo.agent_revision("pi1")
    report = await repo.import_all(doc, on_conflict="overwrite")
    assert report.overwritten == ["cam1", "cam2"]
    record = await repo.get("cam1")
    assert record.template.fps == 9 and record.desired == "stopped" and record.revision == 2
    assert await repo.agent_revision("pi1") == before + 1
    assert await count(repo) == 3


async def test_import_create_new_gives_fresh_ids_and_names(repo: SqliteTemplates) -> None:
    doc = await seeded(repo)
    report = await repo.import_all(doc, on_conflict="create_new")
    assert report.renamed == {"cam1": "cam1-2", "cam2": "cam2-2"}
    assert (await repo.get("cam1-2")).template.name == "Front (2)"
    report = await repo.import_all(doc, on_conflict="create_new")
    assert (await repo.get(report.renamed["cam1"])).template.name == "Front (3)"
    assert await count(repo) == 7


async def test_invalid_document_imports_nothing(repo: SqliteTemplates) -> None:
    good = {"id": "ok1", "name": "Fine", "source": {"kind": "test"}}
    bad = {"id": "Bad/../id", "name": "x", "source": {"kind": "test"}}
    doc = {"format": "glimpser.templates", "version": 1, "templates": [
        {"template": good}, {"template": bad},
    ]}  # fmt: skip
    with pytest.raises(ConfigError, match=r"templates\.1\.template\.id"):
        await repo.import_all(doc)
    duplicated = {**doc, "templates": [{"template": good}, {"template": {**good, "id": "ok2"}}]}
    with pytest.raises(ConfigError, match="duplicate name"):
        await repo.import_all(duplicated)
    with pytest.raises(ConfigError):
        await repo.import_all({"templates": "nope"})
    assert await count(repo) == 0


async def test_overwrite_that_clashes_on_name_imports_nothing(repo: SqliteTemplates) -> None:
    await repo.create(make("cam1", "Front"))
    doc = {"templates": [
        {"template": make("new1", "Fresh").model_dump(mode="json")},
        {"template": make("new2", "FRONT").model_dump(mode="json")},
    ]}  # fmt: skip
    with pytest.raises(DuplicateError):
        await repo.import_all(doc, on_conflict="overwrite")
    assert await count(repo) == 1


async def test_sync_agent_templates_creates_updates_deletes_and_reports_clashes(
    repo: SqliteTemplates,
) -> None:
    await repo.create(make("hubcam", "Hub cam", agent_id="pi1"))
    report = await repo.sync_agent_templates(
        "pi2",
        [
            make("yard"),
            make("hubcam", "Other name"),  # id taken by a hub template
            make("porch", "HUB CAM"),  # name taken
            make("shed", agent_id="pi9"),  # names another agent
        ],
    )
    assert report.created == ["yard"]
    assert set(report.clashes) == {"hubcam", "porch", "shed"}
    yard = await repo.get("yard")
    assert yard.owner == "agent" and yard.template.agent_id == "pi2"
    assert (await repo.get("hubcam")).owner == "hub"

    again = await repo.sync_agent_templates("pi2", [make("yard", fps=3)])
    assert again.updated == ["yard"] and again.created == []
    clash = await repo.sync_agent_templates("pi3", [make("yard")])  # another agent's id
    assert "yard" in clash.clashes
    gone = await repo.sync_agent_templates("pi2", [])
    assert gone.deleted == ["yard"]
    with pytest.raises(NotFoundError):
        await repo.get("yard")


async def test_record_execution_without_a_time_keeps_the_last_one(repo: SqliteTemplates) -> None:
    at = datetime(2025, 1, 2, tzinfo=UTC)
    await repo.create(make("cam1", agent_id="pi1"))
    await repo.record_execution("cam1", "active", at, None)
    record = await repo.record_execution("cam1", "error", None, "boom")
    assert record.last_executed_at == at and record.execution_status == "error"


async def test_seed_once(tmp_path: Path) -> None:
    async with Database(tmp_path / "hub.db") as db:
        repo = SqliteTemplates(db)
        assert await repo.seed_once([make("a", agent_id="pi1"), make("a", "Again")]) == ["a"]
        assert await repo.agent_revision("pi1") == 1
        await repo.delete("a")
        assert await repo.seed_once([make("b")]) == []  # seeded before: never again
    async with Database(tmp_path / "other.db") as db:
        repo = SqliteTemplates(db)
        await repo.create(make("mine"))
        assert await repo.seed_once([make("b")]) == []  # not empty: the user's own setup wins
        assert await repo.agent_ids() == set()
        assert await repo.agent_revisions() == {}
