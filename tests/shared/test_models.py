"""Contract models: unknown fields rejected, templates validated, sources discriminated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from glimpser.shared import models
from glimpser.shared.models import (
    AgentConfig,
    AgentState,
    Command,
    Demand,
    Event,
    FrameMeta,
    HttpSource,
    RtspSource,
    StreamInfo,
    StreamState,
    StreamStatus,
    Template,
    WebsiteSource,
)


def tpl(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "cam1", "name": "Cam 1", "source": {"kind": "test"}}
    data.update(overrides)
    return data


def error_locs(err: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in err.errors()]


# --------------------------------------------------------------------------- extra fields


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Template, tpl(colour="red")),
        (models.TestSource, {"kind": "test", "bogus": 1}),
        (Command, {"action": "start", "force": True}),
        (Demand, {"hub_id": "hub1", "ttl": 10, "extra": 1}),
        (FrameMeta, {"seq": 1, "captured_at": 1.0, "x": 1}),
        (AgentConfig, {"revision": 1, "templatez": []}),
    ],
)
def test_unknown_fields_are_rejected(model: type[models.Model], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_every_contract_model_forbids_extra_fields() -> None:
    contract = [
        obj
        for obj in vars(models).values()
        if isinstance(obj, type) and issubclass(obj, models.Model) and obj is not models.Model
    ]
    assert len(contract) > 10
    for model in contract:
        assert model.model_config.get("extra") == "forbid", model.__name__


# --------------------------------------------------------------------------- templates


def test_minimal_template_defaults() -> None:
    t = Template.model_validate(tpl())
    assert isinstance(t.source, models.TestSource)
    assert t.period == 1.0
    assert t.enabled
    assert t.quality == 80
    assert t.agent_id is None


@pytest.mark.parametrize(
    ("rate", "period"), [({"fps": 10}, 0.1), ({"fps": 0.5}, 2.0), ({"interval": 30}, 30.0)]
)
def test_period_follows_fps_or_interval(rate: dict[str, float], period: float) -> None:
    assert Template.model_validate(tpl(**rate)).period == pytest.approx(period)


def test_fps_and_interval_together_are_rejected() -> None:
    with pytest.raises(ValidationError, match="either fps or interval"):
        Template.model_validate(tpl(fps=5, interval=2))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fps", 0),
        ("fps", -1),
        ("fps", 61),
        ("interval", 0.01),
        ("interval", 86401),
        ("quality", 0),
        ("quality", 101),
        ("keepalive", 0.1),
        ("width", 8),
        ("name", ""),
        ("name", "x" * 101),
        ("id", "Cam 1"),
        ("id", "a/b"),
        ("agent_id", "pi#1"),
    ],
)
def test_out_of_range_template_fields_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        Template.model_validate(tpl(**{field: value}))
    assert (field,) in error_locs(info.value)


@pytest.mark.parametrize("size", [{"width": 640}, {"height": 480}])
def test_width_and_height_come_together(size: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="both width and height"):
        Template.model_validate(tpl(**size))
    assert Template.model_validate(tpl(width=640, height=480)).width == 640


def test_template_json_round_trip() -> None:
    t = Template.model_validate(
        tpl(source={"kind": "rtsp", "url": "rtsp://cam.local/stream"}, fps=5, tags=["yard"])
    )
    assert Template.model_validate_json(t.model_dump_json()) == t


# --------------------------------------------------------------------------- sources


@pytest.mark.parametrize(
    ("source", "cls"),
    [
        ({"kind": "test", "pattern": "motion"}, models.TestSource),
        ({"kind": "v4l2", "device": 0}, models.V4l2Source),
        ({"kind": "rtsp", "url": "rtsps://cam/live"}, RtspSource),
        ({"kind": "http", "url": "https://cam/mjpg"}, HttpSource),
        ({"kind": "file", "path": "/tmp/x.mp4"}, models.FileSource),
        ({"kind": "picamera", "camera_num": 1}, models.PicameraSource),
        ({"kind": "website", "url": "https://example.org/"}, WebsiteSource),
    ],
)
def test_sources_are_discriminated_by_kind(source: dict[str, Any], cls: type) -> None:
    assert isinstance(Template.model_validate(tpl(source=source)).source, cls)


def test_source_without_kind_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Template.model_validate(tpl(source={"url": "rtsp://cam/live"}))
    assert info.value.errors()[0]["type"] == "union_tag_not_found"


def test_unknown_source_kind_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Template.model_validate(tpl(source={"kind": "ftp", "url": "ftp://x"}))
    assert info.value.errors()[0]["type"] == "union_tag_invalid"


def test_source_errors_point_into_the_source() -> None:
    with pytest.raises(ValidationError) as info:
        Template.model_validate(tpl(source={"kind": "rtsp", "url": "http://cam/live"}))
    assert error_locs(info.value) == [("source", "rtsp", "url")]


@pytest.mark.parametrize("url", ["rtsp://cam/live", "rtsps://u:p@10.0.0.2:554/s1"])
def test_rtsp_urls_accepted(url: str) -> None:
    assert RtspSource(url=url).url == url


@pytest.mark.parametrize(
    "url", ["http://cam/live", "RTSP://cam", " rtsp://cam", "cam/live", "", "rtsp:/cam"]
)
def test_rtsp_urls_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        RtspSource(url=url)


@pytest.mark.parametrize("url", ["http://cam/mjpg", "https://10.0.0.3:8443/snap.jpg"])
def test_http_urls_accepted(url: str) -> None:
    assert HttpSource(url=url).url == url


@pytest.mark.parametrize(
    "url", ["rtsp://cam", "ftp://cam/x", "file:///etc/passwd", "javascript:alert(1)", "//cam"]
)
def test_http_urls_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        HttpSource(url=url)


def test_urls_are_length_capped() -> None:
    with pytest.raises(ValidationError):
        HttpSource(url="http://cam/" + "a" * 2048)


@pytest.mark.parametrize(
    ("cls", "url"),
    [
        (HttpSource, "http://"),
        (RtspSource, "rtsp://"),
        (RtspSource, "rtsp://cam\r\nHost: evil"),
        (HttpSource, "http://cam/a b\n"),
    ],
)
def test_camera_urls_without_host_or_with_control_chars_rejected(cls: type, url: str) -> None:
    with pytest.raises(ValidationError):
        cls(url=url)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "http://", "chrome://settings", "about:x"]
)
def test_website_urls_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ValidationError):
        WebsiteSource(url=url)


@pytest.mark.parametrize(
    "headers", [{"X-Ok": "a\r\nInjected: 1"}, {"X-Ok": "a\nb"}, {"": "x"}, {"X Bad": "1"}]
)
def test_website_headers_cannot_inject(headers: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="invalid HTTP header"):
        WebsiteSource(url="https://example.org", headers=headers)


# --------------------------------------------------------------------------- messages


def state(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "stream_id": "cam1",
        "agent_id": "pi1",
        "template_id": "cam1",
        "name": "Cam",
        "source": "test",
        "status": "active",
        "configured_fps": 5,
    }
    data.update(overrides)
    return data


def test_stream_state_round_trip_and_status_enum() -> None:
    s = StreamState.model_validate(state(last_frame_at="2024-01-01T00:00:00Z", fps=4.9))
    assert s.status is StreamStatus.ACTIVE
    assert s.last_frame_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert StreamState.model_validate_json(s.model_dump_json()) == s
    assert json.loads(s.model_dump_json())["status"] == "active"


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "running"), ("fps", -1), ("frames", -1), ("agent_id", "Pi 1"), ("source", "x")],
)
def test_stream_state_rejects_bad_fields(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        StreamState.model_validate(state(**{field: value}))
    assert (field,) in error_locs(info.value)


def test_agent_state_streams_are_ids() -> None:
    base = {"agent_id": "pi1", "version": "0.1", "hostname": "pi", "started_at": 0, "uptime": 1}
    assert AgentState.model_validate({**base, "streams": ["a", "b"]}).streams == ["a", "b"]
    with pytest.raises(ValidationError):
        AgentState.model_validate({**base, "streams": ["a/b"]})


def test_event_ids_are_unique_and_types_constrained() -> None:
    a = Event(agent_id="pi1", stream_id="cam1", type="motion")
    b = Event(agent_id="pi1", stream_id="cam1", type="motion")
    assert a.id != b.id
    assert a.at.tzinfo is not None
    for bad in ("Motion", "1motion", "motion-start", ""):
        with pytest.raises(ValidationError):
            Event(agent_id="pi1", stream_id="cam1", type=bad)
    with pytest.raises(ValidationError):
        Event(id="short", agent_id="pi1", stream_id="cam1", type="motion")
    with pytest.raises(ValidationError):
        Event(agent_id="pi1", stream_id="cam1", type="x", data={"nested": {"a": 1}})


def test_command_and_demand_limits() -> None:
    assert Command(action="snapshot", request_id="r1").request_id == "r1"
    with pytest.raises(ValidationError):
        Command(action="reboot")
    with pytest.raises(ValidationError):
        Command(action="start", request_id="x" * 129)
    assert Demand(hub_id="hub1", ttl=30).fps is None
    assert Demand(hub_id="hub1", ttl=0).ttl == 0  # 0 releases the lease
    for ttl in (-1, 301):
        with pytest.raises(ValidationError):
            Demand(hub_id="hub1", ttl=ttl)


def test_agent_config_desired_keys_are_ids() -> None:
    cfg = AgentConfig.model_validate(
        {"revision": 3, "templates": [tpl()], "desired": {"cam1": "stopped"}}
    )
    assert cfg.desired == {"cam1": "stopped"}
    with pytest.raises(ValidationError):
        AgentConfig.model_validate({"revision": 3, "desired": {"Cam 1": "stopped"}})
    with pytest.raises(ValidationError):
        AgentConfig.model_validate({"revision": -1})


def test_stream_info_serialises_to_the_dashboard_contract() -> None:
    info = StreamInfo(
        id="cam1",
        name="Cam",
        source="test",
        status=StreamStatus.ACTIVE,
        resolution="640x480",
        fps=5.0,
        last_frame_at=None,
        template_id="cam1",
        agent_id="pi1",
        agent_online=True,
        configured_fps=5.0,
    )
    body = json.loads(info.model_dump_json())
    for key in ("id", "name", "source", "status", "resolution", "fps", "last_frame_at"):
        assert key in body
    assert body["template_id"] == "cam1"
    assert body["agent_id"] == "pi1"


def test_website_header_name_with_trailing_newline_rejected() -> None:
    with pytest.raises(ValidationError, match="invalid HTTP header"):
        WebsiteSource(url="https://example.org", headers={"X-Bad\n": "1"})
