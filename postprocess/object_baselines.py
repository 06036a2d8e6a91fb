"""What every object-centric result is read against: coverage diagnostics and two trivial baselines.

- :func:`coverage`: how much of the pixel ground truth the objects even reach. Per video, the anomalous regions
  are the 8-connected components (at least ``min_region`` pixels) of each frame's mask; a region is *covered* when
  a single object box holds at least ``min_cover`` of its pixels. Also: anomalous frames with at least one object,
  objects per frame, and the mean box area as a fraction of the frame, since coverage alone rewards boxes grown
  into blobs of several objects (an object crop holding several people hides each one's motion). An anomalous
  object that no box covers is never scored, whatever the model.
- :func:`frame_difference_energy`: no objects, no learning: per frame the mean absolute difference of the
  Gaussian-blurred (5x5) grey frame to the previous one (frame 0 takes frame 1's value).
- :func:`largest_object_speed`: per frame the largest speed of a tracked object: box-centre displacement since the
  track's previous box, per frame, over the box height (0 where no track moves).

:func:`save_frame_run` writes a baseline's frame scores as a ``scores/<method>-<hash>/`` run, so the report and
the protocol tables evaluate it exactly like a method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from scipy import ndimage

from vad_pipeline.core.schemas import SCORES_SCHEMA
from vad_pipeline.core.stage import Stage, run_stage
from vad_pipeline.core.workspace import NamedRef, VideoRef, Workspace
from vad_pipeline.detectors.motion import frame_motion
from vad_pipeline.errors import UserError
from vad_pipeline.io.atomic import save_json_atomic, save_npy_atomic


@dataclass
class Coverage:
    """One video's (or a sum of videos') coverage counts; ratios are properties."""

    regions: int = 0
    covered: int = 0
    anomalous_frames: int = 0
    anomalous_frames_with_object: int = 0
    frames: int = 0
    objects: int = 0
    box_fraction: float = 0.0  # the sum over objects of box area / frame area

    def __add__(self, other: "Coverage") -> "Coverage":
        return Coverage(*(a + b for a, b in zip(self.counts(), other.counts())))

    def counts(self) -> tuple[float, ...]:
        return (self.regions, self.covered, self.anomalous_frames, self.anomalous_frames_with_object, self.frames,
                self.objects, self.box_fraction)

    def as_dict(self) -> dict[str, Any]:
        return {
            "regions": self.regions, "covered_regions": self.covered,
            "region_coverage": self.covered / self.regions if self.regions else None,
            "anomalous_frames": self.anomalous_frames,
            "anomalous_frames_with_object": self.anomalous_frames_with_object,
            "anomalous_frame_coverage": (self.anomalous_frames_with_object / self.anomalous_frames
                                         if self.anomalous_frames else None),
            "frames": self.frames, "objects": self.objects,
            "objects_per_frame": self.objects / self.frames if self.frames else None,
            "mean_box_fraction": self.box_fraction / self.objects if self.objects else None,
        }


def coverage(frames: np.ndarray, boxes: np.ndarray, masks: np.ndarray, min_region: int = 20,
             min_cover: float = 0.5) -> Coverage:
    """Coverage of one video: object ``frames`` ``(N,)`` with ``boxes`` ``(N, 4)`` x1 y1 x2 y2 in mask pixels;
    ``masks`` ``(F, H, W)`` bool (see the module docstring)."""
    frames = np.asarray(frames, np.int64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    height, width = masks.shape[1:]
    inside = frames < len(masks)
    clipped = np.clip(boxes[inside], 0, [width, height, width, height])
    result = Coverage(frames=len(masks), objects=int(inside.sum()),
                      box_fraction=float(np.sum((clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]))
                                         / (height * width)))
    for index, mask in enumerate(masks):
        if not mask.any():
            continue
        here = boxes[frames == index]
        result.anomalous_frames += 1
        result.anomalous_frames_with_object += int(len(here) > 0)
        regions, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        sizes = np.bincount(regions.ravel(), minlength=count + 1)
        for region in np.flatnonzero(sizes >= min_region):
            if region == 0:
                continue
            result.regions += 1
            for x1, y1, x2, y2 in here:
                top, bottom = int(np.clip(np.floor(y1), 0, height)), int(np.clip(np.ceil(y2), 0, height))
                left, right = int(np.clip(np.floor(x1), 0, width)), int(np.clip(np.ceil(x2), 0, width))
                if np.count_nonzero(regions[top:bottom, left:right] == region) >= min_cover * sizes[region]:
                    result.covered += 1
                    break
    return result


def frame_difference_energy(video: Path, decoder: str = "auto") -> np.ndarray:
    """``(N,)`` float32: per frame the mean absolute difference to the previous blurred grey frame
    (:func:`vad_pipeline.detectors.motion.frame_motion`, which SSMTL's ``motion`` attribute reads too)."""
    return frame_motion(video, decoder)


def largest_object_speed(tracks: np.ndarray, count: int) -> np.ndarray:
    """``(count,)`` float32 from a tracks table ``(rows, >= 6)`` ``frame, track_id, x1, y1, x2, y2, ...``."""
    speed = np.zeros(count, np.float64)
    if not len(tracks):
        return speed.astype(np.float32)
    order = np.lexsort((tracks[:, 0], tracks[:, 1]))  # by track, then frame
    rows = tracks[order]
    same_track = rows[1:, 1] == rows[:-1, 1]
    centres = np.stack([(rows[:, 2] + rows[:, 4]) / 2, (rows[:, 3] + rows[:, 5]) / 2], axis=1)
    steps = np.maximum(rows[1:, 0] - rows[:-1, 0], 1)
    heights = np.maximum(rows[1:, 5] - rows[1:, 3], 1.0)
    values = np.linalg.norm(centres[1:] - centres[:-1], axis=1) / steps / heights
    frames = rows[1:, 0].astype(np.int64)
    keep = same_track & (frames < count)
    np.maximum.at(speed, frames[keep], values[keep])
    return speed.astype(np.float32)


@dataclass
class FrameScores:
    """One video's baseline output: ``scores`` ``(N,)`` per native frame."""

    name: str
    key: str
    label: int
    split: str
    scores: np.ndarray
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    source: str | None = None


class FrameScoreStage(Stage):
    """A baseline's frame scores as a ``scores`` stage: the artifact contract of every score run (the folder's
    ``config.json``, a lock per video, a manifest row with its lineage), for scores already computed (``videos``:
    key -> :class:`FrameScores`). The folder is ``scores/<method>-<hash of config>/``; per video ``<key>.npy``
    ``(N,)`` float32 and its ``<key>.json`` sidecar (``level: "frame"``, written last)."""

    name = "scores"
    describes_videos = False

    def __init__(self, method: str, config: dict[str, Any], videos: dict[str, FrameScores]):
        self.method = method
        self.settings = config
        self.videos = videos

    def config(self) -> dict[str, Any]:
        return self.settings

    def tag(self, digest: str) -> str:
        return f"{self.method}-{digest}"

    def outputs(self, video: VideoRef, folder: Path) -> list[Path]:
        return [folder / f"{video.video_id}.npy", folder / f"{video.video_id}.json"]

    def inputs(self, video: VideoRef) -> dict[str, Any]:
        return {"video": self.videos[video.video_id].key}

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        scored = self.videos[video.video_id]
        scores = np.asarray(scored.scores, np.float32)
        target, sidecar = self.outputs(video, folder)
        save_npy_atomic(target, scores)
        save_json_atomic(sidecar, {
            "schema": SCORES_SCHEMA, "video": scored.name, "key": scored.key, "label": scored.label,
            "split": scored.split, "method": self.method, "level": "frame", "T": int(len(scores)),
            "frames": int(len(scores)), "fps": scored.fps, "width": scored.width, "height": scored.height,
            "source_video": scored.source,
        })
        return {"T": int(len(scores)), "method": self.method}


def save_frame_run(workdir: Path, method: str, config: dict[str, Any], videos: Iterable[FrameScores]) -> Path:
    """Write frame scores as the ``scores`` run ``<workdir>/scores/<method>-<hash of config>/`` through
    :class:`FrameScoreStage` (every entry rewritten: the scores were just computed), plus the run's
    ``summary.json`` (``method``, ``config``, ``videos``)."""
    by_key = {video.key: video for video in videos}
    stage = FrameScoreStage(method, config, by_key)
    refs = [NamedRef(path=Path(v.source or v.key), sha256=v.key, size=0, name=v.key) for v in by_key.values()]
    summary = run_stage(Workspace(workdir), stage, refs, force=True, progress=False)
    if summary.failed:
        raise UserError(f"{method}: could not write the scores of {len(summary.failed)} video(s): "
                        f"{summary.failed[0][1]}")
    assert summary.folder is not None
    save_json_atomic(summary.folder / "summary.json", {"method": method, "config": config, "videos": len(by_key)})
    return summary.folder
