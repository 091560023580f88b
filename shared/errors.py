"""One exception tree for the whole project.

::

    GlimpserError
    ├── ConfigError          invalid settings or template (carries file line when known)
    ├── ProtocolError        a message on the wire that breaks the v1 contract
    │   └── InvalidIdError   an agent/stream/template id outside [a-z0-9][a-z0-9_-]{0,62}
    ├── SourceError          a camera or page cannot be opened or read
    ├── TransportError       the MQTT broker cannot be reached
    ├── StorageError         local state or database cannot be read or written
    ├── NotFoundError        an unknown agent, stream or template
    └── PortInUseError       a listening port is already taken

Third-party errors are wrapped with ``raise ... from err`` at the boundary.
"""

from __future__ import annotations


class GlimpserError(Exception):
    """Base of every error Glimpser raises on purpose."""


class ConfigError(GlimpserError):
    """Settings or a template failed validation."""


class ProtocolError(GlimpserError):
    """A message broke the MQTT contract (bad topic, payload or size)."""


class InvalidIdError(ProtocolError, ValueError):
    """An id does not match the id pattern."""


class SourceError(GlimpserError):
    """A capture source could not be opened or read."""


class TransportError(GlimpserError):
    """The MQTT broker could not be reached or dropped the connection."""


class StorageError(GlimpserError):
    """Local state or the database could not be read or written."""


class NotFoundError(GlimpserError, LookupError):
    """An unknown agent, stream or template was asked for."""


class PortInUseError(GlimpserError):
    """A port we must listen on is already taken by another process."""
