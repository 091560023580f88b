"""Capture sources: where frames come from (test pattern, OpenCV, picamera2)."""
