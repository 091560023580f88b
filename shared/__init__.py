"""The contract between agents and the hub: models, topics, codecs and errors.

This package imports neither ``glimpser.agent`` nor ``glimpser.hub``.
"""

__version__ = "0.1.0"
