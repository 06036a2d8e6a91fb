"""Object-centric spatio-temporal crops for SSMTL, streamed: for a tracked box at frame i, the crops of frames
i-t .. i+t taken with the box of frame i (SSMTL's setting, no tracking needed) or with the track's own box in each
frame (``follow_track``), resized to ``size`` x ``size``.

Near the video's ends the window is shifted to stay inside it (an object at frame 0 gets frames 0 .. 2t, still
in the box of frame 0): repeating the first or last frame instead would freeze the object for a few frames, and a
pause followed by motion is exactly what SSMTL's motion-irregularity and arrow-of-time tasks call anomalous, so
every clip's first and last t frames scored high. Only a video shorter than 2t+1 frames repeats its last frame.
Only a sliding window of about 2t+1 decoded frames is held in memory, so memory does not grow with video length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from vad_pipeline.io.decode import open_video

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


def window_start(center: int, half_window: int, last: int | None = None) -> int:
    """The first frame of ``center``'s window of ``2 half_window + 1`` frames: ``center - half_window``, shifted to
    keep the window inside ``0 .. last`` (``last`` None: the end is not known yet, only the start shifts)."""
    first = max(center - half_window, 0)
    return first if last is None else min(first, max(last - 2 * half_window, 0))


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
    window: dict[int, np.ndarray] = {}  # the decoded frames some pending sequence still needs, by index

    def emit(center: int, last: int) -> Iterator[ObjectSequence]:
        start = window_start(center, half_window, last)
        for row in by_frame.get(center, []):
            track_id, box = int(row[1]), tuple(float(v) for v in row[2:6])
            crops = []
            for index in range(start, start + 2 * half_window + 1):
                index = min(index, last)  # only a video shorter than the window repeats its last frame
                own = boxes_of_track.get((track_id, index)) if follow_track else None
                crops.append(crop_box(window[index], own or box, size))  # type: ignore[arg-type]
            yield ObjectSequence(center, track_id, box, np.stack(crops))  # type: ignore[arg-type]

    expected_last = reader.info.frames - 1  # the container's count; the true end is known once decoding stops
    decoded = 0
    center = 0  # the next frame whose sequences are due
    try:
        for chunk in reader.iter_chunks(32):
            for frame in chunk:
                window[decoded] = frame
                decoded += 1
                while (center < decoded
                       and window_start(center, half_window, expected_last) + 2 * half_window < decoded):
                    yield from emit(center, max(expected_last, decoded - 1))
                    center += 1
                # safe for any true end
                for index in [i for i in window if i < window_start(center, half_window, decoded - 1)]:
                    del window[index]
    finally:
        reader.close()
    for center in range(center, decoded):  # the last frames, now that the true end is known
        yield from emit(center, decoded - 1)
