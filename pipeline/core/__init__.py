"""The stage core every part builds on: the workspace and its manifest, the stage contract (cached inputs to cached
outputs, locks, resume), executors, devices and precisions, the shared file schemas and frame-score conventions."""
