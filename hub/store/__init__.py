"""In-memory state rebuilt from retained MQTT messages: agents, streams, latest frames."""
