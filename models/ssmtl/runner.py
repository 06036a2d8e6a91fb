"""``vad-pipeline train --method ssmtl`` and ``vad-pipeline score --method ssmtl``: SSMTL trained on the objects
of normal training videos into a model bundle, then applied per video.

Inputs: a tracks folder (the workspace's only ``tracks/<tag>/``, ``--tracks-tag``, or ``--tracks DIR`` with
``<name>.csv`` + ``.json`` sidecars naming the video) and video labels / splits as for the weak methods. Training
uses only normal videos of the training split; ``holdout`` of them (or the labels' ``val`` split) are held out to
calibrate the alarm threshold at the false-alarm budget ``far`` (``score``: none held out, calibrated on the
training videos, each scored against the others' appearance memory).

Steps, each a stage of the one contract: the ``objects`` stage cuts every video's objects (:mod:`.objects`), the
model is trained once per key into ``<workdir>/models/ssmtl-<key>.pt`` (the key holds only what shapes it: options,
schedule, seed, teacher, the training and calibration videos' tracks hashes; new or changed test videos never
retrain it), and the ``scores`` stage (:mod:`.apply`) scores each video. Scoring, per object: the task scores
(log-odds of backward, log-odds of intermittent, middle-box L1 error, teacher/student discrepancy; ``knn``:
distance to the nearest normal training objects' appearance, ``memory.py``) each standardised by its mean and
standard deviation over the training objects (a z-score: the paper's equal weighting, on a common scale; dividing by
a high percentile instead let one heavy-tailed task drown the others), then averaged over the enabled tasks; per
frame: the maximum over its objects (the training objects' 1st percentile where there is none: a frame without
objects is as normal as the most normal ones), then temporal Gaussian smoothing (``sigma``, 3 by default as for
Ped2/Avenue). Videos of the test split are scored (with no split, every video). Training and scoring run on
``device`` (CUDA when available); ``tests/test_objects.py`` checks that CPU and CUDA frame scores agree within 1e-3
relative where a GPU exists.

The bundle (:mod:`..bundle`, ``method: "ssmtl"``): ``options`` (:class:`.apply.SSMTLOptions`), ``schedule``,
``features`` = ``{"source": "tracks", "tracks": <the tracks stage's config>, "teacher": <identity>, "teacher_name"}``
(``"source": "files"`` for a ``--tracks DIR`` made elsewhere), ``scales`` (per task ``mean`` / ``std`` / ``floor``
and the combined score's ``floor``), weights ``net.*`` and, for ``knn``, ``memory.bank`` ``(N, F)`` /
``memory.videos`` ``(N,)``; for ``vel`` and ``speed`` the same under ``velocity_memory.`` / ``speed_memory.``
(``(N, 3)`` speed and place; ``.center`` / ``.scale`` the standardisation of ``vel``).

``score`` writes into ``<workdir>/scores/ssmtl-<hash>/``, besides the per-video artifacts of :mod:`.apply`:
``labels.json`` (per video key ``video``, ``label``, ``split``), ``train.json`` (``config`` = the model key's
content, ``teacher``, ``history`` per-epoch task losses, ``scales``, ``seconds``, ``device``, ``train_objects``,
``objects_per_second``, ``bundle``, ``threshold``, ``calibration``, ``versions``) and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vad_pipeline.core.devices import autocast, resolve_device, with_resolved_precision
from vad_pipeline.core.frame_scores import false_alarm_rate
from vad_pipeline.core.schemas import clip_name
from vad_pipeline.core.stage import Executor, run_stage
from vad_pipeline.core.versions import library_versions
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError, check_choice

from ..bundle import ModelBundle, TrainedModel, cached_training, false_alarm_threshold
from ..data import VideoFeatures, assign_labels
from ..score import calibration_videos, split_videos, write_score_run
from ..trainer import seed_everything
from .apply import (SSMTLModel, SSMTLOptions, SSMTLScoreStage, batches_of, build_memories, build_network,
                    memories_state, memory_fields, memory_scores, object_task_scores, standardise, to_device)
from .config import LR_SCHEDULES, TASK_CHOICES, TASKS, SSMTLConfig
from .memory import ObjectMemory
from .network import VARIANTS, SSMTLNet
from .objects import ObjectConfig, ObjectsStage, TrackedVideo, VideoObjects, load_objects
from .tasks import object_tasks, training_loss
from .teacher import Teacher, choose_teacher

log = logging.getLogger(__name__)

SSMTL_VERSION = 8  # the model and its training (2: one encoder pass per step for the (2t+1)-frame variants;
# 3: log-odds and z-scores; 4: lr_schedule and mirror options, training crops in memory; 5: the knn task;
# 6: model bundles with a calibrated alarm threshold; 7: memory tasks in one mechanism, the vel task; 8: motion)

IN_MEMORY_BYTES = 2 << 30  # training crops up to this size are read into memory once


@dataclass
class SSMTLSummary:
    folder: Path
    trained: bool
    history: list[dict[str, float]]
    video_auc: float | None
    bundle: Path | None = None
    failed: list[tuple[Path, str]] = field(default_factory=list)


def tracked_videos(workspace: Workspace, folder: Path, keys: set[str] | None = None) -> list[TrackedVideo]:
    """The finished tracks of ``folder`` (only ``keys`` when given), each with its file's content hash."""
    videos = []
    for sidecar in sorted(folder.glob("*.json")):
        if sidecar.name == "config.json":
            continue
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        table = sidecar.with_suffix(".csv")
        key = meta.get("video_id", sidecar.stem)
        if "video" not in meta or not table.is_file() or (keys is not None and key not in keys):
            continue
        videos.append(TrackedVideo(clip_name(meta), key, table, Path(meta["video"]), int(meta["frames"]),
                                   meta.get("fps"), int(meta["height"]), int(meta["width"]), meta.get("detector"),
                                   workspace.manifest.sha256_of(table)[:16]))
    return videos


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
    videos = tracked_videos(workspace, folder)
    if not videos:
        raise UserError(f"{folder}: holds no finished tracks; run `vad-pipeline extract --stages tracks` again")
    return folder, videos


