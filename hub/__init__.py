"""The Glimpser hub: aggregates every agent's streams into one HTTP API and MJPEG relay."""
