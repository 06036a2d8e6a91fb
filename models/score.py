"""``vad-pipeline train`` and ``vad-pipeline score``: train a weakly supervised method on snippet features into a
model bundle (cached), then apply it.

``train`` writes ``<workdir>/models/<method>-<key>.pt`` (see :mod:`.bundle`); its key covers only what shapes the
model (method, options, schedule, seed, the feature spec, the training videos' feature hashes and labels, the
calibration videos and budget), so adding videos to score never retrains. The alarm threshold is calibrated on
normal videos held out from training (``holdout``: a fraction of the normal training videos, or the ``val`` split of
the labels file) at a false-alarm budget (``far``: the fraction of normal frames above it).

``score`` (benchmarks) trains the bundle if needed, then runs the ``scores`` stage (:mod:`.apply`) on every video
(train and test split), writing into ``<workdir>/scores/<method>-<hash>/`` besides the per-video artifacts:

- ``labels.json``: per video key ``label`` and ``split`` (``train``, ``test``, ``train+test``);
- ``train.json``: the bundle's metadata (``config`` = the training key's content, ``history``, ``seconds``,
  ``train_videos``, ``bundle``, ``threshold``, ``calibration``, ``versions``);
- ``summary.json``: video-level ROC-AUC of the test split (max snippet score), when both classes are present.

Training bags: every (video, crop) of the training split, resampled to ``segments`` (32) mean-pooled segments,
as the public code trains on crops. Scoring: every snippet of every video, crops averaged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad_pipeline.core.devices import resolve_device, with_resolved_precision
from vad_pipeline.core.frame_scores import false_alarm_rate, snippet_to_frames
from vad_pipeline.core.schemas import LABELS_FILE
from vad_pipeline.core.stage import Executor, RunSummary, run_stage
from vad_pipeline.core.versions import library_versions
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError, check_choice
from vad_pipeline.io.atomic import save_json_atomic
from vad_pipeline.io.naming import read_list_file

from .apply import SCORING_VERSION, ScoreStage, feature_refs, score_features
from .base import TrainSchedule, WeakMethod
from .bundle import ModelBundle, TrainedModel, cached_training, false_alarm_threshold
from .config import CROP_POOLS, ScoreConfig, TrainConfig
from .data import VideoFeatures, assign_labels, scan_feature_dir, scan_workspace_features, segment_bag
from .registry import get_method
from .trainer import seed_everything, train_method

log = logging.getLogger(__name__)


@dataclass
class ScoreSummary:
    folder: Path
    scored: int
    cached: int
    trained: bool
    video_auc: float | None
    history: list[dict[str, float]]
    bundle: Path | None = None
    failed: list[tuple[Path, str]] = field(default_factory=list)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(key: str, value: str, annotation: Any) -> Any:
    """A ``--set key=value`` string as its option's type (``float``, ``int | None``, ``bool``, ``str``...), resolved
    with :func:`typing.get_type_hints`; one clear line when it does not parse."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    if type(None) in options and value.lower() == "none":
        return None
    target = next((t for t in options if t is not type(None)), str)
    if target is bool:
        if value.lower() not in _TRUE + _FALSE:
            raise UserError(f"--set {key}={value}: expected one of {', '.join(_TRUE + _FALSE)}")
        return value.lower() in _TRUE
    if target in (int, float):
        try:
            return target(value)
        except ValueError:
            raise UserError(f"--set {key}={value}: expected {'an integer' if target is int else 'a number'}") from None
    return value


def build_options(method_cls: type[WeakMethod], config: TrainConfig) -> Any:
    """The method's options dataclass with ``--set`` overrides (xel passes unknown keys to its base)."""
    options_cls = method_cls.Options
    names = typing.get_type_hints(options_cls)
    own: dict[str, Any] = {}
    for_base: dict[str, Any] = {}
    for key, value in config.options.items():
        if key in names:
            own[key] = _coerce(key, value, names[key])
        elif method_cls.name == "xel":
            for_base[key] = value
        else:
            valid = ", ".join(sorted(names))
            raise UserError(f"--set {key}: {method_cls.name} has no option {key!r}; its options are {valid}")
    if method_cls.name == "xel":
        base_cls = get_method(config.base)
        base_fields = typing.get_type_hints(base_cls.Options)
        unknown = [k for k in for_base if k not in base_fields]
        if unknown:
            raise UserError(f"--set {unknown[0]}: neither xel nor {config.base} has that option")
        own["base"] = config.base
        own.setdefault("update", config.xel_update)
        own["base_options"] = {k: _coerce(k, v, base_fields[k]) for k, v in for_base.items()}
    try:
        return options_cls(**own)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{method_cls.name} options: {exc}") from None


