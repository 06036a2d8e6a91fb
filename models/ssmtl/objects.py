"""SSMTL's inputs: per video, every tracked object as a window of same-box crops, cached on disk.

For an object detected at frame ``i`` the crops of frames ``i - t*m .. i + t*m`` (``t`` = half window, ``m`` =
widest frame skip of the motion-irregularity task) are cut with the box of frame ``i`` (the paper's setting) and
resized to ``S x S``; the consecutive sequence is the middle ``2t + 1`` of them, intermittent ones are drawn from the
whole window. The ``objects`` stage (:class:`ObjectsStage`) writes them per video into
``<workdir>/objects/ssmtl-<hash>/`` (the hash covers the window, the crop size, the stride and the teacher; each
entry is named ``<video key>-<tracks hash>``, so changed tracks are a new entry):

- ``<key>.crops.npy``: ``(N, 2tm + 1, S, S, 3)`` uint8 RGB, memory-mapped when read;
- ``<key>.objects.npz``: ``frames`` ``(N,)``, ``tracks`` ``(N,)``, ``boxes`` ``(N, 4)`` x1 y1 x2 y2, ``probs``
  ``(N, K)`` the detector's class scores, ``teacher`` ``(N, F)`` the teacher's features of the middle crop,
  ``velocity`` ``(N, B + 1)`` the object's velocity (``detectors/flow.py``: the moving pixels' histogram over B
  direction sectors, then the box's speed, in frame heights per frame), ``shape`` (frames, height, width) of the
  video, ``motion`` ``(frames,)`` how much each whole frame moves (``detectors/motion.py``: ``frame_motion``). Written
  last: its presence marks a complete entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vad_pipeline.core.stage import Stage
from vad_pipeline.core.workspace import NamedRef, VideoRef
from vad_pipeline.detectors.crops import object_sequences
from vad_pipeline.detectors.flow import FlowConfig, object_velocities
from vad_pipeline.detectors.motion import frame_motion
from vad_pipeline.detectors.tracks import read_tracks
from vad_pipeline.errors import CacheError
from vad_pipeline.io.atomic import atomic_path, save_npz_atomic

from .config import ObjectConfig
from .teacher import Teacher



@dataclass
class VideoObjects:
    """One video's objects (see the module docstring for shapes)."""

    crops: np.ndarray
    frames: np.ndarray
    tracks: np.ndarray
    boxes: np.ndarray
    probs: np.ndarray
    teacher: np.ndarray
    velocity: np.ndarray
    shape: tuple[int, int, int]
    motion: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (frames,), the whole frame's

    def __len__(self) -> int:
        return len(self.frames)


def _load(crops_path: Path, meta_path: Path) -> VideoObjects:
    try:
        crops = np.load(crops_path, mmap_mode="r")
        with np.load(meta_path, allow_pickle=False) as meta:
            objects = VideoObjects(crops, meta["frames"], meta["tracks"], meta["boxes"], meta["probs"],
                                   meta["teacher"], meta["velocity"],
                                   tuple(int(v) for v in meta["shape"]), meta["motion"])  # type: ignore[arg-type]
    except Exception as exc:
        raise CacheError(f"{meta_path}: corrupt cache entry ({type(exc).__name__})") from None
    if len(objects.crops) != len(objects.frames):
        raise CacheError(f"{meta_path}: corrupt cache entry (crops and metadata disagree)")
    return objects


OBJECTS_VERSION = 6  # how object windows are cut (2: cache entries named by the tracks file they come from;
# 3: windows shifted inside the video instead of repeating its first or last frame; 5: velocities; 6: frame motion)


@dataclass(frozen=True)
class TrackedVideo:
    """One video's tracks as the objects stage reads them: ``key`` the video's key, ``tracks_sha`` the tracks
    file's content hash (16 hex digits)."""

    name: str
    key: str
    csv: Path
    video: Path
    frames: int
    fps: float | None
    height: int
    width: int
    detector: str | None
    tracks_sha: str = ""

    @property
    def objects_key(self) -> str:
        """The name of the video's objects entry: cut from its tracks, so changed tracks are a new entry."""
        return f"{self.key}-{self.tracks_sha[:10]}"

    def ref(self, name: str | None = None) -> NamedRef:
        """The stage input standing for this video: named ``name`` (default: the objects key), keyed by its
        tracks."""
        return NamedRef(path=self.video, sha256=self.tracks_sha, size=0, name=name or self.objects_key)


