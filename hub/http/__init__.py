"""The hub's HTTP side: REST streams API, MJPEG, health and metrics."""