def choose_features(workspace: Workspace, config: TrainConfig) -> tuple[list[VideoFeatures], dict[str, Any]]:
    """The videos' features and their spec (:mod:`.bundle`'s ``features``)."""
    if config.features:
        return scan_feature_dir(config.features), {"source": "files", "dir": str(Path(config.features).resolve())}
    folder = workspace.configured_folder("features", config.features_tag, "--features-tag",
                                         "run `vad-pipeline extract VIDEOS...` first or pass --features DIR")
    videos = scan_workspace_features(folder)
    if not videos:
        raise UserError(f"{folder}: holds no finished features; run `vad-pipeline extract` again")
    stage_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))["config"]
    return videos, {"source": "workspace", "config": stage_config, "tag": folder.name}


def split_videos(videos: list[VideoFeatures], splits: dict[str, str], config: TrainConfig) -> tuple[set[str], set[str]]:
    names = {v.name for v in videos}
    if config.train_list or config.test_list:
        train = read_list_file(config.train_list) & names if config.train_list else set()
        test = read_list_file(config.test_list) & names if config.test_list else names - train
        if config.train_list and not train:
            raise UserError(f"{config.train_list}: none of its videos have features here")
        return train or names - test, test
    if splits:
        train = {n for n in names if splits.get(n) == "train"}
        test = {n for n in names if splits.get(n) == "test"}
        if train:
            return train, test | (names - train - test - {n for n in names if splits.get(n) == "val"})
    log.warning("score: no train/test split given (labels split column, --train-list/--test-list): "
                "training and testing on all %d videos", len(names))
    return names, names


