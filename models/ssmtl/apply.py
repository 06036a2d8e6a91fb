"""Applying a trained SSMTL bundle: per object task scores, per frame scores, and the per-video ``scores`` stage.

A video's objects (the ``objects`` stage's entry, :mod:`.objects`) go through the network's task heads (and the
appearance memory for ``knn``); each task's raw score is standardised by the training objects' mean and standard
deviation (the bundle's ``scales``), the tasks are averaged per object, and each frame takes the maximum over its
objects (the training objects' 1st percentile, ``floor``, where it has none). With the frame attribute ``motion``
among the tasks, that frame score is blended with the frame's motion (its frame-difference energy standardised by
the training frames'): ``(1 - w) * objects + w * motion``, ``w`` = ``motion_weight``. Then it is smoothed in time
(``sigma``).

The ``scores`` stage writes, per video, into ``<workdir>/scores/ssmtl-<hash>/`` (the hash covers the bundle's key
and :data:`SCORING_VERSION`):

- ``<key>.npy``: float32 ``(N,)`` frame scores (sidecar ``level: "frame"``);
- ``<key>.extras.npz``: ``task_<name>`` ``(N,)`` per-task frame scores (same pooling and smoothing);
- ``<key>.objects.csv``: one row per object (header ``schemas.object_scores_header``): the pixel-level anomaly map
  is these boxes carrying their scores;
- ``<key>.json`` (schema ``vad-pipeline/scores/1``, written last): ``video``, ``key``, ``method``, ``model``,
  ``level``, ``T`` = ``frames``, ``fps``, ``width``, ``height``, ``source_video``, ``tracks``, ``objects`` (count),
  ``objects_key`` (the objects entry scored: video key and tracks hash), ``extras``, ``tasks``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np
import torch

from vad_pipeline.core.devices import autocast, resolve_device, runnable_precision
from vad_pipeline.core.frame_scores import smooth
from vad_pipeline.core.schemas import SCORES_SCHEMA, object_scores_header
from vad_pipeline.core.workspace import VideoRef
from vad_pipeline.detectors.flow import speed_and_place
from vad_pipeline.errors import CacheError
from vad_pipeline.io.atomic import save_json_atomic, save_npy_atomic, save_npz_atomic, write_atomic

from ..apply import BundleScoreStage, read_score_entry
from .config import MEMORY_TASKS, TASKS
from .memory import ObjectMemory
from .network import SSMTLNet
from .objects import ObjectConfig, TrackedVideo, VideoObjects, load_objects
from .tasks import object_tasks, task_scores, to_tensor

SCORING_VERSION = 1  # bump when a change alters the scores of the same bundle on the same objects
# a bundle's state_dict prefix of each memory task's memory
MEMORY_STATE = {"knn": "memory", "vel": "velocity_memory", "speed": "speed_memory"}


class ScoringSettings(Protocol):
    """What object scoring reads of a configuration (``SSMTLOptions`` and ``SSMTLConfig`` both have it)."""

    tasks: tuple[str, ...]
    mirror: bool
    precision: str
    objects: ObjectConfig


@dataclass(frozen=True)
class SSMTLOptions:
    """What shapes an SSMTL network and its scores: a bundle's ``options``."""

    variant: str
    tasks: tuple[str, ...]
    objects: ObjectConfig  # how the scored objects are cut (frame_stride 1)
    sigma: float
    mirror: bool
    precision: str
    classes: int  # the detector's class scores the distillation head predicts
    teacher_dim: int
    motion_weight: float = 0.0  # the frame attribute's share of each frame's score (with "motion" among the tasks)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"tasks": list(self.tasks)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "SSMTLOptions":
        return cls(**{**values, "tasks": tuple(values["tasks"]), "objects": ObjectConfig(**values["objects"])})


def build_network(options: SSMTLOptions, state_dict: dict[str, torch.Tensor] | None = None) -> SSMTLNet:
    """The network of ``options``; with a bundle's ``state_dict`` (keys ``net.*``), its trained weights, in eval
    mode."""
    net = SSMTLNet(options.variant, 3, options.classes, options.teacher_dim)
    if state_dict is not None:
        net.load_state_dict({k[4:]: v for k, v in state_dict.items() if k.startswith("net.")})
        net.eval()
    return net


