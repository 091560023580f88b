"""Engine semantics over a real database and a real webhook receiver; time driven by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from glimpser.hub.alerts import AlertService, AlertState, ManualClock, RuleSpec
from glimpser.hub.alerts.store import AlertFilter
from glimpser.hub.store.db import Database
from glimpser.shared.models import Event
from tests.helpers import wait_for
from tests.hub.alerts.conftest import ServiceFactory, fast
from tests.transports import WebhookReceiver


def motion(event_id: str | None = None, **data: Any) -> Event:
    kw: dict[str, Any] = {"agent_id": "a1", "stream_id": "cam", "type": "motion", "data": data}
    if event_id:
        kw["id"] = event_id
    return Event.model_validate(kw)


async def rule(service: AlertService, **kw: Any) -> str:
    body: dict[str, Any] = {"name": "r", "events": ["motion"], "channels": []}
    body.update(kw)
    return (await service.create_rule(RuleSpec.model_validate(body))).id


async def alerts(service: AlertService, **kw: Any) -> list[Any]:
    items, _ = await service.store.list_alerts(AlertFilter(**kw), 500)
    return items


async def settle(receiver: WebhookReceiver, count: int) -> None:
    """Wait for ``count`` webhooks, then a little longer to catch any extra one."""
    await wait_for(lambda: len(receiver.received) >= count, message="webhook not received")
    await asyncio.sleep(0.2)
    assert len(receiver.received) == count


async def test_hundred_events_in_cooldown_notify_once(
    make_service: ServiceFactory, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    service = await make_service()
    await rule(service, channels=[receiver.channel], cooldown=300)
    for _ in range(100):
        await service.engine.handle_event(motion())
    await settle(receiver, 1)
    [alert] = await alerts(service)
    assert alert.repeats == 99
    # After the cooldown the next event notifies again.
    await clock.advance(301)
    await service.engine.handle_event(motion())
    await settle(receiver, 2)


async def test_replayed_event_id_does_nothing(
    make_service: ServiceFactory, receiver: WebhookReceiver
) -> None:
    service = await make_service()
    await rule(service, channels=[receiver.channel], cooldown=0)
    first = await service.engine.handle_event(motion("evt-00000001"))
    assert len(first) == 1
    assert await service.engine.handle_event(motion("evt-00000001")) == []
    await settle(receiver, 1)
    assert len(await alerts(service)) == 1


async def test_rule_snooze_suppresses_and_records(
    make_service: ServiceFactory, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    service = await make_service()
    rule_id = await rule(service, channels=[receiver.channel], cooldown=0)
    await service.snooze_rule(rule_id, 10)
    [held] = await service.engine.handle_event(motion())
    assert held.state == AlertState.SUPPRESSED and held.suppressed == "snoozed"
    assert await service.store.deliveries(held.id) == []
    await clock.advance(11 * 60)
    [sent] = await service.engine.handle_event(motion())
    assert sent.state == AlertState.NEW
    await settle(receiver, 1)


async def test_stream_snooze_covers_every_rule(make_service: ServiceFactory) -> None:
    service = await make_service()
    await rule(service, name="one", cooldown=0)
    await rule(service, name="two", cooldown=0)
    await service.snooze_stream("a1.cam", 5)
    made = await service.engine.handle_event(motion())
    assert [a.suppressed for a in made] == ["snoozed", "snoozed"]
    other = Event(agent_id="a1", stream_id="door", type="motion")
    assert [a.state for a in await service.engine.handle_event(other)] == ["new", "new"]


async def test_quiet_hours_suppress_and_record(
    make_service: ServiceFactory, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    service = await make_service()
    quiet = {"quiet_hours": {"start": "22:00", "end": "07:00"}, "timezone": "Europe/Berlin"}
    await rule(service, channels=[receiver.channel], cooldown=60, schedule=quiet)
    # 2024-01-01 12:00 UTC is 13:00 in Berlin: not quiet. Move to 23:30 Berlin (22:30 UTC).
    await clock.advance(10.5 * 3600)
    first = await service.engine.handle_event(motion())
    assert [(a.state, a.suppressed) for a in first] == [("suppressed", "quiet_hours")]
    # Repeats during quiet hours fold into the recorded suppression, not into new rows.
    assert await service.engine.handle_event(motion()) == []
    # 07:30 Berlin: the first event after quiet hours is sent, not swallowed by the cooldown.
    await clock.advance(8 * 3600)
    [sent] = await service.engine.handle_event(motion())
    assert sent.state == AlertState.NEW
    await settle(receiver, 1)
    suppressed = await alerts(service, state=AlertState.SUPPRESSED)
    assert len(suppressed) == 1 and suppressed[0].repeats == 1


async def test_weekdays_and_min_duration(make_service: ServiceFactory) -> None:
    service = await make_service()
    # 2024-01-01 is a Monday.
    await rule(service, cooldown=0, min_duration=10, schedule={"weekdays": ["sat", "sun"]})
    assert await service.engine.handle_event(motion(duration=3)) == []
    assert await service.engine.handle_event(motion()) == []  # no duration: cannot prove it
    [held] = await service.engine.handle_event(motion(duration=12.5))
    assert held.suppressed == "schedule"


async def test_agent_offline_after_delay_then_online(
    make_service: ServiceFactory, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    service = await make_service(fast(offline_delay=60))
    await rule(service, events=["agent_offline", "agent_online"], channels=[receiver.channel])
    engine = service.engine
    engine.agent_availability("a1", False, clock.now())
    await wait_for(lambda: clock.sleepers >= 1)
    await clock.advance(59)
    await engine.drain()
    assert await alerts(service) == []
    await clock.advance(2)
    await engine.drain()
    [offline] = await alerts(service)
    assert offline.type == "agent_offline" and offline.stream_id is None
    engine.agent_availability("a1", True, clock.now())
    await engine.drain()
    by_type = {a.type: a for a in await alerts(service)}
    assert by_type.keys() == {"agent_offline", "agent_online"}
    assert by_type["agent_offline"].state == AlertState.RESOLVED
    await settle(receiver, 2)


async def test_agent_back_before_delay_alerts_nothing(
    make_service: ServiceFactory, clock: ManualClock
) -> None:
    service = await make_service(fast(offline_delay=60))
    await rule(service, events=["agent_offline", "agent_online"])
    service.engine.agent_availability("a1", False)
    await wait_for(lambda: clock.sleepers >= 1)
    await clock.advance(30)
    service.engine.agent_availability("a1", True)
    await clock.advance(120)
    await service.engine.drain()
    assert await alerts(service) == []


async def test_stream_failing_alerts_once_then_recovers(
    make_service: ServiceFactory, receiver: WebhookReceiver
) -> None:
    service = await make_service()
    await rule(
        service,
        events=["stream_error", "stream_recovered"],
        channels=[receiver.channel],
        min_failures=3,
        cooldown=0,
    )
    engine = service.engine
    # Two failures, then active: below the threshold, so no alert and no recovery either.
    engine.stream_status("a1", "cam", "error", "camera unplugged")
    engine.stream_status("a1", "cam", "error", "camera unplugged")
    engine.stream_status("a1", "cam", "active")
    await engine.drain()
    assert await alerts(service) == []
    # Reconnect attempts (starting) between errors do not reset the count.
    for status in ("error", "starting", "error", "starting", "error", "error", "error"):
        engine.stream_status("a1", "cam", status, "camera unplugged")
    await engine.drain()
    [failing] = await alerts(service)
    assert failing.type == "stream_error" and failing.data["failures"] == 3
    engine.stream_status("a1", "cam", "active")
    await engine.drain()
    by_type = {a.type: a for a in await alerts(service)}
    assert by_type.keys() == {"stream_error", "stream_recovered"}
    assert by_type["stream_error"].state == AlertState.RESOLVED
    await settle(receiver, 2)


async def test_tags_and_agents_select(make_service: ServiceFactory) -> None:
    from glimpser.hub.alerts import EventContext

    service = await make_service(context=EventContext(name="Garage", tags=frozenset({"Outdoor"})))
    await rule(service, tags=["outdoor"], agents=["a1"], cooldown=0)
    await rule(service, name="other", tags=["indoor"], cooldown=0)
    made = await service.engine.handle_event(motion())
    assert [(a.rule_name, a.stream_name) for a in made] == [("r", "Garage")]
    assert (
        await service.engine.handle_event(Event(agent_id="a2", stream_id="cam", type="motion"))
        == []
    )


async def test_submit_from_sync_code(make_service: ServiceFactory) -> None:
    service = await make_service()
    await rule(service, cooldown=0)
    service.engine.submit(motion("evt-sync-0001"))
    service.engine.submit(motion("evt-sync-0001"))
    await service.engine.drain()
    assert len(await alerts(service)) == 1
    assert (await alerts(service))[0].event_at.tzinfo is not None
    assert datetime.now(UTC) >= (await alerts(service))[0].event_at


HEALTH = ["agent_offline", "agent_online", "stream_error", "stream_recovered"]


async def _outage_before_restart(db: Database, clock: ManualClock) -> None:
    """A first hub run that alerts an agent offline and a stream failing, then stops."""
    async with AlertService(db, fast(offline_delay=60), clock=clock) as service:
        await rule(service, events=HEALTH)
        service.engine.stream_status("a1", "cam", "error", "lost")
        service.engine.agent_availability("a1", False)
        await wait_for(lambda: clock.sleepers >= 1)
        await clock.advance(61)
        await service.engine.drain()
        assert sorted(a.type for a in await alerts(service)) == ["agent_offline", "stream_error"]


async def test_a_restart_replaying_the_outage_does_not_alert_twice(
    db: Database, clock: ManualClock
) -> None:
    await _outage_before_restart(db, clock)
    async with AlertService(db, fast(offline_delay=60), clock=clock) as service:
        engine = service.engine
        # Retained messages replay the same outage to the new hub process.
        engine.agent_availability("a1", False)
        engine.stream_status("a1", "cam", "error", "lost")
        await wait_for(lambda: clock.sleepers >= 1)
        await clock.advance(61)
        await engine.drain()
        assert sorted(a.type for a in await alerts(service)) == ["agent_offline", "stream_error"]
        # ... and its end still closes the alerts from before the restart.
        engine.agent_availability("a1", True)
        engine.stream_status("a1", "cam", "active")
        await engine.drain()
        by_type = {a.type: a.state for a in await alerts(service)}
        assert by_type == {
            "agent_offline": AlertState.RESOLVED,
            "stream_error": AlertState.RESOLVED,
            "agent_online": AlertState.NEW,
            "stream_recovered": AlertState.NEW,
        }


async def test_an_outage_that_ended_while_the_hub_was_down_is_closed(
    db: Database, clock: ManualClock
) -> None:
    await _outage_before_restart(db, clock)
    async with AlertService(db, fast(offline_delay=60), clock=clock) as service:
        service.engine.agent_availability("a1", True)
        service.engine.stream_status("a1", "cam", "active")
        service.engine.stream_status("a1", "other", "active")  # never failed: nothing to say
        await service.engine.drain()
        by_type = {a.type: (a.state, a.stream_id) for a in await alerts(service)}
        assert by_type == {
            "agent_offline": (AlertState.RESOLVED, None),
            "stream_error": (AlertState.RESOLVED, "cam"),
            "agent_online": (AlertState.NEW, None),
            "stream_recovered": (AlertState.NEW, "cam"),
        }
