"""Capture scheduling: one runner per template turns a source into a live stream."""
