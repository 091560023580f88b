"""Ids go into topics, file names and URLs: only [a-z0-9][a-z0-9_-]{0,62} gets through."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from glimpser.shared.errors import InvalidIdError, ProtocolError
from glimpser.shared.ids import Id, is_valid_id, slugify, validate_id

VALID = [
    "a",
    "0",
    "cam1",
    "front-door",
    "front_door",
    "9lives",
    "a" * 63,
    "a-",
    "a_",
    "x" + "-" * 62,
]
INVALID = [
    "",
    "A",
    "Cam1",
    "-a",
    "_a",
    "a" * 64,
    "a+b",
    "+",
    "#",
    "a#",
    "a/b",
    "/a",
    "..",
    "../etc",
    "a..b",
    "a.b",
    "a b",
    " a",
    "a\n",
    "a\x00",
    "café",
    "\uff41",  # fullwidth a
    "\u0131",  # dotless i
    "\u212a",  # Kelvin sign: lower-cases to ASCII k, must still be rejected as is
    "$SYS",
    "a*",
    "a\t",
]


@pytest.mark.parametrize("value", VALID)
def test_valid_ids_pass(value: str) -> None:
    assert validate_id(value) == value
    assert is_valid_id(value)


@pytest.mark.parametrize("value", INVALID)
def test_invalid_ids_raise_with_what_and_value(value: str) -> None:
    assert not is_valid_id(value)
    with pytest.raises(InvalidIdError) as info:
        validate_id(value, "stream id")
    assert "stream id" in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [None, 1, b"cam", ["a"]])
def test_non_strings_are_invalid(value: object) -> None:
    assert not is_valid_id(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        validate_id(value)  # type: ignore[arg-type]


def test_invalid_id_error_is_a_protocol_and_value_error() -> None:
    assert issubclass(InvalidIdError, ProtocolError)
    assert issubclass(InvalidIdError, ValueError)


def test_id_field_type_turns_errors_into_validation_errors() -> None:
    adapter = TypeAdapter(Id)
    assert adapter.validate_python("cam-1") == "cam-1"
    with pytest.raises(ValidationError, match="invalid id"):
        adapter.validate_python("cam/1")
    with pytest.raises(ValidationError):
        adapter.validate_python(12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Front Door", "front-door"),
        ("  Garage #2 ", "garage-2"),
        ("a/b+c#d", "a-b-c-d"),
        ("___x___", "x"),
        ("Café Über", "caf-ber"),
        ("", "stream"),
        ("🙂🙂", "stream"),
        ("--", "stream"),
    ],
)
def test_slugify_examples(text: str, expected: str) -> None:
    assert slugify(text) == expected


@pytest.mark.parametrize(
    "text",
    ["x" * 200, "-" * 70 + "b", "Ünïcödé  name", "../../etc/passwd", "a" * 62 + "-bc", "\u212a"],
)
def test_slugify_always_returns_a_valid_id(text: str) -> None:
    assert is_valid_id(slugify(text))
