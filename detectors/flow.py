"""Object velocity from dense optical flow: per tracked box, how fast and in which directions it moves (the velocity
attribute of Reiss & Hoshen, "Attribute-based representations for accurate and interpretable video anomaly
detection").

Flow is OpenCV's DIS (Kroeger et al. 2016, the ``medium`` preset: about 4 ms a frame at 360x240 on one core) on
grey frames scaled to at most ``work_height`` rows. The velocity of an object at frame ``i`` comes from the mean of
the flows ``i-span -> ... -> i+span`` (fewer at a video's ends) inside its box, in **frame heights per frame** (a
dataset's resolution drops out). Per box, ``bins + 1`` values:

- the orientation x magnitude histogram of its moving pixels (flow above ``moving`` frame heights per frame): each
  falls into one of ``bins`` direction sectors (sector k centred on k * 360 / bins degrees from +x, towards +y:
  down in the image) and adds its magnitude there, divided by the number of moving pixels (the histogram's total
  is their mean speed; all zeros where nothing in the box moves);
- the box's speed: the 90th percentile of the flow magnitude over all its pixels, robust to a box that holds some
  background and to one that holds a few stray pixels.

Only a sliding window of grey frames and ``2 span`` flow fields is held, so memory does not grow with video length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from vad_pipeline.io.decode import open_video


@dataclass(frozen=True)
class FlowConfig:
    """How object velocities are measured."""

    bins: int = 8  # direction sectors of the histogram
    work_height: int = 240  # frames taller than this are scaled down to it before the flow (never up)
    span: int = 3  # the flows of frames i - span .. i + span (in the box of frame i) are averaged
    moving: float = 0.5 / 240  # a pixel moves when its flow exceeds this (frame heights per frame: 0.5 px at 240 rows)

    @property
    def size(self) -> int:
        """Values per box: the histogram's ``bins`` and the speed."""
        return self.bins + 1


def grey(frame: np.ndarray, config: FlowConfig) -> np.ndarray:
    """``(H, W, 3)`` RGB uint8 -> ``(h, w)`` grey uint8 at no more than ``config.work_height`` rows."""
    image = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    height, width = image.shape
    if height > config.work_height:
        scale = config.work_height / height
        image = cv2.resize(image, (max(1, round(width * scale)), config.work_height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


class FlowField:
    """DIS optical flow between consecutive grey frames: ``(h, w, 2)`` float32 in working pixels."""

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return self.dis.calc(first, second, None)


def box_velocities(flows: list[np.ndarray], boxes: np.ndarray, frame_height: int, config: FlowConfig) -> np.ndarray:
    """``(N, bins + 1)`` float32 velocities of ``boxes`` ``(N, 4)`` (x1 y1 x2 y2, original pixels of a frame
    ``frame_height`` rows tall) from the mean of ``flows`` (each ``(h, w, 2)``, working pixels): the moving pixels'
    orientation x magnitude histogram, then the box's speed, in frame heights per frame (see the module docstring)."""
    out = np.zeros((len(boxes), config.size), np.float32)
    if not len(boxes) or not flows:
        return out
    flow = flows[0] if len(flows) == 1 else np.mean(flows, axis=0)
    height, width = flow.shape[:2]
    scale = height / frame_height  # working pixels per original pixel
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    magnitude /= height  # frame heights per frame
    # sector k is centred on the direction k * 360 / bins degrees (0: +x), so motion along an axis never straddles two
    sector = np.floor(angle * (config.bins / (2 * np.pi)) + 0.5).astype(np.int64) % config.bins
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, np.float64)):
        c1, r1 = int(np.clip(np.floor(x1 * scale), 0, width - 1)), int(np.clip(np.floor(y1 * scale), 0, height - 1))
        c2 = int(np.clip(np.ceil(x2 * scale), c1 + 1, width))
        r2 = int(np.clip(np.ceil(y2 * scale), r1 + 1, height))
        speeds, sectors = magnitude[r1:r2, c1:c2].ravel(), sector[r1:r2, c1:c2].ravel()
        moving = speeds > config.moving
        out[i, :config.bins] = (np.bincount(sectors[moving], speeds[moving], minlength=config.bins)
                                / max(int(moving.sum()), 1))
        out[i, config.bins] = np.percentile(speeds, 90)
    return out


def speed_and_place(velocity: np.ndarray, boxes: np.ndarray, frame_height: int) -> np.ndarray:
    """``(N, 3)``: each object's speed (the last column of ``velocity``, frame heights per frame) and its box centre
    (row, column) in frame heights: what the ``vel`` memory compares, so that the normal speed of each place in the
    scene is learnt (a perspective view's far walkers are slower in pixels than its near ones)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = np.stack([(boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 0] + boxes[:, 2]) / 2], axis=1) / max(frame_height, 1)
    return np.concatenate([np.asarray(velocity, np.float64).reshape(len(boxes), -1)[:, -1:], centre],
                          axis=1).astype(np.float32)


def object_velocities(video: Path, frames: np.ndarray, boxes: np.ndarray, config: FlowConfig = FlowConfig(),
                      decoder: str = "auto") -> np.ndarray:
    """``(N, bins + 1)`` velocities (``box_velocities``) of the objects at ``frames`` ``(N,)`` with ``boxes``
    ``(N, 4)`` of one video, decoding it once (see the module docstring)."""
    out = np.zeros((len(frames), config.size), np.float32)
    if not len(frames):
        return out
    by_frame: dict[int, list[int]] = {}
    for index, frame in enumerate(np.asarray(frames, np.int64)):
        by_frame.setdefault(int(frame), []).append(index)
    for frame, flows, height in _flows_around(video, set(by_frame), decoder, config):
        rows = np.asarray(by_frame[frame])
        out[rows] = box_velocities(flows, boxes[rows], height, config)
    return out


def _flows_around(video: Path, wanted: set[int], decoder: str,
                  config: FlowConfig) -> Iterator[tuple[int, list[np.ndarray], int]]:
    """For each frame index ``i`` in ``wanted``: the flows ``j-1 -> j`` for ``j`` in ``i - span + 1 .. i + span``
    that exist (fewer at the video's ends) and the frame's original height."""
    reader = open_video(video, decoder)
    field = FlowField()
    span = config.span
    previous: np.ndarray | None = None
    into: dict[int, np.ndarray] = {}  # flow (j-1 -> j), kept while a wanted frame within span still needs it
    decoded, height = 0, 0

    def needed(j: int) -> bool:
        return any(i in wanted for i in range(j - span, j + span))

    def around(centre: int) -> list[np.ndarray]:
        return [into[j] for j in range(centre - span + 1, centre + span + 1) if j in into]

    try:
        for chunk in reader.iter_chunks(32):
            for frame in chunk:
                height = frame.shape[0]
                current = grey(frame, config)
                if previous is not None and needed(decoded):
                    into[decoded] = field(previous, current)
                centre = decoded - span  # its last flow (centre + span - 1 -> centre + span) has just been made
                if centre in wanted:
                    yield centre, around(centre), height
                into.pop(decoded - 2 * span, None)
                previous = current
                decoded += 1
    finally:
        reader.close()
    for centre in range(max(decoded - span, 0), decoded):  # the last frames: only the flows that exist
        if centre in wanted:
            yield centre, around(centre), height