class ObjectsStage(Stage):
    """Per tracked video: cut every kept object's window of crops and the teacher's feature of its middle crop
    (see the module docstring); ``videos`` maps an objects key to its tracks."""

    name = "objects"
    describes_videos = False

    def __init__(self, config: ObjectConfig, teacher: Teacher, videos: list[TrackedVideo]):
        self.objects = config
        self.teacher = teacher
        self.videos = {v.objects_key: v for v in videos}

    def config(self) -> dict[str, Any]:
        return {"objects": dataclasses.asdict(self.objects), "teacher": self.teacher.identity, "v": OBJECTS_VERSION}

    def tag(self, digest: str) -> str:
        return f"ssmtl-{digest}"

    def inputs(self, video: VideoRef) -> dict[str, Any]:
        return {"tracks": video.sha256}

    def outputs(self, video: VideoRef, folder: Path) -> list[Path]:
        return [folder / f"{video.video_id}.crops.npy", folder / f"{video.video_id}.objects.npz"]

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        v = self.videos[video.video_id]
        crops_path, meta_path = self.outputs(video, folder)
        _cut(v.video, v.csv, crops_path, meta_path, v.frames, v.height, v.width, self.objects, self.teacher)
        return {"objects": len(load_objects(folder, video.video_id))}

    def verify(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        return {"objects": len(load_objects(folder, video.video_id))}


def load_objects(folder: Path, key: str) -> VideoObjects:
    """The objects entry ``key`` of an objects folder (crops memory-mapped); CacheError when it is unreadable."""
    return _load(folder / f"{key}.crops.npy", folder / f"{key}.objects.npz")


def _cut(video: Path, tracks_csv: Path, crops_path: Path, meta_path: Path, frames: int, height: int, width: int,
         config: ObjectConfig, teacher: Teacher, batch: int = 256) -> None:
    table = read_tracks(tracks_csv)

    smallest = config.min_box * height

    def keep(row: np.ndarray) -> bool:
        return (int(row[0]) % config.frame_stride == 0 and row[4] - row[2] >= smallest
                and row[5] - row[3] >= smallest)

    kept = [row for row in table if keep(row)]
    count = len(kept)
    classes = max(table.shape[1] - 8, 1) if table.size else 1
    probs_of = {(int(r[0]), int(r[1])): (r[8:] if r.shape[0] > 8 else np.ones(1)) for r in kept}
    half = config.window // 2
    frames_out = np.zeros(count, np.int64)
    tracks_out = np.zeros(count, np.int64)
    boxes_out = np.zeros((count, 4), np.float32)
    probs_out = np.zeros((count, classes), np.float32)
    teacher_out = np.zeros((count, teacher.dim), np.float32)
    with atomic_path(crops_path) as tmp:
        crops = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                          shape=(count, config.window, config.size, config.size, 3))
        index = 0
        pending: list[int] = []
        for sequence in object_sequences(video, tracks_csv, half_window=half, size=config.size,
                                         decoder=config.decoder, keep_row=keep):
            crops[index] = sequence.crops
            frames_out[index], tracks_out[index] = sequence.frame, sequence.track_id
            boxes_out[index] = sequence.box
            probs_out[index] = probs_of[(sequence.frame, sequence.track_id)]
            pending.append(index)
            index += 1
            if len(pending) == batch:
                teacher_out[pending] = teacher.features(crops[pending, half])
                pending = []
        if pending:
            teacher_out[pending] = teacher.features(crops[pending, half])
        if index != count:
            raise CacheError(f"{video}: {count} objects in {tracks_csv} but {index} cropped; run `extract` again")
        crops.flush()
        del crops
    velocity = object_velocities(video, frames_out, boxes_out, FlowConfig(), config.decoder)
    save_npz_atomic(meta_path, {"frames": frames_out, "tracks": tracks_out, "boxes": boxes_out, "probs": probs_out,
                                "teacher": teacher_out, "velocity": velocity,
                                "shape": np.array([frames, height, width]),
                                "motion": frame_motion(video, config.decoder)})
