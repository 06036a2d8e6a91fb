"""The ``tracks`` stage: ultralytics YOLO detection + ByteTrack (the configuration shipped inside ultralytics)
over the project's decoder's frame stream (decoded in a background thread), one fresh tracker per video, track
ids renumbered 1..N per video in order of first appearance.

Outputs per video, in ``tracks/<tag>/``:

- ``<video_id>.csv``: one row per tracked box, columns ``frame, track_id, x1, y1, x2, y2, confidence, class,
  prob_0 ... prob_{C-1}`` (frame: 0-based native frame index; boxes in original pixels; ``prob_k``: the
  detector's score for class k, the vector SSMTL's distillation task learns from). With motion proposals
  (``objects`` ``motion`` or ``both``, see :mod:`.motion`) the classes gain a last one, "moving object", whose
  ``prob`` is the fraction of the box's pixels that move; objects only motion found have that class;
- ``<video_id>.json`` (schema ``vad-pipeline/tracks/1``): ``video`` (file or frame folder), ``clip`` (its name),
  ``objects``, detector path and SHA-256 (null for
  ``motion``), class names, ``conf``, ``imgsz`` (the size used for this video), ``motion`` settings, ``classes``,
  ``frame_stride``, tracker config, video ``frames``/``fps``/``width``/``height``,
  ``detections``, ``tracks``, ``mean_track_length`` (boxes per track), ``seconds``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm.auto import tqdm

from vad_pipeline.core.devices import resolve_device
from vad_pipeline.core.stage import Stage
from vad_pipeline.core.workspace import VideoRef, Workspace
from vad_pipeline.errors import CacheError, UserError
from vad_pipeline.io.atomic import atomic_path, save_json_atomic
from vad_pipeline.io.decode import open_video
from vad_pipeline.io.prefetch import prefetched

from .config import TrackConfig
from .motion import MOVING_CLASS_NAME, MotionProposer, merge_detections
from .yolo import load_detector, probability_predictor, resolve_detector

log = logging.getLogger(__name__)

TRACKS_SCHEMA = "vad-pipeline/tracks/1"
TRACKS_VERSION = 2  # 2: motion proposals at work_height rows for frames smaller than it too (scaled up)
TRACKER = "bytetrack.yaml"


def auto_imgsz(width: int, height: int, cap: int = 640) -> int:
    """The detector input size for a frame: its longer side rounded up to the network stride (32), at most ``cap``
    (a 360x240 frame runs at 384 instead of being upscaled to 640)."""
    return int(min(cap, -(-max(width, height) // 32) * 32))


def _tracker_config() -> Any:
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    return IterableSimpleNamespace(**YAML.load(check_yaml(TRACKER)))


class TrackStage(Stage):
    """Per video: detect every ``frame_stride``-th frame, associate boxes with ByteTrack, write the table."""

    name = "tracks"

    def __init__(self, config: TrackConfig, workspace: Workspace):
        self.cfg = config
        self.uses_detector = config.objects != "motion"
        self.uses_motion = config.objects != "detector"
        self.detector_path = resolve_detector(config.detector) if self.uses_detector else None
        self.detector_sha256 = workspace.manifest.sha256_of(self.detector_path) if self.detector_path else None
        self.model: Any = None
        self.class_names: dict[int, str] = {}
        self.device = resolve_device(config.device)
        self.half = self.uses_detector and self.device.type == "cuda"  # fp16 detection on a GPU

    def config(self) -> dict[str, Any]:
        precision = {"precision": "fp16"} if self.half else {}  # fp32 adds no key: older caches stay valid
        motion = ({"objects": self.cfg.objects, "motion": dataclasses.asdict(self.cfg.motion)}
                  if self.uses_motion else {})  # detector-only adds no key: older caches stay valid
        return precision | motion | {
            "tracks_version": TRACKS_VERSION,
            "detector_sha256": self.detector_sha256,
            "conf": self.cfg.conf,
            "imgsz": self.cfg.imgsz if self.cfg.imgsz else "auto",
            "classes": list(self.cfg.classes) if self.cfg.classes else None,
            "frame_stride": self.cfg.frame_stride,
            "tracker": TRACKER,
        }

    def tag(self, digest: str) -> str:
        name = {"detector": "", "motion": "motion", "both": "+motion"}[self.cfg.objects]
        return f"{self.detector_path.stem if self.detector_path else ''}{name}-{digest}"

    def on_worker(self) -> None:
        self.device = resolve_device(self.cfg.device)
        if self.half and self.device.type != "cuda":
            raise UserError("tracks: the driver chose fp16 detection but this worker has no GPU; give every worker a "
                            "GPU or run the driver without one")

    def prepare(self) -> None:
        if self.class_names:
            return
        if self.uses_detector and self.model is None:
            assert self.detector_path is not None
            with _keep_torch_threads():
                self.model = load_detector(self.detector_path)
            self.class_names = {int(k): str(v) for k, v in self.model.names.items()}
        if self.uses_motion:
            self.class_names[len(self.class_names)] = MOVING_CLASS_NAME
        log.info("tracks: objects from %s (%s), conf %.2f, imgsz %s, every %d frame(s)",
                 {"detector": self.detector_path and self.detector_path.name, "motion": "motion proposals",
                  "both": f"{self.detector_path and self.detector_path.name} + motion proposals"}[self.cfg.objects],
                 ", ".join(self.class_names.values()), self.cfg.conf, self.cfg.imgsz or "auto", self.cfg.frame_stride)

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

    def detect(self, frames_rgb: list[np.ndarray], imgsz: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Detections of several frames in one detector call: per frame ``(n, 6)`` x1 y1 x2 y2 conf class and class
        probabilities ``(n, classes)``."""
        bgr = [np.ascontiguousarray(frame[..., ::-1]) for frame in frames_rgb]
        # fp32 is ultralytics' default: `half` is passed only when set (newer versions warn on it every call)
        with _keep_torch_threads():
            results = self.model.predict(bgr, predictor=probability_predictor(), conf=self.cfg.conf, imgsz=imgsz,
                                         classes=list(self.cfg.classes) if self.cfg.classes else None,
                                         device=str(self.device), verbose=False,
                                         **({"half": True} if self.half else {}))
        return [(result.boxes.cpu().numpy().data.reshape(-1, 6), result.class_probs) for result in results]

    def batch_frames(self) -> int:
        """Frames per detector call: ``TrackConfig.batch``, else 16 on a GPU and 1 on the CPU (where a batch is
        no faster per frame and a live stream waits for it)."""
        if self.cfg.batch is not None:
            return self.cfg.batch
        return 16 if self.uses_detector and self.device.type == "cuda" else 1

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        started = time.perf_counter()
        reader = open_video(video.path, self.cfg.decoder, fps=video.frame_rate)
        info = reader.info
        tracker = OnlineTracker(self, batch=self.batch_frames())  # a fresh tracker and background per video
        tracker.imgsz = self.cfg.imgsz or auto_imgsz(info.width, info.height)
        lengths: dict[int, int] = {}
        table, sidecar = self.outputs(video, folder)

        def write(tracked: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
            for frame_index, _, rows in tracked:
                for track_id, x1, y1, x2, y2, score, cls, *prob in rows:
                    lengths[int(track_id)] = lengths.get(int(track_id), 0) + 1
                    out.writerow([frame_index, int(track_id), f"{x1:.2f}", f"{y1:.2f}", f"{x2:.2f}", f"{y2:.2f}",
                                  f"{score:.4f}", int(cls)] + [f"{p:.4f}" for p in prob])

        try:
            with atomic_path(table) as tmp, open(tmp, "w", newline="") as handle:
                out = csv.writer(handle)
                out.writerow(["frame", "track_id", "x1", "y1", "x2", "y2", "confidence", "class"]
                             + [f"prob_{k}" for k in range(len(self.class_names))])
                frame_index = 0
                bar = tqdm(total=info.frames, desc=video.path.name[-30:], unit="frame", leave=False,
                           disable=not self.cfg.progress, dynamic_ncols=True)
                chunks = prefetched(lambda: reader.iter_chunks(32), depth=2, name="vad-decode")
                with bar, contextlib.closing(chunks):
                    for chunk in chunks:
                        for frame in chunk:
                            write(tracker.push(frame_index, frame))
                            frame_index += 1
                        bar.update(len(chunk))
                    write(tracker.flush())
        finally:
            reader.close()
        meta = {
            "schema": TRACKS_SCHEMA, "video": str(video.path), "clip": video.clip_name, "video_id": video.video_id,
            "video_sha256": video.sha256, "objects": self.cfg.objects,
            "detector": str(self.detector_path) if self.detector_path else None, "detector_sha256": self.detector_sha256,
            "class_names": self.class_names, "conf": self.cfg.conf,
            "imgsz": tracker.imgsz if self.uses_detector else None,
            "motion": dataclasses.asdict(self.cfg.motion) if self.uses_motion else None,
            "classes": list(self.cfg.classes) if self.cfg.classes else None, "frame_stride": self.cfg.frame_stride,
            "tracker": {"config": TRACKER, **dict(vars(tracker.tracker_config))},
            "frames": info.frames, "fps": info.fps, "width": info.width, "height": info.height,
            "decoder": info.decoder, "detections": tracker.detections, "tracks": len(lengths),
            "mean_track_length": float(np.mean(list(lengths.values()))) if lengths else 0.0,
            "seconds": round(time.perf_counter() - started, 3),
        }
        save_json_atomic(sidecar, meta)
        return _summary(meta)


class OnlineTracker:
    """The tracks stage's per-frame loop, for a file (:meth:`TrackStage.run`) or a live stream: frames pushed one by
    one, in order, come out tracked, each once.

    Detection runs on ``batch`` frames at a time (every ``frame_stride``-th frame; one detector call), then the
    background model and the tracker see the frames one by one in order, so a batch changes only how the detector
    is called. With motion objects the first ``warmup`` frames are held back to seed the background model with their
    per-pixel median before any frame is tracked (one decode of the video). Live use keeps ``batch`` 1: a frame then
    comes out as soon as it is tracked (after the warm-up)."""

    def __init__(self, stage: TrackStage, batch: int = 1):
        from ultralytics.trackers.byte_tracker import BYTETracker

        stage.prepare()
        self.stage = stage
        self.batch = max(1, batch)
        self.tracker_config = _tracker_config()
        self.tracker = BYTETracker(self.tracker_config)
        self.proposer = MotionProposer(stage.cfg.motion) if stage.uses_motion else None
        self.imgsz = stage.cfg.imgsz  # None: follows the first frame's size
        self.renumber: dict[int, int] = {}  # the tracker's ids -> 1..N in order of first appearance
        self.detections = 0  # objects found (detections and motion proposals) over the frames tracked so far
        self.pending: list[tuple[int, np.ndarray]] = []
        self.warming = bool(self.proposer and stage.cfg.motion.warmup)

    def push(self, index: int, frame: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Frame ``index`` in; out: ``(index, frame, rows)`` of every frame tracked now, in order; ``rows``
        ``(n, 7 + classes)``: ``track_id, x1, y1, x2, y2, confidence, class, prob_0 ...`` rounded as the tracks CSV
        stores them (2 decimals for boxes, 4 for scores)."""
        if self.imgsz is None:
            self.imgsz = auto_imgsz(frame.shape[1], frame.shape[0])
        self.pending.append((index, frame))
        if self.warming:
            if len(self.pending) < self.stage.cfg.motion.warmup:
                return []
            self._warm_up()
        stride = self.stage.cfg.frame_stride
        if sum(i % stride == 0 for i, _ in self.pending) < self.batch:
            return []
        return self._track_pending()

    def flush(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The stream ended: track what is still pending (a part batch; a stream shorter than the warm-up)."""
        if self.warming and self.pending:
            self._warm_up()
        return self._track_pending()

    def _warm_up(self) -> None:
        assert self.proposer is not None
        self.proposer.warm_up([frame for _, frame in self.pending])
        self.warming = False

    def _track_pending(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        pending, self.pending = self.pending, []
        stride = self.stage.cfg.frame_stride
        detected = [frame for index, frame in pending if index % stride == 0] if self.stage.uses_detector else []
        found = iter([found for start in range(0, len(detected), self.batch)
                      for found in self.stage.detect(detected[start : start + self.batch], self.imgsz)])
        return [self._track(index, frame, next(found, None) if index % stride == 0 else None)
                for index, frame in pending]

    def _track(self, index: int, frame: np.ndarray,
               detections: tuple[np.ndarray, np.ndarray] | None) -> tuple[int, np.ndarray, np.ndarray]:
        classes = len(self.stage.class_names)
        if index % self.stage.cfg.frame_stride:
            if self.proposer is not None:
                self.proposer.propose(frame)  # the background model learns from every frame
            return index, frame, np.zeros((0, 7 + classes))
        rows, probs = detections if detections is not None else (np.zeros((0, 6), np.float32), np.zeros((0, 0), np.float32))
        if self.proposer is not None:
            proposals, fractions = self.proposer.propose(frame)
            rows, probs = merge_detections(rows, probs, proposals, self.proposer.moving_fraction(rows[:, :4]),
                                           fractions, self.stage.cfg.motion)
        self.detections += len(rows)
        out = []
        for x1, y1, x2, y2, raw_id, score, cls, position in self.tracker.update(_Boxes()(rows, frame.shape[:2]), frame):
            track_id = self.renumber.setdefault(int(raw_id), len(self.renumber) + 1)
            prob = probs[int(position)] if len(probs) > int(position) else np.zeros(classes)
            out.append([track_id] + [round(float(v), 2) for v in (x1, y1, x2, y2)] + [round(float(score), 4),
                       int(cls)] + [round(float(p), 4) for p in prob])
        return index, frame, np.array(out, np.float64).reshape(-1, 7 + classes)


@functools.lru_cache(maxsize=1)
def _Boxes() -> type:
    """ultralytics' ``Boxes`` (the tracker's input type), imported once, after the offline environment is set."""
    from ultralytics.engine.results import Boxes

    return Boxes


@contextlib.contextmanager
def _keep_torch_threads() -> Iterator[None]:
    """ultralytics sets torch's CPU thread count for the whole process when it picks a device (to cores - 1: one
    thread on 2 cores); give the caller's count back, or every later stage in the process runs on that many."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


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
