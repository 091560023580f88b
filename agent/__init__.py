"""The Glimpser agent: runs capture templates as streams and publishes them over MQTT."""

from glimpser.shared import __version__

__all__ = ["__version__"]