def tracks_spec(folder: Path, teacher: Teacher) -> dict[str, Any]:
    """A bundle's ``features``: the tracks stage's config (a workspace's tracks folder) or the folder, and the
    teacher."""
    config_file = folder / "config.json"
    stage = {}
    if config_file.is_file():
        stage = json.loads(config_file.read_text(encoding="utf-8"))
    source = ({"source": "tracks", "tracks": stage["config"]} if stage.get("stage") == "tracks"
              else {"source": "files", "dir": str(folder.resolve())})
    return source | {"teacher": teacher.identity, "teacher_name": teacher.name}


def cut_objects(workspace: Workspace, config: ObjectConfig, teacher: Teacher, videos: list[TrackedVideo],
                progress: bool, required: bool) -> tuple[Path, list[tuple[Path, str]]]:
    """Run the ``objects`` stage on ``videos``: its folder and the videos that failed (``required``: a failure is
    one line that stops the run, as for training videos)."""
    summary = run_stage(workspace, ObjectsStage(config, teacher, videos), [v.ref() for v in videos],
                        progress=progress)
    log.info("objects: %d done, %d already cached, %d failed; in %s", len(summary.done), len(summary.cached),
             len(summary.failed), summary.folder)
    if summary.failed and required:
        raise UserError(summary.failed[0][1])
    assert summary.folder is not None
    return summary.folder, summary.failed


def _check(config: SSMTLConfig) -> None:
    check_choice("--lr-schedule", config.lr_schedule, LR_SCHEDULES)
    unknown = [t for t in config.tasks if t not in TASK_CHOICES]
    if unknown or not config.tasks:
        raise UserError(f"--tasks: {','.join(unknown) or 'none'} is not a task; choose from {','.join(TASK_CHOICES)}")
    check_choice("--variant", config.variant, VARIANTS)
    if not object_tasks(config.tasks):
        raise UserError(f"--tasks {','.join(config.tasks)}: name at least one task that scores objects "
                        f"({','.join(t for t in TASK_CHOICES if t not in config.tasks)})")
    if not 0.0 <= config.motion_weight < 1.0:
        raise UserError(f"--motion-weight {config.motion_weight}: must be in [0, 1)")


@dataclass
class SSMTLData:
    """What ``train`` and ``score`` read: the tracked videos, labels, splits, the teacher, the tracks folder."""

    folder: Path
    videos: list[TrackedVideo]
    labels: dict[str, int]
    splits: dict[str, str]
    train_names: set[str]
    test_names: set[str]
    teacher: Teacher


