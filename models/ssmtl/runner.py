"""``vad-pipeline score --method ssmtl``: train SSMTL on the objects of normal training videos, score every frame.

Inputs: a tracks folder (the workspace's only ``tracks/<tag>/``, ``--tracks-tag``, or ``--tracks DIR`` with
``<name>.csv`` + ``.json`` sidecars naming the video) and video labels/splits as for the weak methods. Training
uses only normal videos of the training split.

Scoring, per object: the task scores (log-odds of backward, log-odds of intermittent, middle-box L1 error,
teacher/student discrepancy; ``knn``: distance to the nearest normal training objects' appearance, ``memory.py``)
each standardised by its mean and standard deviation over the training objects (a
z-score: the paper's equal weighting, on a common scale; dividing by a high percentile instead let one
heavy-tailed task drown the others), then averaged over the enabled tasks; per frame: the maximum over its objects
(the training objects' 1st percentile where there is none: a frame without objects is as normal as the most normal
ones), then temporal Gaussian smoothing (``sigma``, 3 by default as for Ped2/Avenue). Videos of the test split are
scored (with no split, every video). Training and scoring run on ``device`` (CUDA when available);
``tests/test_objects.py`` checks that CPU and CUDA frame scores agree within 1e-3 relative where a GPU exists.
Outputs in ``<workdir>/scores/ssmtl-<hash>/``:

- ``model.pt``, ``train.json`` (config, teacher used, per-epoch task losses, normalisation ``scales``: per task
  ``mean``/``std`` and the combined score's ``floor``, device, seconds);
- per video ``<key>.npy`` ``(N,)`` float32 frame scores (sidecar ``level: "frame"``); ``<key>.extras.npz`` with
  ``task_<name>`` ``(N,)`` per-task frame scores (same pooling and smoothing); ``<key>.objects.csv``
  ``frame,track_id,x1,y1,x2,y2,score,<task>...`` per object (the pixel-level anomaly map is these boxes carrying
  their scores); ``<key>.json`` (schema ``vad-pipeline/scores/1``);
- ``summary.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from vad_pipeline.atomic import (artifact_lock, prepare_folder, save_json_atomic, save_npy_atomic, save_npz_atomic,
                                 save_torch_atomic, write_atomic)
from vad_pipeline.devices import autocast, check_precision, resolve_device
from vad_pipeline.errors import UserError
from vad_pipeline.hashing import config_hash
from vad_pipeline.schemas import SCORES_SCHEMA, object_scores_header
from vad_pipeline.versions import library_versions
from vad_pipeline.workspace import Workspace

from ..data import VideoFeatures, assign_labels
from ..score import split_videos
from ..trainer import seed_everything
from .network import VARIANTS, SSMTLNet
from .objects import ObjectConfig, VideoObjects, video_objects
from .memory import AppearanceMemory
from .tasks import TASK_CHOICES, TASKS, task_scores, to_tensor, training_loss
from .teacher import choose_teacher

log = logging.getLogger(__name__)

SSMTL_VERSION = 5  # the model, its training and scoring (2: one encoder pass per step for the (2t+1)-frame variants;
# 3: log-odds and z-scores; 4: lr_schedule and mirror options, training crops in memory; 5: the knn task)
OBJECTS_VERSION = 3  # how object windows are cut (2: cache entries named by the tracks file they come from;
# 3: windows shifted inside the video instead of repeating its first or last frame)


IN_MEMORY_BYTES = 2 << 30  # training crops up to this size are read into memory once
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class SSMTLConfig:
    """Options of ``vad-pipeline score --method ssmtl``."""

    tracks: Path | None = None
    tracks_tag: str | None = None
    labels: Path | None = None
    train_list: Path | None = None
    test_list: Path | None = None
    variant: str = "shallow-narrow"
    tasks: tuple[str, ...] = TASKS
    objects: ObjectConfig = field(default_factory=ObjectConfig)
    train_stride: int = 1  # objects of every k-th frame of the training videos
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # cosine (decays to 0 over the epochs) or constant (the paper's Adam at a fixed rate)
    # Left-right mirrored motion counts as equally normal: a random half of each training batch is mirrored and each
    # object scores the mean of its own and its mirrored window's task scores. Off by default: direction is
    # information (walking the wrong way in a one-way scene is an anomaly); on for scenes crossed both ways.
    mirror: bool = False
    seed: int = 0
    sigma: float = 3.0
    teacher_weights: Path | None = None
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    # fp32, or mixed precision: bf16 (1.5x faster epochs on a 2-core AVX-512 BF16 CPU: Ped2 58 s -> 38 s) or fp16 (CUDA)
    precision: str = "fp32"
    force: bool = False
    progress: bool = True


@dataclass
class TrackedVideo:
    name: str
    key: str
    csv: Path
    video: Path
    frames: int
    fps: float | None
    height: int
    width: int
    detector: str | None


@dataclass
class SSMTLSummary:
    folder: Path
    trained: bool
    history: list[dict[str, float]]
    video_auc: float | None


def find_tracks(workspace: Workspace, config: SSMTLConfig) -> tuple[Path, list[TrackedVideo]]:
    """The tracks folder and its videos."""
    if config.tracks:
        folder = Path(config.tracks)
        if not folder.is_dir():
            raise UserError(f"--tracks {folder}: no such folder")
    else:
        folder = workspace.configured_folder("tracks", config.tracks_tag, "--tracks-tag",
                                             "run `vad-pipeline extract VIDEOS --stages tracks` first (or pass "
                                             "--tracks DIR)")
    videos = []
    for sidecar in sorted(folder.glob("*.json")):
        if sidecar.name == "config.json":
            continue
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        table = sidecar.with_suffix(".csv")
        if "video" not in meta or not table.is_file():
            continue
        videos.append(TrackedVideo(Path(meta["video"]).stem, meta.get("video_id", sidecar.stem), table,
                                   Path(meta["video"]), int(meta["frames"]), meta.get("fps"), int(meta["height"]),
                                   int(meta["width"]), meta.get("detector")))
    if not videos:
        raise UserError(f"{folder}: holds no finished tracks; run `vad-pipeline extract --stages tracks` again")
    return folder, videos


def _batches(count: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


def _to_device(windows: np.ndarray, probs: np.ndarray, teacher: np.ndarray,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 windows ``(B, W, S, S, 3)`` travel as uint8 and become floats on ``device``."""
    return (to_tensor(torch.from_numpy(windows).to(device, non_blocking=True)),
            torch.from_numpy(probs).float().to(device), torch.from_numpy(teacher).float().to(device))


