"""Real transports for the alert tests: a SQLite database, an SMTP server, a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from glimpser.hub.alerts import AlertService, AlertSettings, EventContext, ManualClock
from glimpser.hub.alerts.clock import Clock
from glimpser.hub.store.db import Database
from tests.transports import SmtpServer, WebhookReceiver, smtp_server


def fast(**kw: Any) -> AlertSettings:
    """Settings with retries in tens of milliseconds."""
    base: dict[str, Any] = {"retry_base": 0.05, "retry_cap": 0.2, "retry_window": 30}
    base.update(kw)
    return AlertSettings.model_validate(base)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(tmp_path / "hub.db") as database:
        yield database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


ServiceFactory = Callable[..., Awaitable[AlertService]]


@pytest.fixture
async def make_service(db: Database, clock: ManualClock) -> AsyncIterator[ServiceFactory]:
    """Start an AlertService (closed at teardown); defaults: manual clock, fast retries."""
    async with AsyncExitStack() as stack:

        async def make(
            settings: AlertSettings | None = None,
            *,
            clock_: Clock | None = None,
            context: EventContext | None = None,
        ) -> AlertService:
            async def contexts(agent: str, stream: str | None) -> EventContext:
                assert context is not None
                return context

            service = AlertService(
                db,
                settings or fast(),
                clock=clock_ or clock,
                contexts=contexts if context is not None else None,
            )
            return await stack.enter_async_context(service)

        yield make


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def idle_receiver() -> AsyncIterator[WebhookReceiver]:
    """A receiver whose port is chosen but which is not listening yet (an outage)."""
    hook = WebhookReceiver()
    yield hook
    await hook.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server