def prepare_data(workspace: Workspace, config: SSMTLConfig) -> SSMTLData:
    _check(config)
    folder, videos = find_tracks(workspace, config)
    stand_ins = [VideoFeatures(v.name, v.key, (v.csv,), str(v.video)) for v in videos]
    labels, splits = assign_labels(stand_ins, config.labels, allow_unlabeled=True)
    videos = [v for v in videos if v.name in labels]
    train_names, test_names = split_videos([s for s in stand_ins if s.name in labels], splits, config)  # type: ignore[arg-type]
    train_names = {n for n in train_names if labels[n] == 0}
    if not train_names:
        raise UserError("ssmtl trains on normal videos of the training split and found none; give a labels CSV "
                        "with a split column, --train-list, or normal/ folders")
    missing = [v.video for v in videos if not v.video.exists()]
    if missing:
        raise UserError(f"{missing[0]}: the video of these tracks is gone; ssmtl needs it to cut object crops")
    detectors = {v.detector for v in videos if v.detector and Path(v.detector).is_file()}
    teacher = choose_teacher(config.teacher_weights, Path(sorted(detectors)[0]) if detectors else None)
    return SSMTLData(folder, videos, labels, splits, train_names, test_names, teacher)


def train_ssmtl(workspace: Workspace, config: SSMTLConfig, data: SSMTLData | None = None) -> TrainedModel:
    """``vad-pipeline train --method ssmtl``: the bundle of ``config`` (trained unless cached); see the module
    docstring."""
    config = with_resolved_precision(config)
    data = data or prepare_data(workspace, config)
    by_name = {v.name: v for v in data.videos}
    held_out = calibration_videos(data.train_names, data.labels, data.splits, config.holdout)
    fit_names = sorted(data.train_names - set(held_out))
    train_objects = dataclasses.replace(config.objects, frame_stride=config.train_stride)
    fit_folder, _ = cut_objects(workspace, train_objects, data.teacher, [by_name[n] for n in fit_names],
                                config.progress, required=True)
    held_folder = None
    if held_out:
        held_folder, _ = cut_objects(workspace, config.objects, data.teacher, [by_name[n] for n in held_out],
                                     config.progress, required=True)
    key_config = {
        "ssmtl_version": SSMTL_VERSION, "variant": config.variant, "tasks": list(config.tasks),
        "objects": dataclasses.asdict(config.objects), "train_stride": config.train_stride,
        "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
        "lr_schedule": config.lr_schedule, "mirror": config.mirror, "seed": config.seed, "sigma": config.sigma,
        **({"motion_weight": config.motion_weight} if "motion" in config.tasks else {}),
        # only the training and calibration videos' tracks shape the model: new or changed test videos never retrain
        "teacher": data.teacher.identity, "train": fit_names,
        "tracks": {by_name[n].key: by_name[n].tracks_sha for n in fit_names},
        "calibration": {"far": config.far, "videos": [[n, by_name[n].tracks_sha] for n in held_out]},
    } | ({"precision": config.precision} if config.precision != "fp32" else {})

    def train(key: str) -> ModelBundle:
        fit_sets = [load_objects(fit_folder, by_name[n].objects_key) for n in fit_names]
        held_sets = ([(load_objects(held_folder, by_name[n].objects_key), by_name[n].frames) for n in held_out]
                     if held_folder else [])
        return _train_bundle(config, key, key_config, data, fit_names, fit_sets, held_out, held_sets,
                             [by_name[n] for n in fit_names])

    model = cached_training(
        workspace, "ssmtl", key_config, train,
        {"objects": {n: by_name[n].objects_key for n in fit_names},
         "calibration": {n: by_name[n].objects_key for n in held_out}, "teacher": data.teacher.identity},
        config.force, config.out)
    if model.trained:
        log.info("ssmtl: trained on %d objects of %d normal videos in %.1f s on %s (teacher: %s) -> %s",
                 model.bundle.training["objects"], len(fit_names), model.bundle.seconds,
                 model.bundle.training["device"], data.teacher.name, model.path)
    return model