def _gather(sets: list[VideoObjects], pairs: np.ndarray,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows, class scores and teacher features of the objects ``pairs`` ``(B, 2)`` = (video, object)."""
    return _to_device(np.stack([sets[v].crops[o] for v, o in pairs]), np.stack([sets[v].probs[o] for v, o in pairs]),
                      np.stack([sets[v].teacher[o] for v, o in pairs]), device)


def object_task_scores(net: SSMTLNet, batches: Iterable[tuple[torch.Tensor, ...]], config: SSMTLConfig,
                       memory: AppearanceMemory | None = None) -> dict[str, np.ndarray]:
    """Raw per-object task scores ``(N,)`` over batches of (windows, probs, teacher[, training video index]); with
    ``mirror`` the network tasks' mean over each window and its mirror image; ``knn`` needs the ``memory`` (and a
    batch's video indices leave those training videos out of it)."""
    network_tasks = tuple(t for t in config.tasks if t in TASKS)
    out: dict[str, list[np.ndarray]] = {task: [] for task in config.tasks}
    for windows, probs, teacher, *videos in batches:
        if network_tasks:
            with autocast(windows.device, config.precision):
                views = [task_scores(net, view, probs, teacher, network_tasks, config.objects.half_window)
                         for view in ([windows, windows.flip(4)] if config.mirror else [windows])]
            for task in network_tasks:
                out[task].append(torch.stack([view[task] for view in views]).mean(0).float().cpu().numpy())
        if "knn" in config.tasks:
            if memory is None:
                raise ValueError("the knn task needs the appearance memory of the training objects")
            out["knn"].append(memory.distances(teacher, videos[0] if videos else None).cpu().numpy())
    return {task: np.concatenate(v) if v else np.zeros(0, np.float32) for task, v in out.items()}


def _video_task_scores(net: SSMTLNet, objects: VideoObjects, config: SSMTLConfig, device: torch.device,
                       memory: AppearanceMemory | None) -> dict[str, np.ndarray]:
    batches = (_to_device(np.array(objects.crops[part]), objects.probs[part], objects.teacher[part], device)
               for part in _batches(len(objects), 128))
    return object_task_scores(net, batches, config, memory)


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


def score_ssmtl(workspace: Workspace, config: SSMTLConfig) -> SSMTLSummary:
    """Train (or load) SSMTL and write frame scores for every tracked video; see the module docstring."""
    from vad_pipeline.frame_scores import smooth

    if config.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"--lr-schedule {config.lr_schedule}: choose one of {', '.join(LR_SCHEDULES)}")
    unknown = [t for t in config.tasks if t not in TASK_CHOICES]
    if unknown or not config.tasks:
        raise UserError(f"--tasks: {','.join(unknown) or 'none'} is not a task; choose from {','.join(TASK_CHOICES)}")
    if config.variant not in VARIANTS:
        raise UserError(f"--variant {config.variant}: choose one of {', '.join(VARIANTS)}")
    device = resolve_device(config.device)
    check_precision(config.precision, device)
    tracks_folder, videos = find_tracks(workspace, config)
    stand_ins = [VideoFeatures(v.name, v.key, (v.csv,), str(v.video)) for v in videos]
    labels, splits = assign_labels(stand_ins, config.labels)
    train_names, test_names = split_videos(stand_ins, splits, config)  # type: ignore[arg-type]
    train_names = {n for n in train_names if labels[n] == 0}
    if not train_names:
        raise UserError("ssmtl trains on normal videos of the training split and found none; give a labels CSV "
                        "with a split column, --train-list, or normal/ folders")
    missing = [v.video for v in videos if not v.video.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: the video of these tracks is gone; ssmtl needs it to cut object crops")

    detectors = {v.detector for v in videos if v.detector and Path(v.detector).is_file()}
    teacher = choose_teacher(config.teacher_weights, Path(sorted(detectors)[0]) if detectors else None)
    tracks_identity = {v.key: workspace.manifest.sha256_of(v.csv)[:16] for v in videos}
    objects_config = {"objects": dataclasses.asdict(config.objects), "teacher": teacher.identity}
    train_objects_config = dataclasses.replace(config.objects, frame_stride=config.train_stride)

    prepare_folder(workspace.root / "ssmtl")  # the object caches: what killed runs left half-written goes

    def objects_folder(object_config: ObjectConfig) -> Path:
        digest = config_hash({**objects_config, "objects": dataclasses.asdict(object_config), "v": OBJECTS_VERSION})
        return workspace.root / "ssmtl" / f"objects-{digest}"

    def objects_key(v: TrackedVideo) -> str:
        """Cache name of a video's objects: they are cut from its tracks, so a changed tracks file is a new entry."""
        return f"{v.key}-{tracks_identity[v.key][:10]}"

    def record_objects(v: TrackedVideo, object_config: ObjectConfig, count: int) -> None:
        folder = objects_folder(object_config)
        workspace.manifest.record_lineage(
            "ssmtl-objects", objects_key(v), folder.name, {**objects_config, "objects": dataclasses.asdict(object_config)},
            folder / f"{objects_key(v)}.crops.npy", {"tracks": tracks_identity[v.key]}, detail={"objects": count})

    by_name = {v.name: v for v in videos}
    train_sets: list[VideoObjects] = []
    for name in tqdm(sorted(train_names), desc="ssmtl objects (train)", unit="video", disable=not config.progress,
                     dynamic_ncols=True):
        v = by_name[name]
        train_sets.append(video_objects(v.video, v.csv, objects_folder(train_objects_config), objects_key(v), v.frames,
                                        v.height, v.width, train_objects_config, teacher))
        record_objects(v, train_objects_config, len(train_sets[-1]))
    total = sum(len(s) for s in train_sets)
    if total == 0:
        raise UserError(f"{tracks_folder}: the normal training videos have no tracked objects; check the detector")

    seed_everything(config.seed)
    memory = AppearanceMemory([s.teacher for s in train_sets], device) if "knn" in config.tasks else None
    if memory is not None and len(train_sets) < 2:
        raise UserError("ssmtl --tasks knn: the appearance memory needs at least two normal training videos (each "
                        "training video's objects are scored against the others)")
    classes = train_sets[0].probs.shape[1]
    net = SSMTLNet(config.variant, 3, classes, teacher.dim).to(device)
    key_config = {
        "ssmtl_version": SSMTL_VERSION, "variant": config.variant, "tasks": list(config.tasks),
        "objects": dataclasses.asdict(config.objects), "train_stride": config.train_stride,
        "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
        "lr_schedule": config.lr_schedule, "mirror": config.mirror, "seed": config.seed,
        # only the training videos' tracks shape the model: new or changed test videos never retrain it
        "teacher": teacher.identity, "train": sorted(train_names),
        "tracks": {by_name[n].key: tracks_identity[by_name[n].key] for n in sorted(train_names)},
    } | ({"precision": config.precision} if config.precision != "fp32" else {})
    digest = config_hash(key_config)
    folder = workspace.root / "scores" / f"ssmtl-{digest}"
    prepare_folder(folder)
    checkpoint = folder / "model.pt"
    # concurrent runs of the same scoring take turns: the later ones find the model and scores done
    with artifact_lock(folder, "run"):
        trained, history, scales = False, [], {}
        if checkpoint.is_file() and (folder / "train.json").is_file() and not config.force:
            try:
                net.load_state_dict(torch.load(checkpoint, map_location=device, weights_only=True))
                record = json.loads((folder / "train.json").read_text())
                history, scales = record["history"], record["scales"]
                log.info("ssmtl: already trained, loaded %s", checkpoint)
            except Exception as exc:
                log.warning("%s: corrupt cache entry (%s); retraining", checkpoint, type(exc).__name__)
                scales = {}
        if not scales:
            started = time.perf_counter()
            history = _train(net, train_sets, config, device) if set(config.tasks) & set(TASKS) else []
            net.eval()
            scales = _scales(net, train_sets, config, device, memory)
            seconds = time.perf_counter() - started
            save_torch_atomic(checkpoint, net.state_dict())
            save_json_atomic(folder / "train.json", {
                "config": key_config, "teacher": teacher.name, "history": history, "scales": scales,
                "seconds": seconds, "device": str(device), "train_objects": total,
                "objects_per_second": total * len(history) / max(seconds, 1e-9),
                "versions": library_versions()})
            trained = True
            log.info("ssmtl: trained on %d objects of %d normal videos in %.1f s on %s (teacher: %s)", total,
                     len(train_sets), seconds, device, teacher.name)
        manifest = workspace.manifest
        manifest.record_lineage("model", "ssmtl", digest, key_config, checkpoint,
                                {"objects": {n: objects_key(by_name[n]) for n in sorted(train_names)},
                                 "teacher": teacher.identity})
        net.eval()

        test_maxima: dict[str, float] = {}
        scored = [v for v in videos if v.name in test_names]
        for v in tqdm(scored, desc="ssmtl score", unit="video", disable=not config.progress, dynamic_ncols=True):
            target = folder / f"{v.key}.npy"
            split = "train" if v.name in train_names else "test"
            # loaded even when the scores are cached: a corrupt entry is reported and cut again, not left behind
            objects = video_objects(v.video, v.csv, objects_folder(config.objects), objects_key(v), v.frames,
                                    v.height, v.width, config.objects, teacher)
            frame_scores = (None if trained or config.force
                            else cached_scores(target, folder / f"{v.key}.json", labels[v.name], split,
                                               objects_key(v)))
            if frame_scores is None:
                normalised = standardise(_video_task_scores(net, objects, config, device, memory), scales)
                object_scores = (np.mean([normalised[t] for t in config.tasks], axis=0) if len(objects)
                                 else np.zeros(0))
                frame_scores = smooth(frame_pooling(objects.frames, object_scores, v.frames, scales["floor"]),
                                      config.sigma).astype(np.float32)
                extras = {f"task_{t}": smooth(frame_pooling(objects.frames, normalised[t], v.frames,
                                                            scales[t]["floor"]), config.sigma).astype(np.float32)
                          for t in config.tasks}
                save_npy_atomic(target, frame_scores)
                save_npz_atomic(folder / f"{v.key}.extras.npz", extras)
                _save_objects(folder / f"{v.key}.objects.csv", objects, object_scores, normalised, config.tasks)
                record_objects(v, config.objects, len(objects))
                save_json_atomic(folder / f"{v.key}.json", {
                    "schema": SCORES_SCHEMA, "video": v.name, "key": v.key, "label": labels[v.name], "split": split,
                    "method": "ssmtl", "level": "frame", "T": int(v.frames), "frames": int(v.frames), "fps": v.fps,
                    "width": v.width, "height": v.height, "source_video": str(v.video), "tracks": str(v.csv),
                    "objects": int(len(objects)), "objects_key": objects_key(v), "extras": sorted(extras),
                    "tasks": list(config.tasks),
                })
                manifest.record_lineage("scores", v.key, digest, key_config, target,
                                        {"model": digest, "objects": objects_key(v)},
                                        detail={"T": int(v.frames), "method": "ssmtl"})
            if v.name in test_names and v.name not in train_names:
                test_maxima[v.name] = float(frame_scores.max()) if frame_scores.size else 0.0

    video_auc = None
    truth = [labels[n] for n in test_maxima]
    if len(set(truth)) == 2:
        from sklearn.metrics import roc_auc_score

        video_auc = float(roc_auc_score(truth, list(test_maxima.values())))
    save_json_atomic(folder / "summary.json", {"method": "ssmtl", "config_hash": digest,
                                               "test_videos": len(test_maxima), "video_auc": video_auc})
    log.info("ssmtl: frame scores of %d videos in %s", len(scored), folder)
    return SSMTLSummary(folder, trained, history, video_auc)


def _train(net: SSMTLNet, sets: list[VideoObjects], config: SSMTLConfig,
           device: torch.device) -> list[dict[str, float]]:
    """Adam on the joint loss; with ``lr_schedule="cosine"`` the rate decays to 0 along a half cosine over all steps
    (the kept weights are then not one step of a full-rate walk); ``mirror`` mirrors a random half of each batch
    left-right; ``precision`` bf16 / fp16 runs the steps under autocast."""
    if sum(s.crops.nbytes for s in sets) <= IN_MEMORY_BYTES:  # random batches from RAM, not from the memory map
        sets = [dataclasses.replace(s, crops=np.asarray(s.crops).copy()) for s in sets]
    pairs = np.array([(v, o) for v, s in enumerate(sets) for o in range(len(s))], dtype=np.int64)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    steps_total = config.epochs * len(_batches(len(pairs), config.batch_size))
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps_total, 1))
                 if config.lr_schedule == "cosine" else None)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")  # fp16 gradients underflow
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    history = []
    net.train()
    bar = tqdm(range(config.epochs), desc="ssmtl train", unit="epoch", disable=not config.progress, dynamic_ncols=True)
    for epoch in bar:
        order = rng.permutation(len(pairs))
        sums: dict[str, float] = {}
        steps = 0
        for part in _batches(len(order), config.batch_size):
            chosen = np.sort(order[part])  # sorted reads are friendlier to the memory-mapped crops
            windows, probs, teacher = _gather(sets, pairs[chosen], device)
            if config.mirror:
                mirrored = (torch.rand(len(chosen), generator=generator) < 0.5).to(device)
                windows = torch.where(mirrored.view(-1, 1, 1, 1, 1), windows.flip(4), windows)
            with autocast(device, config.precision):
                loss, parts = training_loss(net, windows, probs, teacher, config.tasks, config.objects.half_window,
                                            config.objects.max_step, generator)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            for name, value in {"loss": float(loss.detach()), **parts}.items():
                sums[name] = sums.get(name, 0.0) + value
            steps += 1
        history.append({name: value / steps for name, value in sums.items()} | {"epoch": epoch})
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
        log.debug("ssmtl epoch %d: %s", epoch, history[-1])
    return history


