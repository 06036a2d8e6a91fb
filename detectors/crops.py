"""Object-centric spatio-temporal crops for SSMTL, streamed: for a tracked box at frame i, the crops of frames
i-t .. i+t taken with the box of frame i (SSMTL's setting, no tracking needed) or with the track's own box in each
frame (``follow_track``), resized to ``size`` x ``size``.

Only a sliding window of 2t+1 decoded frames is held in memory, so memory does not grow with video length.
Frames at the video's edges are clamped (the first/last frame repeats).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from vad_pipeline.decode import open_video

from .tracks import read_tracks


@dataclass(frozen=True)
class ObjectSequence:
    """One object-centric sequence; ``frame``/``track_id``/``box`` map its score back to frames and pixels."""

    frame: int
    track_id: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original pixels, at ``frame``
    crops: np.ndarray  # (2t+1, size, size, 3) uint8 RGB, frame i-t first


def crop_box(frame: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """``(H, W, 3)`` -> ``(size, size, 3)``: the box (clipped to the frame, at least 2 px) resized."""
    height, width = frame.shape[:2]
    x1 = int(np.clip(np.floor(box[0]), 0, width - 2))
    y1 = int(np.clip(np.floor(box[1]), 0, height - 2))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 2, width))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 2, height))
    return cv2.resize(frame[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)


def object_sequences(
    video: Path, tracks_csv: Path, half_window: int = 3, size: int = 64, follow_track: bool = False,
    decoder: str = "auto", keep_row: Callable[[np.ndarray], bool] | None = None,
) -> Iterator[ObjectSequence]:
    """Yield one sequence per row of the tracks table (or per row ``keep_row`` accepts), in frame order (see the
    module docstring)."""
    table = read_tracks(tracks_csv)
    by_frame: dict[int, list[np.ndarray]] = {}
    boxes_of_track: dict[tuple[int, int], tuple[float, ...]] = {}
    for row in table:
        boxes_of_track[(int(row[1]), int(row[0]))] = tuple(row[2:6])
        if keep_row is None or keep_row(row):
            by_frame.setdefault(int(row[0]), []).append(row)
    if not by_frame:
        return
    reader = open_video(video, decoder)
    last = reader.info.frames - 1
    window: dict[int, np.ndarray] = {}  # the last 2t+1 decoded frames, by index

    def emit(center: int) -> Iterator[ObjectSequence]:
        for row in by_frame.get(center, []):
            track_id, box = int(row[1]), tuple(float(v) for v in row[2:6])
            crops = []
            for offset in range(-half_window, half_window + 1):
                index = int(np.clip(center + offset, 0, last))
                own = boxes_of_track.get((track_id, index)) if follow_track else None
                crops.append(crop_box(window[index], own or box, size))  # type: ignore[arg-type]
            yield ObjectSequence(center, track_id, box, np.stack(crops))  # type: ignore[arg-type]

    decoded = 0
    try:
        for chunk in reader.iter_chunks(32):
            for frame in chunk:
                window[decoded] = frame
                window.pop(decoded - 2 * half_window - 1, None)
                center = decoded - half_window  # every frame it needs is now decoded
                if center >= 0:
                    yield from emit(center)
                decoded += 1
    finally:
        reader.close()
    for center in range(max(0, decoded - half_window), decoded):  # the last frames: later ones are clamped
        yield from emit(center)
