"""Id validation: ids go into MQTT topics, file names and URLs, so they are strict."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from glimpser.shared.errors import InvalidIdError

ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
_ID_RE = re.compile(rf"\A{ID_PATTERN}\Z")


def validate_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid id, else raise InvalidIdError naming ``what``."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidIdError(
            f"invalid {what} {value!r}: use 1-63 characters a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def is_valid_id(value: str) -> bool:
    """True when ``value`` is a valid id."""
    return isinstance(value, str) and bool(_ID_RE.match(value))


def slugify(text: str) -> str:
    """Turn a human name into a valid id (best effort; never empty)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:63]
    return slug or "stream"


Id = Annotated[str, AfterValidator(validate_id)]
"""A pydantic field type for ids."""
