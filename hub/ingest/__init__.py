"""MQTT ingest: the hub's only broker connection and the dispatch of what it receives."""
