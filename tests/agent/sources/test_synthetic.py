"""The test pattern really moves, honours its size and stamps each frame."""

from __future__ import annotations

import numpy as np
import pytest

from glimpser.agent.sources.synthetic import SyntheticSource
from glimpser.shared.models import TestSource as PatternSpec


@pytest.mark.parametrize("pattern", ["bars", "motion", "noise"])
def test_content_changes_between_frames(pattern: str) -> None:
    source = SyntheticSource(PatternSpec(pattern=pattern, width=320, height=200))
    source.open()
    try:
        first, second = source.read(), source.read()
    finally:
        source.close()
    assert (first.width, first.height) == (320, 200)
    assert first.image is not None and second.image is not None
    assert first.image.shape == (200, 320, 3) and first.image.dtype == np.uint8
    changed = np.any(first.image != second.image, axis=2).mean()
    assert changed > 0.001, f"{pattern}: only {changed:.4%} of pixels changed"


def test_motion_has_a_static_scene() -> None:
    source = SyntheticSource(PatternSpec(pattern="motion", width=640, height=480))
    source.open()
    a, b = source.read(), source.read()
    assert a.image is not None and b.image is not None
    # The bottom rows (below the text and the moving object) stay the same.
    assert np.array_equal(a.image[-40:], b.image[-40:])
    assert not np.array_equal(a.image, b.image)


def test_reads_without_open_and_close_twice() -> None:
    source = SyntheticSource(PatternSpec())
    assert source.read().width == 640
    source.close()
    source.close()
    assert "test pattern" in source.name
