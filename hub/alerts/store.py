"""SQLite persistence of rules, snoozes, seen event ids, alerts and deliveries.

The alert tables migrate through their own version table (``alert_schema_version``) applied
with ``Database.run`` when the service starts, so they never collide with the numbering of
``glimpser.hub.store.db.MIGRATIONS``. Every method runs its SQL on the database thread; every
write that decides something (dedupe, cooldown, claiming a delivery) is one IMMEDIATE
transaction, so concurrent callers (or, later, hub replicas) cannot both win.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from glimpser.hub.alerts.models import (
    Alert,
    AlertDetail,
    AlertRule,
    AlertState,
    Delivery,
    DeliveryAttempt,
    RuleSpec,
    Suppression,
)
from glimpser.hub.alerts.rules import Trigger
from glimpser.hub.store.db import Database
from glimpser.shared.errors import NotFoundError, StorageError

__all__ = ["ALERT_MIGRATIONS", "AlertFilter", "AlertStore", "Claimed", "Firing", "StateError"]

# Ordered, append-only, like db.MIGRATIONS. Times are REAL UNIX seconds (UTC).
ALERT_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE alert_rules (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        body       TEXT NOT NULL                   -- RuleSpec JSON: THE schema
    );
    CREATE TABLE alert_snoozes (
        scope  TEXT NOT NULL CHECK (scope IN ('rule', 'stream')),
        target TEXT NOT NULL,                      -- rule id, or 'stream' / 'agent.stream'
        until  REAL NOT NULL,
        PRIMARY KEY (scope, target)
    );
    CREATE TABLE alert_events (                    -- every event id that reached a rule
        event_id    TEXT PRIMARY KEY,
        type        TEXT NOT NULL,
        agent_id    TEXT NOT NULL,
        stream_id   TEXT,
        at          REAL NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX alert_events_received ON alert_events (received_at);
    CREATE TABLE alerts (
        id              TEXT PRIMARY KEY,
        rule_id         TEXT NOT NULL,
        rule_name       TEXT NOT NULL,
        type            TEXT NOT NULL,
        agent_id        TEXT NOT NULL,
        stream_id       TEXT NOT NULL DEFAULT '',  -- '' for agent events
        stream_name     TEXT,
        event_id        TEXT NOT NULL,
        dedupe_key      TEXT NOT NULL,
        event_at        REAL NOT NULL,
        fired_at        REAL NOT NULL,
        state           TEXT NOT NULL
                        CHECK (state IN ('new', 'acknowledged', 'resolved', 'suppressed')),
        suppressed      TEXT,
        repeats         INTEGER NOT NULL DEFAULT 0,
        title           TEXT NOT NULL,
        message         TEXT NOT NULL,
        data            TEXT NOT NULL,
        acknowledged_at REAL,
        resolved_at     REAL,
        UNIQUE (rule_id, dedupe_key)
    );
    CREATE INDEX alerts_time ON alerts (fired_at, id);
    CREATE INDEX alerts_cooldown ON alerts (rule_id, agent_id, stream_id, type, fired_at);
    CREATE INDEX alerts_open ON alerts (type, agent_id, stream_id, state);
    CREATE TABLE alert_snapshots (
        alert_id TEXT PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
        jpeg     BLOB NOT NULL
    );
    CREATE TABLE alert_deliveries (
        id          INTEGER PRIMARY KEY,
        alert_id    TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        target      TEXT NOT NULL,                 -- with secrets: a retry after restart needs it
        channel     TEXT NOT NULL,                 -- redacted, the only form ever shown
        status      TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_at     REAL,
        lease_until REAL,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL,
        last_error  TEXT
    );
    CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_at);
    CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
    CREATE TABLE alert_delivery_attempts (
        id          INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
        attempt     INTEGER NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('ok', 'error')),
        error       TEXT,
        at          REAL NOT NULL
    );
    CREATE INDEX alert_delivery_attempts_delivery ON alert_delivery_attempts (delivery_id);
    """,
)

_ALERT_COLUMNS = (
    "id, rule_id, rule_name, type, agent_id, stream_id, stream_name, event_id, event_at, "
    "fired_at, state, suppressed, repeats, title, message, data, acknowledged_at, resolved_at, "
    "EXISTS (SELECT 1 FROM alert_snapshots s WHERE s.alert_id = alerts.id)"
)


# Columns copied as they are; the others (None entries) are converted in _alert.
_ALERT_FIELDS = (
    "id", "rule_id", "rule_name", "type", "agent_id", None, "stream_name", "event_id", None, None,
    None, "suppressed", "repeats", "title", "message", None, None, None, None,
)  # fmt: skip


