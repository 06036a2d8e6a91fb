"""Pictures of tracklets for people and for the report: frames with boxes and ids, a track timeline, and a
contact sheet of object-centric crops."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from vad_pipeline.io.atomic import write_atomic
from vad_pipeline.io.decode import open_video

from .crops import ObjectSequence
from .tracks import read_tracks


def _color(track_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(track_id)
    return tuple(int(c) for c in rng.integers(60, 255, size=3))  # type: ignore[return-value]


def save_png(path: Path, image_rgb: np.ndarray) -> None:
    """Write an RGB image as PNG atomically."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"cannot encode {path}")
    write_atomic(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def annotated_frames(video: Path, tracks_csv: Path, count: int = 4) -> np.ndarray:
    """``count`` evenly spaced frames that have boxes, with boxes and track ids drawn, side by side (RGB)."""
    table = read_tracks(tracks_csv)
    frames_with_boxes = sorted({int(f) for f in table[:, 0]}) if len(table) else [0]
    wanted = [frames_with_boxes[i] for i in np.linspace(0, len(frames_with_boxes) - 1, count).round().astype(int)]
    reader = open_video(video)
    picked: dict[int, np.ndarray] = {}
    index = 0
    for chunk in reader.iter_chunks(32):
        for frame in chunk:
            if index in wanted:
                picked[index] = frame.copy()
            index += 1
    reader.close()
    panels = []
    for frame_index in wanted:
        frame = picked[frame_index]
        for row in table[table[:, 0] == frame_index]:
            x1, y1, x2, y2 = (int(v) for v in row[2:6])
            color = _color(int(row[1]))
            cv2.rectangle(frame, (x1, y1), (x2, y2), color, 2)
            cv2.putText(frame, f"#{int(row[1])} {row[6]:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        color, 1, cv2.LINE_AA)
        cv2.putText(frame, f"frame {frame_index}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
        panels.append(frame)
    return np.concatenate(panels, axis=1)


def track_timeline(tracks_csv: Path, frames: int, width: int = 800, row_height: int = 12) -> np.ndarray:
    """One row per track, a bar where it is present (RGB)."""
    table = read_tracks(tracks_csv)
    ids = sorted({int(t) for t in table[:, 1]}) if len(table) else []
    image = np.full((max(1, len(ids)) * row_height + 4, width, 3), 255, np.uint8)
    for row_index, track_id in enumerate(ids):
        present = table[table[:, 1] == track_id, 0]
        for frame_index in present:
            x = int(frame_index / max(1, frames - 1) * (width - 1))
            cv2.line(image, (x, row_index * row_height + 2), (x, (row_index + 1) * row_height), _color(track_id), 2)
    return image


def contact_sheet(sequences: Iterable[ObjectSequence], rows: int = 8) -> np.ndarray:
    """Up to ``rows`` sequences, one per row, their 2t+1 crops left to right, labelled (RGB)."""
    lines = []
    for sequence in sequences:
        strip = np.concatenate(list(sequence.crops), axis=1).copy()
        cv2.putText(strip, f"f{sequence.frame} #{sequence.track_id}", (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                    (255, 255, 0), 1, cv2.LINE_AA)
        lines.append(strip)
        if len(lines) == rows:
            break
    if not lines:
        return np.zeros((64, 64, 3), np.uint8)
    return np.concatenate(lines, axis=0)
