"""The agent's durable state: round trips, atomic writes under SIGKILL, corrupt files."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from glimpser.agent.state import AgentStateStore, AtomicJSONStorage
from glimpser.shared.errors import InvalidIdError, StorageError
from glimpser.shared.models import AgentConfig, Template


def config(revision: int, count: int = 2, notes: str = "") -> AgentConfig:
    templates = [
        Template.model_validate(
            {"id": f"t{i}", "name": f"T {i}", "source": {"kind": "test"}, "notes": notes}
        )
        for i in range(count)
    ]
    return AgentConfig(revision=revision, templates=templates)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def set_aside(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith("state.json.corrupt-"))


async def test_empty_store_has_nothing(tmp_path: Path) -> None:
    async with AgentStateStore(tmp_path / "state.json") as store:
        assert await store.load_config() is None
        assert await store.all_desired() == {}
        assert await store.desired("cam1") is None


async def test_round_trip_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data" / "state.json"
    async with AgentStateStore(path) as store:
        await store.save_config(config(1))
        await store.save_config(config(2, count=3))
        await store.set_desired("t0", "stopped")
        await store.set_desired("t1", "started")
        await store.set_desired("t1", "stopped")
        await store.set_desired("gone", "started")
        await store.forget("gone")
    async with AgentStateStore(path) as store:
        assert await store.load_config() == config(2, count=3)
        assert await store.all_desired() == {"t0": "stopped", "t1": "stopped"}
        assert await store.desired("t1") == "stopped"
    assert leftovers(path.parent) == []


async def test_bad_input_is_rejected(tmp_path: Path) -> None:
    async with AgentStateStore(tmp_path / "state.json") as store:
        with pytest.raises(InvalidIdError):
            await store.set_desired("../x", "started")
        with pytest.raises(ValueError):
            await store.set_desired("cam1", "paused")  # type: ignore[arg-type]


async def test_use_outside_the_context_is_an_error(tmp_path: Path) -> None:
    store = AgentStateStore(tmp_path / "state.json")
    with pytest.raises(StorageError, match="not open"):
        await store.load_config()


async def test_failure_between_temp_write_and_replace_keeps_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    async with AgentStateStore(path) as store:
        await store.save_config(config(1))

        def failing_replace(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", failing_replace)
        with pytest.raises(StorageError, match="No space left"):
            await store.save_config(config(2))
        monkeypatch.undo()
        assert leftovers(tmp_path) == []
        assert await store.load_config() == config(1)
    async with AgentStateStore(path) as store:
        assert await store.load_config() == config(1)


@pytest.mark.parametrize(
    "content", [b'{"config": {"1": {"config": {"revision": ', b"\x00\xff\xfe garbage", b"[1, 2]"]
)
async def test_corrupt_file_is_moved_aside_and_the_agent_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="glimpser.agent.state"):
        async with AgentStateStore(path) as store:
            assert await store.load_config() is None
            await store.save_config(config(7))
            assert await store.load_config() == config(7)
    aside = set_aside(tmp_path)
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert any("unreadable" in r.getMessage() for r in caplog.records)


async def test_a_config_that_no_longer_validates_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    AtomicJSONStorage(path).write({"config": {"1": {"config": {"revision": -1}}}})
    async with AgentStateStore(path) as store:
        assert await store.load_config() is None


async def test_stale_temp_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    (tmp_path / ".state.json.tmp-123-abcd").write_bytes(b'{"half": ')
    async with AgentStateStore(path):
        pass
    assert leftovers(tmp_path) == []


# A child process that rewrites a big state as fast as it can; each state is self-consistent
# (template count and notes derive from the revision), so a torn write would be detected.
WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from glimpser.agent.state import AgentStateStore
    from glimpser.shared.models import AgentConfig, Template

    def state(revision):
        count = 150 + revision % 50
        notes = f"revision {revision} " * 40
        return AgentConfig(revision=revision, templates=[
            Template.model_validate({"id": f"t{i}", "name": f"T {i}",
                                     "source": {"kind": "test"}, "notes": notes})
            for i in range(count)
        ])

    async def main():
        async with AgentStateStore(Path(sys.argv[1])) as store:
            old = await store.load_config()
            revision = old.revision + 1 if old else 0
            await store.save_config(state(revision))
            print("ready", flush=True)
            while True:
                revision += 1
                await store.save_config(state(revision))
                await store.set_desired(f"t{revision % 7}", "stopped")

    asyncio.run(main())
    """
)


def assert_consistent(cfg: AgentConfig | None) -> None:
    assert cfg is not None
    assert len(cfg.templates) == 150 + cfg.revision % 50
    expected = f"revision {cfg.revision} " * 40
    assert all(t.notes == expected for t in cfg.templates)


async def test_sigkill_during_writes_always_leaves_a_complete_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rng = random.Random(1234)
    revisions: list[int] = []
    for _ in range(6):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=20)
        if line != b"ready\n":
            _, err = await child.communicate()
            pytest.fail(f"writer did not start: {line!r} {err.decode()[-2000:]}")
        # Sleeping is the point here: the kill must land at an arbitrary moment of the loop.
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        await child.wait()
        assert child.returncode == -signal.SIGKILL

        async with AgentStateStore(path) as store:
            cfg = await store.load_config()
            assert_consistent(cfg)
            assert cfg is not None
            revisions.append(cfg.revision)
        assert set_aside(tmp_path) == []
    # Each child resumed from the previous one's last complete state and wrote more.
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
