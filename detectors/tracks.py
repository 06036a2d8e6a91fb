"""The ``tracks`` stage: ultralytics YOLO detection + ByteTrack (the configuration shipped inside ultralytics)
over the project's decoder's frame stream (decoded in a background thread), one fresh tracker per video, track
ids renumbered 1..N per video in order of first appearance.

Outputs per video, in ``tracks/<tag>/``:

- ``<video_id>.csv``: one row per tracked box, columns ``frame, track_id, x1, y1, x2, y2, confidence, class,
  prob_0 ... prob_{C-1}`` (frame: 0-based native frame index; boxes in original pixels; ``prob_k``: the
  detector's score for class k, the vector SSMTL's distillation task learns from);
- ``<video_id>.json`` (schema ``vad-pipeline/tracks/1``): detector path and SHA-256, class names, ``conf``,
  ``imgsz``, ``classes``, ``frame_stride``, tracker config, video ``frames``/``fps``/``width``/``height``,
  ``detections``, ``tracks``, ``mean_track_length`` (boxes per track), ``seconds``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vad_pipeline.atomic import atomic_path, save_json_atomic
from vad_pipeline.decode import open_video
from vad_pipeline.errors import CacheError, UserError
from vad_pipeline.prefetch import prefetched
from vad_pipeline.stage import Stage
from vad_pipeline.workspace import VideoRef, Workspace

from .yolo import load_detector, probability_predictor, resolve_detector

log = logging.getLogger(__name__)

TRACKS_SCHEMA = "vad-pipeline/tracks/1"
TRACKS_VERSION = 1
TRACKER = "bytetrack.yaml"


@dataclass(frozen=True)
class TrackConfig:
    """Options of the tracks stage."""

    detector: str | None = None
    conf: float = 0.25
    imgsz: int = 640
    classes: tuple[int, ...] | None = None
    frame_stride: int = 1
    decoder: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.frame_stride < 1:
            raise UserError(f"--frame-stride {self.frame_stride}: must be at least 1")
        if not 0 < self.conf < 1:
            raise UserError(f"--conf {self.conf}: must be between 0 and 1")


def _tracker_config() -> Any:
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    return IterableSimpleNamespace(**YAML.load(check_yaml(TRACKER)))


class TrackStage(Stage):
    """Per video: detect every ``frame_stride``-th frame, associate boxes with ByteTrack, write the table."""

    name = "tracks"

    def __init__(self, config: TrackConfig, workspace: Workspace):
        self.cfg = config
        self.detector_path = resolve_detector(config.detector)
        self.detector_sha256 = workspace.manifest.sha256_of(self.detector_path)
        self.model: Any = None
        self.class_names: dict[int, str] = {}
        self.half = _cuda_available()  # ultralytics picks the GPU by itself when there is one

    def config(self) -> dict[str, Any]:
        precision = {"precision": "fp16"} if self.half else {}  # fp32 adds no key: older caches stay valid
        return precision | {
            "tracks_version": TRACKS_VERSION,
            "detector_sha256": self.detector_sha256,
            "conf": self.cfg.conf,
            "imgsz": self.cfg.imgsz,
            "classes": list(self.cfg.classes) if self.cfg.classes else None,
            "frame_stride": self.cfg.frame_stride,
            "tracker": TRACKER,
        }

    def tag(self, digest: str) -> str:
        return f"{self.detector_path.stem}-{digest}"

    def on_worker(self) -> None:
        if self.half and not _cuda_available():
            raise UserError("tracks: the driver chose fp16 detection but this worker has no GPU; give every worker a "
                            "GPU or run the driver without one")

    def prepare(self) -> None:
        if self.model is None:
            self.model = load_detector(self.detector_path)
            self.class_names = {int(k): str(v) for k, v in self.model.names.items()}
            log.info("tracks: %s (%s), conf %.2f, imgsz %d, every %d frame(s)", self.detector_path.name,
                     ", ".join(self.class_names.values()), self.cfg.conf, self.cfg.imgsz, self.cfg.frame_stride)

    def outputs(self, video: VideoRef, folder: Path) -> list[Path]:
        return [folder / f"{video.video_id}.csv", folder / f"{video.video_id}.json"]

    def verify(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        table, sidecar = self.outputs(video, folder)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            with open(table, newline="") as handle:
                header = next(csv.reader(handle))
        except Exception as exc:
            raise CacheError(f"{table}: corrupt cache entry ({type(exc).__name__}: {exc})") from None
        if meta.get("schema") != TRACKS_SCHEMA or header[:2] != ["frame", "track_id"]:
            raise CacheError(f"{table}: corrupt cache entry (unexpected header or sidecar)")
        return _summary(meta)

    def detect(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, Any]:
        """Boxes of one frame: (ultralytics Boxes on the CPU as numpy, class probabilities ``(n, classes)``)."""
        bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
        result = self.model.predict(bgr, predictor=probability_predictor(), conf=self.cfg.conf, imgsz=self.cfg.imgsz,
                                    classes=list(self.cfg.classes) if self.cfg.classes else None, half=self.half,
                                    verbose=False)[0]
        return result.boxes.cpu().numpy(), result.class_probs

    def _track_frame(self, frame: np.ndarray, frame_index: int, tracker: Any, renumber: dict[int, int],
                     lengths: dict[int, int], out: Any) -> int:
        """Detect, update the tracker and write one CSV row per tracked box; returns the number of detections.
        ``renumber`` maps the tracker's ids to 1..N in order of first appearance; ``lengths`` counts boxes per id."""
        boxes, probs = self.detect(frame)
        classes = len(self.class_names)
        for x1, y1, x2, y2, raw_id, score, cls, index in tracker.update(boxes, frame):
            track_id = renumber.setdefault(int(raw_id), len(renumber) + 1)
            lengths[track_id] = lengths.get(track_id, 0) + 1
            prob = probs[int(index)] if len(probs) > int(index) else np.zeros(classes)
            out.writerow([frame_index, track_id, f"{x1:.2f}", f"{y1:.2f}", f"{x2:.2f}", f"{y2:.2f}", f"{score:.4f}",
                          int(cls)] + [f"{p:.4f}" for p in prob])
        return len(boxes)

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        from ultralytics.trackers.byte_tracker import BYTETracker

        started = time.perf_counter()
        reader = open_video(video.path, self.cfg.decoder)
        info = reader.info
        tracker_config = _tracker_config()
        tracker = BYTETracker(tracker_config)  # a fresh tracker per video
        renumber: dict[int, int] = {}
        lengths: dict[int, int] = {}
        classes = len(self.class_names)
        table, sidecar = self.outputs(video, folder)
        detections = 0
        try:
            with atomic_path(table) as tmp, open(tmp, "w", newline="") as handle:
                out = csv.writer(handle)
                out.writerow(["frame", "track_id", "x1", "y1", "x2", "y2", "confidence", "class"]
                             + [f"prob_{k}" for k in range(classes)])
                frame_index = 0
                bar = tqdm(total=info.frames, desc=video.path.name[-30:], unit="frame", leave=False,
                           disable=not self.cfg.progress, dynamic_ncols=True)
                chunks = prefetched(lambda: reader.iter_chunks(32), depth=2, name="vad-decode")
                with bar, contextlib.closing(chunks):
                    for chunk in chunks:
                        for frame in chunk:
                            if frame_index % self.cfg.frame_stride == 0:
                                detections += self._track_frame(frame, frame_index, tracker, renumber, lengths, out)
                            frame_index += 1
                        bar.update(len(chunk))
        finally:
            reader.close()
        meta = {
            "schema": TRACKS_SCHEMA, "video": str(video.path), "video_id": video.video_id,
            "video_sha256": video.sha256, "detector": str(self.detector_path), "detector_sha256": self.detector_sha256,
            "class_names": self.class_names, "conf": self.cfg.conf, "imgsz": self.cfg.imgsz,
            "classes": list(self.cfg.classes) if self.cfg.classes else None, "frame_stride": self.cfg.frame_stride,
            "tracker": {"config": TRACKER, **dict(vars(tracker_config))},
            "frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height,
            "decoder": info.decoder, "detections": detections, "tracks": len(lengths),
            "mean_track_length": float(np.mean(list(lengths.values()))) if lengths else 0.0,
            "seconds": round(time.perf_counter() - started, 3),
        }
        save_json_atomic(sidecar, meta)
        return _summary(meta)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    keys = ("frames", "fps", "width", "height", "detections", "tracks", "mean_track_length")
    return {key: meta.get(key) for key in keys}


def read_tracks(path: Path) -> np.ndarray:
    """A tracks CSV as a float array ``(rows, 8 + classes)`` in the documented column order (``(0, 0)`` when the
    video had no detections)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": a video without objects
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