def _scales(net: SSMTLNet, sets: list[VideoObjects], config: SSMTLConfig, device: torch.device,
            memory: AppearanceMemory | None) -> dict[str, Any]:
    """Per task the mean and standard deviation of its raw score over (up to 4096 of) the training objects (``knn``:
    each against the other training videos), and the 1st percentile (``floor``) of each standardised task and of
    their mean: the score of a frame without objects."""
    rng = np.random.default_rng(config.seed)
    pairs = np.array([(v, o) for v, s in enumerate(sets) for o in range(len(s))], dtype=np.int64)
    pairs = pairs[np.sort(rng.choice(len(pairs), size=min(len(pairs), 4096), replace=False))]
    batches = (_gather(sets, pairs[part], device) + (torch.from_numpy(pairs[part, 0]).to(device),)
               for part in _batches(len(pairs), 128))
    raw = object_task_scores(net, batches, config, memory)
    scales: dict[str, Any] = {t: {"mean": float(np.mean(v)), "std": max(float(np.std(v)), 1e-6)} for t, v in raw.items()}
    normalised = standardise(raw, scales)
    for t, values in normalised.items():
        scales[t]["floor"] = float(np.percentile(values, 1))
    scales["floor"] = float(np.percentile(np.mean([normalised[t] for t in config.tasks], axis=0), 1))
    return scales