def _train_bundle(config: SSMTLConfig, key: str, key_config: dict[str, Any], data: SSMTLData, fit_names: list[str],
                  fit_sets: list[VideoObjects], held_out: list[str], held_sets: list[tuple[VideoObjects, int]],
                  fit_videos: list[TrackedVideo]) -> ModelBundle:
    """Train the network on ``fit_sets``, measure its score scales, calibrate the alarm threshold; the bundle."""
    device = resolve_device(config.device)
    total = sum(len(s) for s in fit_sets)
    if total == 0:
        raise UserError(f"{data.folder}: the normal training videos have no tracked objects; check the detector")
    seed_everything(config.seed)
    memories = build_memories(config.tasks, [memory_fields(s) for s in fit_sets], device)
    if memories and len(fit_sets) < 2:
        raise UserError(f"ssmtl --tasks {','.join(memories)}: the object memories need at least two normal training "
                        "videos (each training video's objects are scored against the others)")
    options = SSMTLOptions(config.variant, tuple(config.tasks), config.objects, config.sigma, config.mirror,
                           config.precision, int(fit_sets[0].probs.shape[1]), data.teacher.dim,
                           config.motion_weight if "motion" in config.tasks else 0.0)
    net = build_network(options).to(device)
    started = time.perf_counter()
    history = _train(net, fit_sets, config, device) if set(config.tasks) & set(TASKS) else []
    net.eval()
    scales = _scales(net, fit_sets, config, device, memories)
    seconds = time.perf_counter() - started
    model = SSMTLModel(net, options, scales, memories, device)
    # the threshold: held-out normal videos, else the training videos (each left out of the appearance memory)
    if held_sets:
        normal_frames = [model.video_scores(objects, frames).frames for objects, frames in held_sets]
    else:
        normal_frames = [model.video_scores(objects, v.frames, training_video=i).frames
                         for i, (objects, v) in enumerate(zip(fit_sets, fit_videos))]
    threshold = false_alarm_threshold(normal_frames, config.far)
    calibration = {"far": config.far, "on": "held-out" if held_sets else "training",
                   "videos": held_out or fit_names, "frames": int(sum(len(f) for f in normal_frames)),
                   "measured_far": false_alarm_rate(normal_frames, threshold)}
    log.info("ssmtl: alarm threshold %.4f (false-alarm budget %.3g of normal frames, calibrated on %d %s video(s))",
             threshold, config.far, len(calibration["videos"]), calibration["on"])
    state = {f"net.{k}": v.detach().cpu().clone() for k, v in net.state_dict().items()} | memories_state(memories)
    return ModelBundle(
        key=key, method="ssmtl", options=options.to_json(),
        schedule={k: key_config[k] for k in ("epochs", "batch_size", "lr", "lr_schedule", "train_stride")},
        seed=config.seed, feature_dim=data.teacher.dim, features=tracks_spec(data.folder, data.teacher),
        threshold=threshold, calibration=calibration,
        training={"videos": {n: 0 for n in fit_names}, "normal": len(fit_names), "anomalous": 0,
                  "tracks": key_config["tracks"], "objects": total, "device": str(device),
                  "objects_per_second": total * len(history) / max(seconds, 1e-9)},
        history=history, seconds=seconds, versions=library_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), state_dict=state, scales=scales)


def score_ssmtl(workspace: Workspace, config: SSMTLConfig, executor: Executor | None = None) -> SSMTLSummary:
    """Train (or load) the SSMTL bundle and score every test video through the ``objects`` and ``scores`` stages;
    see the module docstring. ``executor``: where the per-video scoring runs (default: this process)."""
    config = with_resolved_precision(config)
    data = prepare_data(workspace, config)
    model = train_ssmtl(workspace, config, data)
    scored = [v for v in data.videos if v.name in data.test_names]
    objects_folder, failed = cut_objects(workspace, config.objects, data.teacher, scored, config.progress,
                                         required=False)
    failed_paths = {str(path) for path, _ in failed}
    scored = [v for v in scored if str(v.video) not in failed_paths]
    stage = SSMTLScoreStage(model.bundle, objects_folder, scored, config.device)
    run = run_stage(workspace, stage, [v.ref(v.key) for v in scored], force=config.force, progress=config.progress,
                    executor=executor)
    folder = run.folder
    assert folder is not None
    bundle = model.bundle
    # every scored video is a test video; those also trained on (train+test) stay out of the video AUC
    video_auc, _ = write_score_run(
        folder, model, [(v.key, v.name) for v in scored], data.labels, data.train_names, data.test_names,
        _key_config_of(bundle),
        {"teacher": bundle.features.get("teacher_name"), "scales": bundle.scales,
         "device": bundle.training.get("device"), "train_objects": bundle.training.get("objects"),
         "objects_per_second": bundle.training.get("objects_per_second")}, data.test_names - data.train_names)
    log.info("ssmtl: %d scored, %d cached, %d failed -> %s", len(run.done), len(run.cached),
             len(run.failed) + len(failed), folder)
    return SSMTLSummary(folder, model.trained, bundle.history, video_auc, model.path, failed + run.failed)


