"""Delivery over real transports: an SMTP server and an HTTP webhook receiver."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from glimpser.hub.alerts import AlertService, EventContext, RuleSpec, SystemClock
from glimpser.hub.alerts.models import WebhookChannel
from glimpser.hub.store.db import Database
from glimpser.shared.models import Event
from tests.helpers import wait_for
from tests.hub.alerts.conftest import ServiceFactory, fast
from tests.hub.support import jpeg
from tests.transports import SECRET, SmtpServer, WebhookReceiver

SNAPSHOT = jpeg(64, 48, 200)
CONTEXT = EventContext(name="Front door", tags=frozenset(), snapshot=lambda: SNAPSHOT)


async def add_rule(service: AlertService, channels: list[Any]) -> None:
    spec = {"name": "door", "events": ["motion"], "channels": channels, "cooldown": 0}
    await service.create_rule(RuleSpec.model_validate(spec))


def motion() -> Event:
    return Event(agent_id="a1", stream_id="door", type="motion", data={"duration": 4.0})


async def test_email_carries_the_snapshot(make_service: ServiceFactory, smtp: SmtpServer) -> None:
    service = await make_service(context=CONTEXT)
    await add_rule(service, [smtp.url()])
    [alert] = await service.engine.handle_event(motion())
    await wait_for(lambda: smtp.sink.messages, message="no email arrived")
    message = smtp.sink.messages[0]
    assert "Front door" in message["Subject"]
    assert message["To"] == "ops@example.com"
    [picture] = [p for p in message.walk() if p.get_content_type() == "image/jpeg"]
    assert picture.get_payload(decode=True) == SNAPSHOT
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = text.get_payload(decode=True)
    assert isinstance(payload, bytes) and b"duration: 4.0" in payload
    # The attempt is stored with the channel's password masked.
    [delivery] = await wait_for(
        lambda: _sent(service, alert.id), message="delivery not marked sent"
    )
    assert "pass@" not in delivery.channel and delivery.history[0].status == "ok"


async def test_webhook_is_signed_and_carries_the_snapshot(
    make_service: ServiceFactory, receiver: WebhookReceiver
) -> None:
    service = await make_service(context=CONTEXT)
    channel = WebhookChannel(type="webhook", url=receiver.url, secret=SECRET)
    await add_rule(service, [channel.model_dump()])
    [alert] = await service.engine.handle_event(motion())
    await wait_for(lambda: receiver.received, message=lambda: f"rejected: {receiver.bad}")
    assert receiver.bad == []
    doc = receiver.received[0].doc
    assert doc["kind"] == "alert" and doc["alert"]["id"] == alert.id
    assert doc["alert"]["stream_name"] == "Front door"
    assert base64.b64decode(doc["snapshot"]["data"]) == SNAPSHOT
    assert receiver.received[0].headers["X-Glimpser-Delivery"] == doc["delivery"]


async def test_receiver_outage_retries_then_delivers_once(
    make_service: ServiceFactory, idle_receiver: WebhookReceiver
) -> None:
    service = await make_service(fast(), clock_=SystemClock())
    await add_rule(service, [idle_receiver.channel])
    [alert] = await service.engine.handle_event(motion())

    async def failed_attempts() -> int:
        [delivery] = await service.store.deliveries(alert.id)
        return sum(1 for a in delivery.history if a.status == "error")

    await wait_for(lambda: _at_least(failed_attempts, 3), message="no retries logged")
    await idle_receiver.start()
    [delivery] = await wait_for(lambda: _sent(service, alert.id), message="never delivered")
    await asyncio.sleep(0.5)  # would catch a duplicate send
    assert len(idle_receiver.received) == 1
    statuses = [a.status for a in delivery.history]
    assert statuses[-1] == "ok" and statuses.count("ok") == 1 and len(statuses) >= 4
    assert [a.attempt for a in delivery.history] == list(range(1, len(statuses) + 1))


async def test_pending_delivery_survives_a_restart(
    db: Database, idle_receiver: WebhookReceiver
) -> None:
    settings = fast(retry_base=0.2, retry_cap=0.2)
    async with AlertService(db, settings, clock=SystemClock()) as first:
        await add_rule(first, [idle_receiver.channel])
        [alert] = await first.engine.handle_event(motion())
        await wait_for(lambda: _at_least(lambda: _attempts(first, alert.id), 1))
    await idle_receiver.start()
    async with AlertService(db, settings, clock=SystemClock()) as second:
        await wait_for(lambda: _sent(second, alert.id), message="not resumed after restart")
    assert len(idle_receiver.received) == 1


async def test_gives_up_after_the_retry_window(
    make_service: ServiceFactory, idle_receiver: WebhookReceiver
) -> None:
    service = await make_service(fast(retry_window=0.3), clock_=SystemClock())
    await add_rule(service, [idle_receiver.channel])
    [alert] = await service.engine.handle_event(motion())

    async def failed() -> bool:
        [delivery] = await service.store.deliveries(alert.id)
        return delivery.status == "failed"

    await wait_for(failed, message="delivery never given up")


async def test_channel_test_endpoint_logic(
    make_service: ServiceFactory, receiver: WebhookReceiver, smtp: SmtpServer
) -> None:
    service = await make_service()
    assert await service.test_channel(receiver.channel) is None
    assert receiver.received[0].doc["kind"] == "test"
    assert await service.test_channel(smtp.url()) is None
    assert smtp.sink.messages[0]["Subject"] == "Glimpser test notification"
    down = "glimpser-webhook://127.0.0.1:9/x?secret=" + SECRET
    error = await service.test_channel(down)
    assert error is not None and "Cannot connect" in error


async def _sent(service: AlertService, alert_id: str) -> list[Any] | None:
    deliveries = await service.store.deliveries(alert_id)
    return deliveries if deliveries and all(d.status == "sent" for d in deliveries) else None


async def _attempts(service: AlertService, alert_id: str) -> int:
    return sum(d.attempts for d in await service.store.deliveries(alert_id))


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)
