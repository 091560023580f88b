"""The source factory and URL redaction."""

from __future__ import annotations

from typing import Any

import pytest

from glimpser.agent.sources.base import CapturedFrame, build_source, redact_url
from glimpser.agent.sources.mjpeg import HttpJpegSource
from glimpser.agent.sources.opencv import OpenCvSource
from glimpser.agent.sources.picamera import PicameraSource
from glimpser.agent.sources.synthetic import SyntheticSource
from glimpser.shared.errors import SourceError
from glimpser.shared.models import Template


def _template(source: dict[str, Any], **extra: Any) -> Template:
    return Template.model_validate({"id": "t", "name": "T", "source": source, **extra})


@pytest.mark.parametrize(
    ("source", "cls"),
    [
        ({"kind": "test"}, SyntheticSource),
        ({"kind": "v4l2", "device": 0}, OpenCvSource),
        ({"kind": "rtsp", "url": "rtsp://cam/1"}, OpenCvSource),
        ({"kind": "http", "url": "http://cam/video.mjpg"}, HttpJpegSource),
        ({"kind": "file", "path": "/tmp/x.avi"}, OpenCvSource),
        ({"kind": "picamera"}, PicameraSource),
    ],
)
def test_build_source_picks_the_kind(source: dict[str, Any], cls: type) -> None:
    assert isinstance(build_source(_template(source)), cls)


def test_website_needs_the_agent_browser() -> None:
    with pytest.raises(SourceError, match="website capture needs the agent browser"):
        build_source(_template({"kind": "website", "url": "https://example.org/"}))


async def test_website_builds_a_page_source_on_the_loop() -> None:
    from glimpser.agent.sources.browser import BrowserManager
    from glimpser.agent.sources.web import PageSource

    source = build_source(
        _template({"kind": "website", "url": "https://example.org/"}), BrowserManager()
    )
    assert isinstance(source, PageSource)  # nothing launched: the browser starts on first use


def test_redact_url() -> None:
    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert redact_url("http://cam/x?y=1") == "http://cam/x?y=1"


def test_captured_frame_holds_exactly_one_payload() -> None:
    with pytest.raises(ValueError):
        CapturedFrame(width=1, height=1)