def batches_of(count: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


def to_device(windows: np.ndarray, probs: np.ndarray, teacher: np.ndarray,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 windows ``(B, W, S, S, 3)`` travel as uint8 and become floats on ``device``."""
    return (to_tensor(torch.from_numpy(windows).to(device, non_blocking=True)),
            torch.from_numpy(probs).float().to(device), torch.from_numpy(teacher).float().to(device))


def object_task_scores(net: SSMTLNet, batches: Iterable[tuple[torch.Tensor, ...]],
                       settings: ScoringSettings) -> dict[str, np.ndarray]:
    """Raw per-object scores ``(N,)`` of the network tasks among ``settings.tasks`` over batches of (windows, probs,
    teacher); with ``mirror`` the mean over each window and its mirror image."""
    network_tasks = tuple(t for t in settings.tasks if t in TASKS)
    out: dict[str, list[np.ndarray]] = {task: [] for task in network_tasks}
    if not network_tasks:
        return {}
    for windows, probs, teacher in batches:
        with autocast(windows.device, settings.precision):
            views = [task_scores(net, view, probs, teacher, network_tasks, settings.objects.half_window)
                     for view in ([windows, windows.flip(4)] if settings.mirror else [windows])]
        for task in network_tasks:
            out[task].append(torch.stack([view[task] for view in views]).mean(0).float().cpu().numpy())
    return {task: np.concatenate(v) if v else np.zeros(0, np.float32) for task, v in out.items()}


def memory_fields(objects: VideoObjects) -> dict[str, np.ndarray]:
    """What the memory tasks compare of a video's objects (``MEMORY_TASKS``): ``teacher`` ``(N, F)`` appearance
    features and ``velocity`` ``(N, 3)`` speed and place (``detectors.flow.speed_and_place``)."""
    return {"teacher": objects.teacher, "velocity": speed_and_place(objects.velocity, objects.boxes, objects.shape[1])}


def memory_scores(memories: dict[str, ObjectMemory], fields: dict[str, np.ndarray],
                  training_videos: np.ndarray | None = None, batch: int = 512) -> dict[str, np.ndarray]:
    """Raw per-object scores ``(N,)`` of the memory tasks (``knn``, ``vel``, ``speed``): each task's distance of
    the objects' field (``memory_fields``) to the nearest normal training objects (``speed``: the excess);
    ``training_videos`` ``(N,)`` leaves each object's own training video out of the memory."""
    out = {}
    for task, memory in memories.items():
        values = fields[MEMORY_TASKS[task][0]]
        parts = []
        for part in batches_of(len(values), batch):
            exclude = (torch.from_numpy(np.asarray(training_videos[part])).to(memory.bank.device)
                       if training_videos is not None else None)
            query = torch.from_numpy(np.asarray(values[part], np.float32))
            parts.append(memory.distances(query, exclude).cpu().numpy())
        out[task] = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return out


def build_memories(tasks: tuple[str, ...], fields: list[dict[str, np.ndarray]],
                   device: torch.device) -> dict[str, ObjectMemory]:
    """The memory of each memory task in ``tasks`` from the training videos' ``memory_fields`` (one per video)."""
    return {task: ObjectMemory.of_videos([f[field] for f in fields], device, k, metric)
            for task, (field, metric, k) in MEMORY_TASKS.items() if task in tasks}


def memories_of_bundle(tasks: tuple[str, ...], state_dict: dict[str, torch.Tensor],
                       device: torch.device) -> dict[str, ObjectMemory]:
    """The memories a bundle's ``state_dict`` holds (``<prefix>.bank`` ..., ``MEMORY_STATE``)."""
    return {task: ObjectMemory.from_state(state_dict, MEMORY_STATE[task], device, metric, k)
            for task, (_, metric, k) in MEMORY_TASKS.items() if task in tasks}


def memories_state(memories: dict[str, ObjectMemory]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` entries of ``memories`` (as ``memories_of_bundle`` reads them)."""
    state: dict[str, torch.Tensor] = {}
    for task, memory in memories.items():
        state |= memory.state(MEMORY_STATE[task])
    return state


def standardise(raw: dict[str, np.ndarray], scales: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each task's raw scores as z-scores against the training objects (``scales[task]`` holds mean and std)."""
    return {t: (v - scales[t]["mean"]) / scales[t]["std"] for t, v in raw.items()}


def frame_pooling(frames: np.ndarray, values: np.ndarray, count: int, empty: float = 0.0) -> np.ndarray:
    """``(count,)``: per frame the maximum of the values of its objects, ``empty`` where it has none."""
    pooled = np.full(count, -np.inf)
    inside = frames < count
    np.maximum.at(pooled, frames[inside], values[inside])
    pooled[np.isneginf(pooled)] = empty
    return pooled


@dataclass
class VideoScores:
    """One video's SSMTL output: ``frames`` ``(N,)`` frame scores, ``tasks`` per-task ``(N,)`` frame scores,
    ``objects`` ``(M,)`` per-object scores and ``per_task`` per-task ``(M,)`` object scores (standardised)."""

    frames: np.ndarray
    tasks: dict[str, np.ndarray]
    objects: np.ndarray
    per_task: dict[str, np.ndarray]


@dataclass
class SSMTLModel:
    """A trained SSMTL network with what scoring needs: options, normalisation ``scales`` and the memories of the
    memory tasks (``knn``, ``vel``, ``speed``)."""

    net: SSMTLNet
    options: SSMTLOptions
    scales: dict[str, Any]
    memories: dict[str, ObjectMemory]
    device: torch.device

    @classmethod
    def from_bundle(cls, bundle: Any, device: torch.device) -> "SSMTLModel":
        """The bundle's model on ``device``; a bf16 / fp16 bundle scores in fp32 where ``device`` does not compute
        that precision natively (emulated bf16 is 14-37x slower; the scores agree within 2 %, a test checks it)."""
        options = SSMTLOptions.from_json(bundle.options)
        options = dataclasses.replace(options, precision=runnable_precision(options.precision, device))
        net = build_network(options, bundle.state_dict).to(device)
        return cls(net, options, bundle.scales, memories_of_bundle(options.tasks, bundle.state_dict, device), device)

    def raw_scores(self, objects: VideoObjects, training_video: int | None = None) -> dict[str, np.ndarray]:
        """Per task the raw ``(M,)`` scores of a video's objects (``training_video``: its index in the memories,
        left out of them)."""
        def batches() -> Iterable[tuple[torch.Tensor, ...]]:
            for part in batches_of(len(objects), 128):
                yield to_device(np.array(objects.crops[part]), objects.probs[part], objects.teacher[part], self.device)

        own = None if training_video is None else np.full(len(objects), training_video)
        return object_task_scores(self.net, batches(), self.options) | memory_scores(self.memories,
                                                                                      memory_fields(objects), own)

    def object_scores(self, objects: VideoObjects,
                      training_video: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per object ``(M,)`` the combined score (the mean of the standardised object tasks) and each task's."""
        per_task = standardise(self.raw_scores(objects, training_video), self.scales)
        combined = (np.mean([per_task[t] for t in object_tasks(self.options.tasks)], axis=0) if len(objects)
                    else np.zeros(0))
        return combined, per_task

    def motion_scores(self, motion: np.ndarray) -> np.ndarray:
        """The ``motion`` attribute of frames ``(N,)`` (their frame-difference energy) standardised by the training
        frames' (``scales["motion"]``)."""
        return (np.asarray(motion, np.float64) - self.scales["motion"]["mean"]) / self.scales["motion"]["std"]

    def blend(self, pooled: np.ndarray, motion: np.ndarray) -> np.ndarray:
        """Frame scores ``(N,)`` from the pooled object scores ``(N,)`` and the frames' motion energies ``(N,)``:
        unchanged without the ``motion`` task, else ``(1 - w) * pooled + w * motion score``."""
        if "motion" not in self.options.tasks:
            return pooled
        weight = self.options.motion_weight
        return (1.0 - weight) * pooled + weight * self.motion_scores(motion)

    def video_scores(self, objects: VideoObjects, frames: int, training_video: int | None = None) -> VideoScores:
        """The frame and object scores of one video of ``frames`` frames (see the module docstring)."""
        tasks, sigma = self.options.tasks, self.options.sigma
        object_scores, per_task = self.object_scores(objects, training_video)
        motion = _frames_of(objects.motion, frames)
        pooled = frame_pooling(objects.frames, object_scores, frames, self.scales["floor"])
        frame_scores = smooth(self.blend(pooled, motion), sigma)
        task_frames = {t: smooth(frame_pooling(objects.frames, per_task[t], frames, self.scales[t]["floor"]),
                                 sigma).astype(np.float32) for t in object_tasks(tasks)}
        if "motion" in tasks:
            task_frames["motion"] = smooth(self.motion_scores(motion), sigma).astype(np.float32)
        return VideoScores(frame_scores.astype(np.float32), task_frames, object_scores, per_task)


def _frames_of(values: np.ndarray, frames: int) -> np.ndarray:
    """``values`` cut or padded (with its last value) to ``frames`` entries (the objects entry counts what was
    decoded, the tracks what the header said: they may differ by a frame)."""
    values = np.asarray(values, np.float64)[:frames]
    if len(values) < frames:
        values = np.concatenate([values, np.full(frames - len(values), values[-1] if len(values) else 0.0)])
    return values


def write_object_scores(path: Path, objects: VideoObjects, scores: VideoScores, tasks: tuple[str, ...]) -> None:
    """``<key>.objects.csv``: one row per object, its box, combined score and per-task scores."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(object_scores_header(tasks))
    for i in range(len(objects)):
        writer.writerow([int(objects.frames[i]), int(objects.tracks[i])]
                        + [f"{v:.2f}" for v in objects.boxes[i]] + [f"{scores.objects[i]:.5f}"]
                        + [f"{scores.per_task[t][i]:.5f}" for t in tasks])
    write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))


class SSMTLScoreStage(BundleScoreStage):
    """Per video: the bundle's SSMTL model on the video's objects (``objects_folder``: the ``objects`` stage's
    folder; ``videos``: video key -> its tracks). Inputs are ``TrackedVideo.ref(key)``: named by the video key,
    keyed by the objects entry they read."""

    def __init__(self, bundle: Any, objects_folder: Path, videos: list[TrackedVideo], device: str = "auto"):
        self.bundle = bundle
        self.objects_folder = objects_folder
        self.videos = {v.key: v for v in videos}
        self.device_name = device
        self.device = resolve_device(device)
        self.model: SSMTLModel | None = None

    def config(self) -> dict[str, Any]:
        return {"ssmtl_scoring_version": SCORING_VERSION, "model": self.bundle.key}

    def on_worker(self) -> None:
        self.device, self.model = resolve_device(self.device_name), None

    def prepare(self) -> None:
        if self.model is None:
            self.model = SSMTLModel.from_bundle(self.bundle, self.device)

    def inputs(self, video: VideoRef) -> dict[str, Any]:
        return {"model": self.bundle.key, "objects": self.videos[video.video_id].objects_key}

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        self.prepare()
        assert self.model is not None
        v = self.videos[video.video_id]
        objects = load_objects(self.objects_folder, v.objects_key)
        scores = self.model.video_scores(objects, v.frames)
        tasks = self.model.options.tasks
        target, sidecar = self.outputs(video, folder)
        save_npy_atomic(target, scores.frames)
        extras = {f"task_{t}": scores.tasks[t] for t in tasks}
        save_npz_atomic(folder / f"{v.key}.extras.npz", extras)
        write_object_scores(folder / f"{v.key}.objects.csv", objects, scores, object_tasks(tasks))
        save_json_atomic(sidecar, {
            "schema": SCORES_SCHEMA, "video": v.name, "key": v.key, "method": "ssmtl", "model": self.bundle.key,
            "level": "frame", "T": int(v.frames), "frames": int(v.frames), "fps": v.fps, "width": v.width,
            "height": v.height, "source_video": str(v.video), "tracks": str(v.csv), "objects": int(len(objects)),
            "objects_key": v.objects_key, "extras": sorted(extras), "tasks": list(tasks),
        })
        return {"T": int(v.frames), "method": "ssmtl", "objects": int(len(objects))}

    def verify(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        scores, meta = read_score_entry(folder, video.video_id)
        target = folder / f"{video.video_id}.npy"
        if not (folder / f"{video.video_id}.objects.csv").is_file():
            raise CacheError(f"{target}: corrupt cache entry (its objects table is missing)")
        expected = self.videos[video.video_id].objects_key
        if meta.get("objects_key") != expected:
            raise CacheError(f"{target}: scored from other tracks ({meta.get('objects_key')}, now {expected})")
        return {"T": int(len(scores)), "method": "ssmtl", "objects": meta.get("objects")}
