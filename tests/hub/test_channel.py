"""FrameChannel and Relay: parts built once, latest frame wins, slow viewers cost nothing."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from glimpser.hub.metrics import HubMetrics
from glimpser.hub.relay.channel import FrameChannel, build_part
from glimpser.hub.relay.demand import DemandLeases
from glimpser.hub.relay.relay import Relay, ViewerLimitError
from glimpser.shared.codec import decode_frame
from tests.helpers import wait_for
from tests.hub.support import FakeLink, frame, jpeg


def test_part_has_headers_and_payload() -> None:
    data = jpeg()
    part = build_part(data)
    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
    assert part == head.encode() + data + b"\r\n"


async def test_every_viewer_gets_the_same_bytes_object() -> None:
    relay = Relay(DemandLeases(FakeLink().publish_demand, "main", 10), HubMetrics(), 10)
    key = ("a1", "cam")
    got: list[bytes] = []

    async def viewer(ready: asyncio.Event) -> None:
        async with relay.watch(key, None) as channel:
            ready.set()
            item = await channel.next_part(0)
            assert item is not None
            got.append(item[1])

    events = [asyncio.Event() for _ in range(5)]
    tasks = [asyncio.create_task(viewer(e)) for e in events]
    await asyncio.gather(*(e.wait() for e in events))
    relay.publish(key, jpeg())
    await asyncio.gather(*tasks)
    assert len(got) == 5
    assert all(part is got[0] for part in got)


async def test_slow_viewer_skips_frames_and_does_not_hold_back_a_fast_one() -> None:
    channel = FrameChannel()
    fast: list[int] = []

    async def fast_viewer() -> None:
        seen = 0
        while (item := await channel.next_part(seen)) is not None:
            seen = item[0]
            fast.append(seen)

    task = asyncio.create_task(fast_viewer())
    big = jpeg(640, 480)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(200):
        channel.publish(build_part(big))
        await asyncio.sleep(0)  # one loop turn per frame, like frames arriving from MQTT
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    # The slow viewer (generation 0, never reading) gets only the newest part when it reads.
    item = await channel.next_part(0)
    assert item is not None and item[0] == 200
    assert len(fast) == 200, "the fast viewer saw every frame despite a stalled viewer"
    assert grown < 4 * len(big), f"memory grew by {grown} bytes for one stalled viewer"
    channel.close()
    await asyncio.wait_for(task, 1)


async def test_viewer_cap_and_close() -> None:
    relay = Relay(DemandLeases(FakeLink().publish_demand, "main", 10), HubMetrics(), 1)
    key = ("a1", "cam")
    async with relay.watch(key, decode_frame(frame())) as channel:
        assert relay.viewers(key) == 1
        item = await channel.next_part(0)
        assert item is not None, "the latest frame is handed over at once"
        with pytest.raises(ViewerLimitError):
            async with relay.watch(key, None):
                pass
        relay.close_viewers()
        assert await channel.next_part(item[0]) is None
    assert relay.viewers(key) == 0


async def test_demand_lease_published_while_watched_and_stopped_after() -> None:
    link = FakeLink()
    demand = DemandLeases(link.publish_demand, "main", ttl=0.15)
    relay = Relay(demand, HubMetrics(), 10)
    key = ("a1", "cam")
    async with relay.watch(key, None), relay.watch(key, None):
        await wait_for(lambda: len(link.demands) >= 3, timeout=2)
        assert demand.held() == [key]
    count = len(link.demands)
    assert demand.held() == []
    await asyncio.sleep(0.2)  # longer than one renewal period: nothing more must be sent
    assert len(link.demands) == count
    agent, stream, lease = link.demands[0]
    assert (agent, stream, lease.hub_id, lease.ttl) == ("a1", "cam", "main", 0.15)


async def test_demand_survives_a_disconnected_link() -> None:
    link = FakeLink(connected=False)
    demand = DemandLeases(link.publish_demand, "main", ttl=0.06)
    demand.hold(("a1", "cam"))
    await asyncio.sleep(0.05)
    link.connected = True
    await wait_for(lambda: link.demands, timeout=2)
    await demand.aclose()
