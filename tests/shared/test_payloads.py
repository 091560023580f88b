"""Payload parsing: bounded, and every error is a ProtocolError naming the bad field."""

from __future__ import annotations

import json

import pytest

from glimpser.shared.errors import ProtocolError
from glimpser.shared.models import Command, Demand, Event, StreamState
from glimpser.shared.payloads import MAX_JSON_BYTES, parse_command, parse_json

STATE = {
    "stream_id": "cam1",
    "agent_id": "pi1",
    "template_id": "cam1",
    "name": "Cam",
    "source": "test",
    "status": "active",
    "configured_fps": 5,
}


@pytest.mark.parametrize("payload", [json.dumps(STATE), json.dumps(STATE).encode(),
                                     bytearray(json.dumps(STATE).encode())])  # fmt: skip
def test_parse_json_accepts_str_bytes_and_bytearray(payload: str | bytes | bytearray) -> None:
    assert parse_json(StreamState, payload).stream_id == "cam1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fps": "fast"}, "fps"),
        ({"status": "running"}, "status"),
        ({"agent_id": "Pi/1"}, "agent_id"),
        ({"frames": -3}, "frames"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_errors_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_json(StreamState, json.dumps({**STATE, **change}), "stream state")
    message = str(info.value)
    assert message.startswith("invalid stream state:")
    assert field in message


def test_missing_field_is_named() -> None:
    data = dict(STATE)
    del data["configured_fps"]
    with pytest.raises(ProtocolError, match="configured_fps: Field required"):
        parse_json(StreamState, json.dumps(data))


def test_default_label_is_the_model_name() -> None:
    with pytest.raises(ProtocolError, match=r"^invalid Demand: ttl"):
        parse_json(Demand, b'{"hub_id": "hub1", "ttl": -1}')


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{",
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        b'"start"',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_json_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError, match="invalid"):
        parse_json(Event, payload)


def test_oversize_payload_is_rejected_before_parsing() -> None:
    big = b'{"action": "start", "request_id": "' + b"x" * MAX_JSON_BYTES + b'"}'
    with pytest.raises(ProtocolError, match="too big"):
        parse_json(Command, big)


def test_summary_is_bounded_to_five_problems() -> None:
    bad: dict[str, list[int]] = {k: [] for k in STATE}
    with pytest.raises(ProtocolError) as info:
        parse_json(StreamState, json.dumps(bad))
    assert str(info.value).count(";") <= 4


@pytest.mark.parametrize(
    ("payload", "action"),
    [
        (b"ON", "start"),
        (b"OFF", "stop"),
        (b"PRESS", "snapshot"),
        ("on", "start"),
        (b" off\n", "stop"),
        (bytearray(b"Press"), "snapshot"),
    ],
)
def test_plain_home_assistant_payloads(payload: bytes | str | bytearray, action: str) -> None:
    command = parse_command(payload)
    assert command.action == action
    assert command.request_id is None


def test_json_commands_keep_the_request_id() -> None:
    command = parse_command(b'{"action": "snapshot", "request_id": "req-1"}')
    assert command == Command(action="snapshot", request_id="req-1")
    assert parse_command('{"action": "stop"}').action == "stop"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"TOGGLE",
        b'"ON"',
        b'{"action": "reboot"}',
        b'{"action": "start", "sudo": true}',
        b'{"request_id": "r"}',
        b"\xff\xfe",
        b'{"action": "start", "request_id": "' + b"r" * 129 + b'"}',
    ],
)
def test_bad_commands_are_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolError, match="invalid command"):
        parse_command(payload)


def test_bad_command_error_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="action"):
        parse_command(b'{"action": 1}')
