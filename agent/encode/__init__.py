"""Frame encoding: JPEG frames and snapshot thumbnails."""
