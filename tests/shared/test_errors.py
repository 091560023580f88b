"""The one exception tree (shared/errors.py)."""

from __future__ import annotations

import pytest

from glimpser.shared import errors


@pytest.mark.parametrize(
    "name",
    [
        "ConfigError",
        "ProtocolError",
        "InvalidIdError",
        "SourceError",
        "TransportError",
        "StorageError",
        "NotFoundError",
        "PortInUseError",
    ],
)
def test_every_error_is_a_glimpser_error(name: str) -> None:
    assert issubclass(getattr(errors, name), errors.GlimpserError)


def test_lookup_and_value_compatibility() -> None:
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.InvalidIdError, ValueError)
    assert issubclass(errors.InvalidIdError, errors.ProtocolError)
