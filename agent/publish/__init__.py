"""Publishing: the seam between runners and the MQTT link."""