class StateError(StorageError):
    """An alert cannot move to the asked state (e.g. acknowledging a resolved alert)."""


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule's verdict on a trigger, prepared by the engine for ``record``."""

    rule: AlertRule
    block: Suppression | None
    targets: Sequence[tuple[str, str]]  # (target with secrets, redacted channel)
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for one attempt."""

    id: int
    alert_id: str
    target: str
    channel: str
    attempt: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Alert list filters; None means any."""

    state: AlertState | None = None
    rule_id: str | None = None
    agent_id: str | None = None
    stream_id: str | None = None
    type: str | None = None
    since: datetime | None = None


def _ts(when: datetime) -> float:
    return when.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _must_dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class AlertStore:
    """Alert persistence on a shared ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def migrate(self) -> int:
        """Bring the alert tables to the latest version; returns it."""
        return await self._db.run(_migrate)

    # ------------------------------------------------------------------ rules and snoozes

    async def list_rules(self) -> list[AlertRule]:
        """Every rule, oldest first, with its snooze."""
        return await self._db.run(_list_rules)

    async def get_rule(self, rule_id: str) -> AlertRule:
        """One rule; NotFoundError if unknown."""
        rules = await self._db.run(lambda conn: _list_rules(conn, rule_id))
        if not rules:
            raise NotFoundError(f"no alert rule {rule_id!r}")
        return rules[0]

    async def create_rule(self, spec: RuleSpec, now: datetime) -> AlertRule:
        """Store a new rule."""
        rule_id = uuid.uuid4().hex[:12]

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO alert_rules (id, name, created_at, updated_at, body)"
                " VALUES (?, ?, ?, ?, ?)",
                (rule_id, spec.name, _ts(now), _ts(now), spec.model_dump_json()),
            )

        await self._db.transaction(insert)
        return await self.get_rule(rule_id)

    async def replace_rule(self, rule_id: str, spec: RuleSpec, now: datetime) -> AlertRule:
        """Replace a rule's spec; NotFoundError if unknown."""

        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE alert_rules SET name = ?, updated_at = ?, body = ? WHERE id = ?",
                (spec.name, _ts(now), spec.model_dump_json(), rule_id),
            ).rowcount

        if not await self._db.transaction(update):
            raise NotFoundError(f"no alert rule {rule_id!r}")
        return await self.get_rule(rule_id)

    async def delete_rule(self, rule_id: str) -> None:
        """Delete a rule (its alerts stay in the history); NotFoundError if unknown."""

        def delete(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM alert_snoozes WHERE scope = 'rule' AND target = ?", (rule_id,)
            )
            return conn.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,)).rowcount

        if not await self._db.transaction(delete):
            raise NotFoundError(f"no alert rule {rule_id!r}")

    async def snooze(self, scope: str, target: str, until: datetime | None) -> None:
        """Snooze a rule or a stream until ``until``; None ends the snooze."""

        def write(conn: sqlite3.Connection) -> None:
            if until is None:
                conn.execute(
                    "DELETE FROM alert_snoozes WHERE scope = ? AND target = ?", (scope, target)
                )
            else:
                conn.execute(
                    "INSERT INTO alert_snoozes (scope, target, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (scope, target) DO UPDATE SET until = excluded.until",
                    (scope, target, _ts(until)),
                )

        await self._db.transaction(write)

    # ------------------------------------------------------------------ firing

    async def record(
        self,
        trigger: Trigger,
        stream_name: str | None,
        firings: Sequence[Firing],
        now: datetime,
        snapshot: bytes | None,
    ) -> list[Alert]:
        """Record the trigger's alerts in one transaction; [] for a replayed event id.

        Snoozes and schedules record a suppressed alert; the cooldown folds the trigger into
        the latest alert of the same kind as a repeat; the rest become new alerts with one
        pending delivery per channel.
        """
        return await self._db.transaction(
            lambda conn: _record(conn, trigger, stream_name, firings, now, snapshot)
        )

    async def resolve_open(
        self, type_: str, agent_id: str, stream_id: str | None, now: datetime
    ) -> list[Alert]:
        """Resolve the open (new/acknowledged) alerts of one type for one agent or stream."""

        def resolve(conn: sqlite3.Connection) -> list[str]:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM alerts WHERE type = ? AND agent_id = ? AND stream_id = ?"
                    " AND state IN ('new', 'acknowledged')",
                    (type_, agent_id, stream_id or ""),
                )
            ]
            conn.executemany(
                "UPDATE alerts SET state = 'resolved', resolved_at = ? WHERE id = ?",
                [(_ts(now), i) for i in ids],
            )
            return ids

        ids = await self._db.transaction(resolve)
        return [await self.get_alert(i) for i in ids]

    async def has_open(self, type_: str, agent_id: str, stream_id: str | None) -> bool:
        """True when an alert of this type for this agent or stream is new or acknowledged."""

        def read(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM alerts WHERE type = ? AND agent_id = ? AND stream_id = ?"
                " AND state IN ('new', 'acknowledged') LIMIT 1",
                (type_, agent_id, stream_id or ""),
            ).fetchone()
            return row is not None

        return await self._db.run(read)

    # ------------------------------------------------------------------ alerts API

    async def list_alerts(
        self, where: AlertFilter, limit: int, before: tuple[float, str] | None = None
    ) -> tuple[list[Alert], tuple[float, str] | None]:
        """A page of alerts newest first and the cursor of the next page (None at the end)."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("state", where.state),
            ("rule_id", where.rule_id),
            ("agent_id", where.agent_id),
            ("stream_id", where.stream_id),
            ("type", where.type),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(str(value))
        if where.since is not None:
            clauses.append("fired_at >= ?")
            args.append(_ts(where.since))
        if before is not None:
            clauses.append("(fired_at < ? OR (fired_at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY fired_at DESC, id DESC LIMIT ?"
        rows = await self._db.run(lambda conn: conn.execute(sql, (*args, limit + 1)).fetchall())
        alerts = [_alert(row) for row in rows[:limit]]
        more = len(rows) > limit
        cursor = (_ts(alerts[-1].fired_at), alerts[-1].id) if more and alerts else None
        return alerts, cursor

    async def get_alert(self, alert_id: str) -> Alert:
        """One alert; NotFoundError if unknown."""
        row = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFoundError(f"no alert {alert_id!r}")
        return _alert(row)

    async def get_detail(self, alert_id: str) -> AlertDetail:
        """One alert with its deliveries and their attempts."""
        alert = await self.get_alert(alert_id)
        deliveries = await self._db.run(lambda conn: _deliveries(conn, alert_id))
        return AlertDetail(**alert.model_dump(), deliveries=deliveries)

    async def snapshot(self, alert_id: str) -> bytes | None:
        """The JPEG stored with an alert, if any."""
        row = await self._db.run(
            lambda conn: conn.execute(
                "SELECT jpeg FROM alert_snapshots WHERE alert_id = ?", (alert_id,)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    async def set_state(self, alert_id: str, state: AlertState, now: datetime) -> Alert:
        """Acknowledge or resolve; NotFoundError if unknown, StateError if not allowed."""

        def change(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no alert {alert_id!r}")
            current = AlertState(row[0])
            allowed = {
                AlertState.ACKNOWLEDGED: {AlertState.NEW, AlertState.ACKNOWLEDGED},
                AlertState.RESOLVED: {
                    AlertState.NEW,
                    AlertState.ACKNOWLEDGED,
                    AlertState.RESOLVED,
                },
            }.get(state, set())
            if current not in allowed:
                raise StateError(f"alert {alert_id} is {current}; it cannot become {state}")
            if current == state:  # idempotent: a repeated ack/resolve changes nothing
                return
            column = "acknowledged_at" if state == AlertState.ACKNOWLEDGED else "resolved_at"
            conn.execute(
                f"UPDATE alerts SET state = ?, {column} = ? WHERE id = ?",
                (str(state), _ts(now), alert_id),
            )

        await self._db.transaction(change)
        return await self.get_alert(alert_id)

    # ------------------------------------------------------------------ deliveries

    async def claim_due(self, now: datetime, lease: float, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` deliveries that are due (or whose claim expired)."""
        return await self._db.transaction(lambda conn: _claim(conn, _ts(now), lease, limit))

    async def next_due(self) -> datetime | None:
        """When the earliest pending or leased delivery becomes due."""
        row = await self._db.run(
            lambda conn: conn.execute(
                "SELECT MIN(CASE status WHEN 'pending' THEN next_at ELSE lease_until END)"
                " FROM alert_deliveries WHERE status IN ('pending', 'sending')"
            ).fetchone()
        )
        return _dt(row[0])

    async def finish(
        self,
        claimed: Claimed,
        now: datetime,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """Log the attempt; mark sent, reschedule at ``retry_at``, or fail when it is None."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO alert_delivery_attempts (delivery_id, attempt, status, error, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (claimed.id, claimed.attempt, "ok" if error is None else "error", error, _ts(now)),
            )
            if error is None:
                status, next_at = "sent", None
            elif retry_at is not None:
                status, next_at = "pending", _ts(retry_at)
            else:
                status, next_at = "failed", None
            conn.execute(
                "UPDATE alert_deliveries SET status = ?, attempts = ?, next_at = ?,"
                " lease_until = NULL, updated_at = ?, last_error = ? WHERE id = ?",
                (status, claimed.attempt, next_at, _ts(now), error, claimed.id),
            )

        await self._db.transaction(write)

    async def deliveries(self, alert_id: str) -> list[Delivery]:
        """An alert's deliveries with their attempts."""
        return await self._db.run(lambda conn: _deliveries(conn, alert_id))

    async def prune(self, before: datetime) -> int:
        """Forget seen event ids and snapshots older than ``before``; returns rows removed.

        Alert history and delivery logs are kept; a replay older than ``before`` is no longer
        recognised, so keep this well beyond the agents' outbox age.
        """

        def delete(conn: sqlite3.Connection) -> int:
            cut = _ts(before)
            gone = conn.execute("DELETE FROM alert_events WHERE received_at < ?", (cut,)).rowcount
            gone += conn.execute(
                "DELETE FROM alert_snapshots WHERE alert_id IN"
                " (SELECT a.id FROM alerts a WHERE a.fired_at < ? AND NOT EXISTS"
                "  (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id"
                "   AND d.status IN ('pending', 'sending')))",
                (cut,),
            ).rowcount
            return gone

        return await self._db.transaction(delete)


# ---------------------------------------------------------------------- DB thread only


def _migrate(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS alert_schema_version ("
        " version INTEGER PRIMARY KEY, applied_at REAL NOT NULL DEFAULT (strftime('%s', 'now')))"
    )
    current = int(conn.execute("SELECT MAX(version) FROM alert_schema_version").fetchone()[0] or 0)
    if current > len(ALERT_MIGRATIONS):
        raise StorageError(
            f"alert tables have schema version {current}, newer than this hub knows "
            f"({len(ALERT_MIGRATIONS)}): upgrade Glimpser"
        )
    for version, script in enumerate(ALERT_MIGRATIONS[current:], start=current + 1):
        # As in db._migrate: BEGIN/COMMIT inside the script, so a failure rolls back whole.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n;"
                f"INSERT INTO alert_schema_version (version) VALUES ({version});\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        current = version
    return current


def _list_rules(conn: sqlite3.Connection, rule_id: str | None = None) -> list[AlertRule]:
    sql = (
        "SELECT r.id, r.created_at, r.updated_at, r.body, s.until FROM alert_rules r"
        " LEFT JOIN alert_snoozes s ON s.scope = 'rule' AND s.target = r.id"
    )
    args: tuple[str, ...] = ()
    if rule_id is not None:
        sql += " WHERE r.id = ?"
        args = (rule_id,)
    rows = conn.execute(sql + " ORDER BY r.created_at, r.id", args).fetchall()
    return [
        AlertRule(
            **json.loads(body),
            id=rid,
            created_at=_must_dt(created),
            updated_at=_must_dt(updated),
            snoozed_until=_dt(until),
        )
        for rid, created, updated, body, until in rows
    ]


def _record(
    conn: sqlite3.Connection,
    trigger: Trigger,
    stream_name: str | None,
    firings: Sequence[Firing],
    now: datetime,
    snapshot: bytes | None,
) -> list[Alert]:
    seen = conn.execute(
        "INSERT OR IGNORE INTO alert_events (event_id, type, agent_id, stream_id, at, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (trigger.id, trigger.type, trigger.agent_id, trigger.stream_id, _ts(trigger.at), _ts(now)),
    )
    if seen.rowcount == 0:
        return []  # a replayed event id: it was handled (or deliberately ignored) before
    stream = trigger.stream_id or ""
    created: list[Alert] = []
    for firing in firings:
        rule = firing.rule
        block: Suppression | None = "snoozed" if _snoozed(conn, rule.id, trigger, now) else None
        block = block or firing.block
        if rule.cooldown > 0 and _fold_into_recent(conn, rule, stream, trigger, block, now):
            continue
        alert_id = uuid.uuid4().hex
        state = AlertState.SUPPRESSED if block else AlertState.NEW
        inserted = conn.execute(
            "INSERT OR IGNORE INTO alerts (id, rule_id, rule_name, type, agent_id, stream_id,"
            " stream_name, event_id, dedupe_key, event_at, fired_at, state, suppressed, title,"
            " message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id, rule.id, rule.name, trigger.type, trigger.agent_id, stream, stream_name,
                trigger.id, trigger.key, _ts(trigger.at), _ts(now), str(state), block,
                firing.title, firing.message, json.dumps(trigger.data),
            ),
        ).rowcount  # fmt: skip
        if not inserted:
            continue  # this rule already fired for the dedupe key (the same outage)
        if not block:
            if snapshot is not None:
                conn.execute(
                    "INSERT INTO alert_snapshots (alert_id, jpeg) VALUES (?, ?)",
                    (alert_id, snapshot),
                )
            conn.executemany(
                "INSERT INTO alert_deliveries (alert_id, target, channel, status, next_at,"
                " created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                [(alert_id, t, c, _ts(now), _ts(now), _ts(now)) for t, c in firing.targets],
            )
        row = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        created.append(_alert(row.fetchone()))
    return created


def _snoozed(conn: sqlite3.Connection, rule_id: str, trigger: Trigger, now: datetime) -> bool:
    targets = [("rule", rule_id)]
    if trigger.stream_id is not None:
        targets += [
            ("stream", trigger.stream_id),
            ("stream", f"{trigger.agent_id}.{trigger.stream_id}"),
        ]
    for scope, target in targets:
        row = conn.execute(
            "SELECT 1 FROM alert_snoozes WHERE scope = ? AND target = ? AND until > ?",
            (scope, target, _ts(now)),
        ).fetchone()
        if row is not None:
            return True
    return False


def _fold_into_recent(
    conn: sqlite3.Connection,
    rule: AlertRule,
    stream: str,
    trigger: Trigger,
    block: Suppression | None,
    now: datetime,
) -> bool:
    # Per (rule, stream, event type): a recovery must not fold into the failure before it.
    # Sent alerts cool down against sent alerts, suppressions against the same suppression:
    # a suppression at 06:59 must not swallow the first real alert after quiet hours.
    row = conn.execute(
        "SELECT id FROM alerts WHERE rule_id = ? AND agent_id = ? AND stream_id = ? AND type = ?"
        " AND fired_at > ? AND COALESCE(suppressed, '') = ? ORDER BY fired_at DESC LIMIT 1",
        (rule.id, trigger.agent_id, stream, trigger.type, _ts(now) - rule.cooldown, block or ""),
    ).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE alerts SET repeats = repeats + 1 WHERE id = ?", (row[0],))
    return True


def _claim(conn: sqlite3.Connection, now: float, lease: float, limit: int) -> list[Claimed]:
    rows = conn.execute(
        "SELECT id, alert_id, target, channel, attempts, created_at FROM alert_deliveries"
        " WHERE (status = 'pending' AND next_at <= ?) OR (status = 'sending' AND lease_until <= ?)"
        " ORDER BY COALESCE(next_at, lease_until), id LIMIT ?",
        (now, now, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE alert_deliveries SET status = 'sending', lease_until = ?, updated_at = ?"
        " WHERE id = ?",
        [(now + lease, now, row[0]) for row in rows],
    )
    return [
        Claimed(id=i, alert_id=a, target=t, channel=c, attempt=n + 1, created_at=_must_dt(ca))
        for i, a, t, c, n, ca in rows
    ]


def _deliveries(conn: sqlite3.Connection, alert_id: str) -> list[Delivery]:
    rows = conn.execute(
        "SELECT id, alert_id, channel, status, attempts, next_at, created_at, last_error"
        " FROM alert_deliveries WHERE alert_id = ? ORDER BY id",
        (alert_id,),
    ).fetchall()
    out: list[Delivery] = []
    for did, aid, channel, status, attempts, next_at, created, last_error in rows:
        history = [
            DeliveryAttempt(attempt=n, status=s, error=e, at=_must_dt(at))
            for n, s, e, at in conn.execute(
                "SELECT attempt, status, error, at FROM alert_delivery_attempts"
                " WHERE delivery_id = ? ORDER BY id",
                (did,),
            )
        ]
        out.append(
            Delivery(
                id=did,
                alert_id=aid,
                channel=channel,
                status=status,
                attempts=attempts,
                next_at=_dt(next_at),
                created_at=_must_dt(created),
                last_error=last_error,
                history=history,
            )
        )
    return out


def _alert(row: Sequence[Any]) -> Alert:
    col = {k: v for k, v in zip(_ALERT_FIELDS, row, strict=True) if k is not None}
    return Alert(
        **col,
        stream_id=row[5] or None,
        event_at=_must_dt(row[8]),
        fired_at=_must_dt(row[9]),
        state=AlertState(row[10]),
        data=json.loads(row[15]),
        acknowledged_at=_dt(row[16]),
        resolved_at=_dt(row[17]),
        has_snapshot=bool(row[18]),
    )
