"""What every frame reader reports about the video it opened (:mod:`.decode` for files, :mod:`.frames` for folders
of images); its own module so that both readers use it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of an opened video. ``frames`` is the container's count; readers check it while decoding."""

    path: str
    fps: float
    frames: int
    width: int
    height: int
    decoder: str