def _key_config_of(bundle: ModelBundle) -> dict[str, Any]:
    """The readable part of an SSMTL bundle's training key (what reports show as its configuration)."""
    options = bundle.options
    return {"method": "ssmtl", "variant": options["variant"], "tasks": options["tasks"],
            "objects": options["objects"], "sigma": options["sigma"], "mirror": options["mirror"],
            "seed": bundle.seed, **bundle.schedule, "teacher": bundle.features.get("teacher"),
            "far": bundle.calibration.get("far")} | (
        {"precision": options["precision"]} if options["precision"] != "fp32" else {})


def _gather(sets: list[VideoObjects], pairs: np.ndarray,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows, class scores and teacher features of the objects ``pairs`` ``(B, 2)`` = (video, object)."""
    return to_device(np.stack([sets[v].crops[o] for v, o in pairs]), np.stack([sets[v].probs[o] for v, o in pairs]),
                     np.stack([sets[v].teacher[o] for v, o in pairs]), device)


def _train(net: SSMTLNet, sets: list[VideoObjects], config: SSMTLConfig,
           device: torch.device) -> list[dict[str, float]]:
    """Adam on the joint loss; with ``lr_schedule="cosine"`` the rate decays to 0 along a half cosine over all steps
    (the kept weights are then not one step of a full-rate walk); ``mirror`` mirrors a random half of each batch
    left-right; ``precision`` bf16 / fp16 runs the steps under autocast."""
    if sum(s.crops.nbytes for s in sets) <= IN_MEMORY_BYTES:  # random batches from RAM, not from the memory map
        sets = [dataclasses.replace(s, crops=np.asarray(s.crops).copy()) for s in sets]
    pairs = np.array([(v, o) for v, s in enumerate(sets) for o in range(len(s))], dtype=np.int64)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    steps_total = config.epochs * len(batches_of(len(pairs), config.batch_size))
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
        for part in batches_of(len(order), config.batch_size):
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
            memories: dict[str, ObjectMemory]) -> dict[str, Any]:
    """Per task the mean and standard deviation of its raw score over (up to 4096 of) the training objects (memory
    tasks: each against the other training videos), and the 1st percentile (``floor``) of each standardised task
    and of their mean: the score of a frame without objects."""
    rng = np.random.default_rng(config.seed)
    pairs = np.array([(v, o) for v, s in enumerate(sets) for o in range(len(s))], dtype=np.int64)
    pairs = pairs[np.sort(rng.choice(len(pairs), size=min(len(pairs), 4096), replace=False))]
    batches = (_gather(sets, pairs[part], device) for part in batches_of(len(pairs), 128))
    per_video = [memory_fields(s) for s in sets]
    fields = {name: np.stack([per_video[v][name][o] for v, o in pairs]) for name in per_video[0]}
    raw = object_task_scores(net, batches, config) | memory_scores(memories, fields, pairs[:, 0])
    scales: dict[str, Any] = {t: {"mean": float(np.mean(v)), "std": max(float(np.std(v)), 1e-6)} for t, v in raw.items()}
    normalised = standardise(raw, scales)
    for t, values in normalised.items():
        scales[t]["floor"] = float(np.percentile(values, 1))
    scales["floor"] = float(np.percentile(np.mean([normalised[t] for t in object_tasks(config.tasks)], axis=0), 1))
    if "motion" in config.tasks:  # the frame attribute: every frame of the training videos
        motion = np.concatenate([s.motion for s in sets])
        scales["motion"] = {"mean": float(np.mean(motion)), "std": max(float(np.std(motion)), 1e-6)}
    return scales
