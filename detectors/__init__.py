"""Object detection and tracking (ultralytics YOLO + ByteTrack) and object-centric crops."""