def _save_objects(path: Path, objects: VideoObjects, scores: np.ndarray, per_task: dict[str, np.ndarray],
                  tasks: tuple[str, ...]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(object_scores_header(tasks))
    for i in range(len(objects)):
        writer.writerow([int(objects.frames[i]), int(objects.tracks[i])]
                        + [f"{v:.2f}" for v in objects.boxes[i]] + [f"{scores[i]:.5f}"]
                        + [f"{per_task[t][i]:.5f}" for t in tasks])
    write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))


def cached_scores(target: Path, sidecar: Path, label: int, split: str, objects: str) -> np.ndarray | None:
    """A video's cached scores ``(T,)``, its sidecar's label and split kept in step with the current labels (they
    may change without changing the scores: e.g. a corrected labels file); None when there are none, when they were
    computed from other objects than ``objects`` (the video's tracks changed: the model's key holds only the
    training videos' tracks), or when the entry is corrupt (a truncated array, a broken sidecar, the two
    disagreeing: said once, then computed again)."""
    if not (target.is_file() and sidecar.is_file()):
        return None
    try:
        scores = np.load(target, allow_pickle=False)
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta.get("schema") != SCORES_SCHEMA or int(meta["T"]) != len(scores):
            raise ValueError("the sidecar does not match the scores")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: corrupt cache entry (%s); computing it again", target, exc)
        return None
    if meta.get("objects_key") != objects:
        log.info("%s: its tracks changed; scoring it again", target)
        return None
    if meta.get("label") != label or meta.get("split") != split:
        meta.update(label=label, split=split)
        save_json_atomic(sidecar, meta)
    return scores
