"""picamera2 is optional: without it the source fails with instructions, not a traceback."""

from __future__ import annotations

import importlib.util

import pytest

from glimpser.agent.sources.picamera import PicameraSource
from glimpser.shared.errors import SourceError
from glimpser.shared.models import PicameraSource as PicameraSpec


@pytest.mark.skipif(
    importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here"
)
def test_missing_picamera2_is_explained() -> None:
    source = PicameraSource(PicameraSpec(camera_num=0))
    with pytest.raises(SourceError) as err:
        source.open()
    message = str(err.value)
    assert "picamera2 is not installed" in message
    assert "sudo apt install python3-picamera2" in message
    assert "--system-site-packages" in message
    source.close()