def calibration_videos(train_names: set[str], labels: dict[str, int], splits: dict[str, str],
                       fraction: float) -> list[str]:
    """The normal videos the alarm threshold is calibrated on, held out from training: the labels file's ``val``
    split, else ``fraction`` of the normal training videos (chosen by a hash of their names, so adding videos
    keeps earlier choices; at least one, and at least one normal video left to train on). Empty: none held out."""
    explicit = sorted(n for n, s in splits.items() if s == "val" and labels.get(n) == 0)
    if explicit:
        return explicit
    if fraction <= 0:
        return []
    if fraction >= 1:
        raise UserError(f"--holdout {fraction}: a fraction of the normal training videos, below 1")
    normals = sorted((n for n in train_names if labels[n] == 0), key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    count = min(len(normals) - 1, max(1, round(fraction * len(normals))))
    if count < 1:
        log.warning("train: too few normal training videos to hold any out; the alarm threshold is calibrated on "
                    "the training videos (it will be optimistic)")
        return []
    return sorted(normals[:count])


def _file_keys(workspace: Workspace, videos: list[VideoFeatures]) -> dict[str, list[str]]:
    """Per video key, the first 16 hex digits of each of its feature files' SHA-256 (cached by the manifest)."""
    return {v.key: [workspace.manifest.sha256_of(p)[:16] for p in v.files] for v in videos}


def train_bundle(workspace: Workspace, config: TrainConfig, videos: list[VideoFeatures], labels: dict[str, int],
                 splits: dict[str, str], train_names: set[str], spec: dict[str, Any]) -> TrainedModel:
    """Train (or load the cached) bundle of ``config.method`` on ``train_names`` and calibrate its alarm threshold;
    see the module docstring."""
    method_cls = get_method(config.method)
    options = build_options(method_cls, config)
    config = with_resolved_precision(config)
    by_name = {v.name: v for v in videos}
    held_out = calibration_videos(train_names, labels, splits, config.holdout)
    fit_names = sorted(set(train_names) - set(held_out))
    if not any(labels[n] == 1 for n in fit_names) or not any(labels[n] == 0 for n in fit_names):
        raise UserError(f"train: the training split needs normal and anomalous videos; it has "
                        f"{sum(labels[n] == 0 for n in fit_names)} normal, {sum(labels[n] == 1 for n in fit_names)} "
                        "anomalous (check the labels file's label and split columns)")
    keys = _file_keys(workspace, [by_name[n] for n in sorted({*fit_names, *held_out})])

    feature_dim = int(by_name[fit_names[0]].load().shape[-1])
    seed_everything(config.seed)  # the initial weights depend on the seed only
    method = method_cls(feature_dim, options)
    schedule: TrainSchedule = method.default_schedule()
    overrides = {"epochs": config.epochs, "lr": config.lr, "batch_size": config.batch_size}
    schedule = dataclasses.replace(schedule, **{k: v for k, v in overrides.items() if v is not None})
    key_config = {
        "scoring_version": SCORING_VERSION,
        "method": method_cls.name,
        "options": dataclasses.asdict(method.options),
        "schedule": dataclasses.asdict(schedule),
        "seed": config.seed,
        "features": {k: v for k, v in spec.items() if k in ("source", "config")},
        "train": [[n, labels[n], keys[by_name[n].key]] for n in fit_names],
        "calibration": {"far": config.far, "videos": [[n, keys[by_name[n].key]] for n in held_out]},
    } | ({"precision": config.precision} if config.precision != "fp32" else {}) \
      | ({"crop_pool": config.crop_pool} if config.crop_pool != "mean" else {})
    model = cached_training(
        workspace, method_cls.name, key_config,
        lambda key: _train(method, schedule, config, key, key_config, spec, by_name, labels, fit_names, held_out),
        {"features": {n: keys[by_name[n].key] for n in fit_names},
         "calibration": {n: keys[by_name[n].key] for n in held_out}}, config.force, config.out)
    if model.trained:
        log.info("train: %s trained in %.1f s -> %s", method_cls.name, model.bundle.seconds, model.path)
    return model


def _train(method: WeakMethod, schedule: TrainSchedule, config: TrainConfig, key: str, key_config: dict[str, Any],
           spec: dict[str, Any], by_name: dict[str, VideoFeatures], labels: dict[str, int], fit_names: list[str],
           held_out: list[str]) -> ModelBundle:
    """Train ``method`` on ``fit_names`` and calibrate its threshold on ``held_out`` (or the training normals)."""
    bags, bag_labels = _training_bags([by_name[n] for n in fit_names], labels, schedule.segments)
    log.info("train: %s on %d bags (%d videos x crops, %d segments, D=%d) for %d epochs", method.name, len(bags),
             len(fit_names), schedule.segments, method.feature_dim, schedule.epochs)
    started = time.perf_counter()
    device = resolve_device(config.device)
    result = train_method(method, bags, bag_labels, schedule, seed=config.seed, progress=config.progress,
                          device=device, precision=config.precision)
    seconds = time.perf_counter() - started
    method.eval()
    calibrate_on = held_out or [n for n in fit_names if labels[n] == 0]
    normal_frames = [snippet_to_frames(score_features(method, by_name[n].load(), config.crop_pool)[0])
                     for n in calibrate_on]
    threshold = false_alarm_threshold(normal_frames, config.far)
    calibration = {"far": config.far, "on": "held-out" if held_out else "training", "videos": calibrate_on,
                   "frames": int(sum(len(f) for f in normal_frames)),
                   "measured_far": false_alarm_rate(normal_frames, threshold)}
    log.info("train: alarm threshold %.4f (false-alarm budget %.3g of normal frames, calibrated on %d %s video(s))",
             threshold, config.far, len(calibrate_on), calibration["on"])
    if calibration["frames"] * config.far < 10:  # fewer than 10 frames above the threshold: a noisy quantile
        # said as a warning where the threshold was asked for (held-out videos), as a note for benchmark scoring
        (log.warning if held_out else log.info)("train: the alarm threshold rests on %d normal frames, too few for a false-alarm budget of %.3g "
                    "(about %d needed); hold out more normal videos (--holdout, or a val split in the labels)",
                    calibration["frames"], config.far, int(10 / config.far))
    return ModelBundle(
        key=key, method=method.name, options=key_config["options"], schedule=key_config["schedule"], seed=config.seed,
        feature_dim=method.feature_dim, features=dict(spec) | {"crop_pool": config.crop_pool}, threshold=threshold,
        calibration=calibration,
        training={"videos": {n: labels[n] for n in fit_names}, "normal": sum(labels[n] == 0 for n in fit_names),
                  "anomalous": sum(labels[n] == 1 for n in fit_names),
                  "features": {row[0]: row[2] for row in key_config["train"]}, "device": str(device)},
        history=result.epochs, seconds=seconds, versions=library_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        state_dict={k: v.detach().clone() for k, v in method.state_dict().items()},
    )


def prepare_training(workspace: Workspace, config: TrainConfig) -> tuple[list[VideoFeatures], dict[str, int],
                                                                          dict[str, str], set[str], set[str],
                                                                          dict[str, Any]]:
    """The features, labels, splits, training and test names and the feature spec ``config`` selects."""
    check_choice("--crop-pool", config.crop_pool, CROP_POOLS)
    videos, spec = choose_features(workspace, config)
    labels, splits = assign_labels(videos, config.labels, allow_unlabeled=True)
    videos = [v for v in videos if v.name in labels]
    train_names, test_names = split_videos(videos, splits, config)
    return videos, labels, splits, train_names, test_names, spec


def train_model(workspace: Workspace, config: TrainConfig) -> TrainedModel:
    """``vad-pipeline train``: the bundle of ``config`` (trained unless cached)."""
    videos, labels, splits, train_names, _, spec = prepare_training(workspace, config)
    return train_bundle(workspace, config, videos, labels, splits, train_names, spec)


def score_videos(workspace: Workspace, config: ScoreConfig, executor: Executor | None = None) -> ScoreSummary:
    """Train (or load) the method's bundle, then score every video through the ``scores`` stage; see the module
    docstring. ``executor``: where the per-video scoring runs (default: this process)."""
    config = with_resolved_precision(config)
    videos, labels, splits, train_names, test_names, spec = prepare_training(workspace, config)
    model = train_bundle(workspace, config, videos, labels, splits, train_names, spec)
    keys = _file_keys(workspace, videos)
    stage = ScoreStage(model.bundle, {v.key: v for v in videos}, keys, config.device)
    run: RunSummary = run_stage(workspace, stage, feature_refs(videos, keys), force=config.force,
                                progress=config.progress, executor=executor)
    folder = run.folder
    assert folder is not None
    bundle = model.bundle
    video_auc, scored = write_score_run(folder, model, [(v.key, v.name) for v in videos], labels, train_names,
                                        test_names, _key_config_of(bundle),
                                        {"train_videos": sorted(bundle.training["videos"])})
    if video_auc is not None:
        log.info("score: %s video-level ROC-AUC on %d test videos: %.4f", bundle.method, scored, video_auc)
    log.info("score: %d scored, %d cached, %d failed -> %s", len(run.done), len(run.cached), len(run.failed), folder)
    return ScoreSummary(folder, len(run.done), len(run.cached), model.trained, video_auc, bundle.history,
                        model.path, run.failed)


def write_score_run(folder: Path, model: TrainedModel, videos: list[tuple[str, str]], labels: dict[str, int],
                    train_names: set[str], test_names: set[str], readable_config: dict[str, Any],
                    train_extra: dict[str, Any], auc_names: set[str] | None = None) -> tuple[float | None, int]:
    """The sidecars of a score run, one writer for every kind, written after its scores (``videos``: key, name):

    - ``labels.json``: per video key ``video``, ``label``, ``split`` (``train``, ``test``, ``train+test`` when it
      is in both, else ``val``);
    - ``train.json``: the bundle's ``readable_config`` (``config``: what reports show), ``history``, ``seconds``, ``bundle`` (path),
      ``threshold``, ``calibration``, ``versions``, and the kind's ``train_extra``;
    - ``summary.json``: ``method``, ``config_hash``, ``test_videos``, ``video_auc`` (each of the ``auc_names``,
      default the test videos, scored by its highest score).

    Returns the video AUC (None without both classes) and the number of test videos it covers."""
    bundle = model.bundle
    entries = {}
    for key, name in videos:
        split = "train" if name in train_names else "test" if name in test_names else "val"
        if name in train_names and name in test_names:
            split = "train+test"
        entries[key] = {"video": name, "label": labels[name], "split": split}
    save_json_atomic(folder / LABELS_FILE, entries)
    save_json_atomic(folder / "train.json", {
        "config": readable_config, "history": bundle.history, "seconds": bundle.seconds,
        "bundle": str(model.path), "threshold": bundle.threshold, "calibration": bundle.calibration,
        "versions": bundle.versions} | train_extra)
    maxima: dict[str, float] = {}
    for key, name in videos:
        target = folder / f"{key}.npy"
        if name in (test_names if auc_names is None else auc_names) and target.is_file():
            values = np.load(target, allow_pickle=False)
            maxima[name] = float(values.max()) if values.size else 0.0
    video_auc = video_level_auc(maxima, labels)
    save_json_atomic(folder / "summary.json", {"method": bundle.method, "config_hash": bundle.key,
                                               "test_videos": len(maxima), "video_auc": video_auc})
    return video_auc, len(maxima)


def _key_config_of(bundle: ModelBundle) -> dict[str, Any]:
    """The readable part of a bundle's training key (what reports show as its configuration)."""
    return {"method": bundle.method, "options": bundle.options, "schedule": bundle.schedule, "seed": bundle.seed,
            "features": bundle.features, "far": bundle.calibration.get("far")}


def _training_bags(videos: list[VideoFeatures], labels: dict[str, int], segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    bags, bag_labels = [], []
    for video in videos:
        features = video.load()  # (T, crops, D)
        for crop in range(features.shape[1]):
            bags.append(segment_bag(features[:, crop], segments))
            bag_labels.append(labels[video.name])
    return torch.from_numpy(np.stack(bags)), torch.tensor(bag_labels)


def video_level_auc(test_scores: dict[str, float], labels: dict[str, int]) -> float | None:
    """Video-level ROC-AUC of the test videos' maximum scores ``test_scores`` (name -> max); None with one class."""
    truth = [labels[n] for n in test_scores]
    if len(set(truth)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, [test_scores[n] for n in test_scores]))
