"""The agent's small durable state: the last config the hub assigned and per-stream desired state.

An agent restarted with no broker reachable runs what it ran before from this file (DESIGN §5).
TinyDB holds it; every write replaces the whole file atomically (temp file, fsync, rename, fsync
of the directory), so a crash at any instant leaves either the old or the new state, never a mix.
All TinyDB calls run on one dedicated thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import ValidationError
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from glimpser.shared.errors import StorageError
from glimpser.shared.ids import validate_id
from glimpser.shared.models import AgentConfig
from glimpser.shared.threadowner import ThreadOwned

__all__ = ["AgentStateStore", "AtomicJSONStorage", "Desired"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Desired = Literal["started", "stopped"]

_CONFIG_TABLE = "config"
_DESIRED_TABLE = "desired"
_CONFIG_DOC_ID = 1


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces its JSON file atomically on every write."""

    def __init__(self, path: str | os.PathLike[str], **_kwargs: Any) -> None:
        super().__init__()
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        """The stored tables, or None when the file is missing or empty."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        return _check_shape(json.loads(raw))

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace the file with ``data``: temp file, flush+fsync, os.replace, fsync the dir."""
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            with open(tmp, "xb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # The rename is durable only once the directory entry is on disk.
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        """Nothing to close: no file handle is kept between calls."""


class AgentStateStore(ThreadOwned):
    """Async context manager over the agent's TinyDB state file."""

    _thread_name = "agent-state"
    _what = "agent state"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._db: TinyDB | None = None

    async def save_config(self, config: AgentConfig) -> None:
        """Remember ``config`` as the last one the hub assigned."""
        doc = Document({"config": config.model_dump(mode="json")}, doc_id=_CONFIG_DOC_ID)
        await self._run(lambda db: db.table(_CONFIG_TABLE).upsert(doc))

    async def load_config(self) -> AgentConfig | None:
        """The last assigned config, or None (nothing saved, or it no longer validates)."""
        doc = await self._run(lambda db: db.table(_CONFIG_TABLE).get(doc_id=_CONFIG_DOC_ID))
        if doc is None:
            return None
        try:
            return AgentConfig.model_validate(dict(cast(Mapping[str, Any], doc))["config"])
        except (KeyError, ValidationError) as err:
            log.warning("ignoring the saved agent config in %s: %s", self.path, err)
            return None

    async def set_desired(self, stream_id: str, desired: Desired) -> None:
        """Remember whether ``stream_id`` should run."""
        validate_id(stream_id, "stream id")
        if desired not in ("started", "stopped"):
            raise ValueError(f"desired must be 'started' or 'stopped', not {desired!r}")
        doc = {"stream_id": stream_id, "desired": desired}
        await self._run(
            lambda db: db.table(_DESIRED_TABLE).upsert(doc, Query().stream_id == stream_id)
        )

    async def desired(self, stream_id: str) -> Desired | None:
        """The remembered desired state of ``stream_id``, or None."""
        return (await self.all_desired()).get(stream_id)

    async def all_desired(self) -> dict[str, Desired]:
        """Every remembered desired state, by stream id."""
        docs = await self._run(lambda db: db.table(_DESIRED_TABLE).all())
        out: dict[str, Desired] = {}
        for doc in docs:
            stream, value = doc.get("stream_id"), doc.get("desired")
            if isinstance(stream, str) and value in ("started", "stopped"):
                out[stream] = value
        return out

    async def forget(self, stream_id: str) -> None:
        """Drop the desired state of a stream that no longer exists."""
        await self._run(lambda db: db.table(_DESIRED_TABLE).remove(Query().stream_id == stream_id))

    # ------------------------------------------------------------------ state thread only

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(self.path)
        try:
            AtomicJSONStorage(self.path).read()
        except (ValueError, UnicodeDecodeError) as err:
            # A state we cannot read must not keep the agent from starting: keep the bytes for
            # a post-mortem and start empty; the hub re-sends the config when it is reachable.
            aside = self.path.with_name(
                f"{self.path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}"
            )
            os.replace(self.path, aside)
            log.warning("agent state %s is unreadable (%s); moved to %s", self.path, err, aside)
        except OSError as err:
            raise StorageError(f"cannot read agent state {self.path}: {err}") from err
        self._db = TinyDB(self.path, storage=AtomicJSONStorage)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _run(self, fn: Callable[[TinyDB], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise StorageError("agent state is not open")
            try:
                return fn(self._db)
            except (OSError, ValueError) as err:
                raise StorageError(f"agent state {self.path}: {err}") from err

        return await self._submit(call)


def _check_shape(data: Any) -> dict[str, dict[str, Any]]:
    # TinyDB expects {table: {doc_id: document}}; anything else would crash it later.
    if not isinstance(data, dict) or not all(
        isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
        for table in data.values()
    ):
        raise ValueError("not a TinyDB document: expected {table: {id: document}}")
    return data


def _remove_stale_temps(path: Path) -> None:
    # Temp files of a writer killed before its rename; the real file is intact without them.
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
