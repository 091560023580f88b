"""Motion on a real agent becomes an alert that reaches a real SMTP server and a webhook."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.deploy import Deployment, deployed, eventually
from tests.transports import SmtpServer, WebhookReceiver, smtp_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

HUB = {"agents": ["edge-1"], "alerts": {"offline_delay": 1, "retry_base": 0.2}}


def visitor(stream_id: str) -> dict[str, Any]:
    """A static scene that a visitor crosses every 6 s, with motion detection on."""
    return {
        "id": stream_id,
        "name": "Front Path",
        "source": {"kind": "test", "pattern": "visitor", "visit_every": 6, "width": 320,
                   "height": 240},
        "fps": 5,
        "keepalive": 2,
        "motion": {"min_frames": 2, "off_delay": 1},
        "capture": {"on_events": ["motion"]},
    }  # fmt: skip


async def _rule(dep: Deployment, body: dict[str, Any]) -> None:
    status, answer = await dep.send("POST", "/api/alert-rules", body)
    assert status == 201, answer


async def test_motion_alert_reaches_email_and_signed_webhook(
    broker: Any, tmp_path: Path
) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        with smtp_server() as smtp:
            await _motion_case(broker, tmp_path, smtp, receiver)
    finally:
        await receiver.stop()


async def _motion_case(
    broker: Any, tmp_path: Path, smtp: SmtpServer, receiver: WebhookReceiver
) -> None:
    async with deployed(tmp_path, broker.host, broker.port, [visitor("path")], HUB) as dep:
        await dep.wait_status("path", "active")
        await _rule(
            dep,
            {
                "name": "someone on the path",
                "events": ["motion"],
                "channels": [smtp.url(), receiver.channel],
                "cooldown": 600,
            },
        )

        async def delivered() -> bool:
            return bool(smtp.sink.messages and receiver.received)

        await eventually(delivered, timeout=40, interval=0.5)
        mail = smtp.sink.messages[0]
        assert "Front Path" in mail["Subject"]
        jpegs = [p for p in mail.walk() if p.get_content_type() == "image/jpeg"]
        assert jpegs
        jpeg = jpegs[0].get_payload(decode=True)
        assert isinstance(jpeg, bytes) and jpeg[:2] == b"\xff\xd8"
        assert not receiver.bad, receiver.bad
        assert receiver.received[0].doc["alert"]["type"] == "motion"

        status, alerts = await dep.get_json("/api/alerts?type=motion")
        assert status == 200 and alerts["items"], alerts
        # The motion start also saved an event capture into the history.
        status, page = await dep.get_json("/api/captures?stream=path")
        assert any(c["reason"] == "event" for c in page["items"]), page
        # Later visitors fall inside the cooldown: still one notification of each kind.
        assert len(smtp.sink.messages) == 1 and len(receiver.received) == 1


async def test_killed_agent_raises_offline_then_online(broker: Any, tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        tpl = {**visitor("yard"), "motion": None, "capture": {}}
        async with deployed(tmp_path, broker.host, broker.port, [tpl], HUB) as dep:
            await dep.wait_status("yard", "active")
            await _rule(
                dep,
                {
                    "name": "box down",
                    "events": ["agent_offline", "agent_online"],
                    "channels": [receiver.channel],
                },
            )
            assert dep.agent is not None and dep.agent.proc is not None
            dep.agent.proc.send_signal(signal.SIGKILL)  # power cut: the broker sends the LWT
            await dep.agent.proc.wait()

            def types() -> list[str]:
                return [r.doc["alert"]["type"] for r in receiver.received]

            async def offline() -> bool:
                return "agent_offline" in types()

            await eventually(offline, timeout=20)
            await dep.restart_agent_after_crash()

            async def online() -> bool:
                return types() == ["agent_offline", "agent_online"]

            await eventually(online, timeout=30)
            assert not receiver.bad
    finally:
        await receiver.stop()
