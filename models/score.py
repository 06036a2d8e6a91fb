"""``vad-pipeline score``: train a weakly supervised method on snippet features (cached checkpoint) and write
per-video snippet scores.

Outputs in ``<workdir>/scores/<method>-<config hash>/`` (the hash covers the method, its options and schedule, the
seed, the features' identity and the training split):

- ``model.pt`` (state dict) and ``train.json`` (config, per-epoch losses, training videos, seconds);
- per video ``<key>.npy``: float32 ``(T,)`` snippet scores in [0, 1] (10-crop features: the crops' mean);
  ``<key>.extras.npz`` with the method's extra ``(T,)`` arrays (``attention``, ``tcam``) when it has them;
  ``<key>.json`` sidecar (schema ``vad-pipeline/scores/1``: ``video``, ``key``, ``label``, ``split``, ``method``,
  ``T``, ``crops``, ``features``, ``extras``, ``source``).
- ``summary.json``: video-level ROC-AUC of the test split (max snippet score), when both classes are present.

Training bags: every (video, crop) of the training split, resampled to ``segments`` (32) mean-pooled segments,
as the public code trains on crops. Scoring: every snippet of every video, crops averaged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vad_pipeline.atomic import (artifact_lock, prepare_folder, save_json_atomic, save_npy_atomic, save_npz_atomic,
                                 save_torch_atomic)
from vad_pipeline.errors import UserError
from vad_pipeline.hashing import config_hash
from vad_pipeline.schemas import SCORES_SCHEMA
from vad_pipeline.versions import library_versions
from vad_pipeline.workspace import Workspace

from .base import TrainSchedule, WeakMethod
from .data import VideoFeatures, assign_labels, read_list_file, scan_feature_dir, scan_workspace_features, segment_bag
from .registry import get_method
from .trainer import seed_everything, train_method

log = logging.getLogger(__name__)

SCORING_VERSION = 1


@dataclass(frozen=True)
class ScoreConfig:
    """Options of ``vad-pipeline score``."""

    method: str = "mil"
    base: str = "mil"  # the method xel is plugged into
    features: Path | None = None  # a folder of public-layout features instead of the workspace's
    features_tag: str | None = None  # which workspace features/<tag>/ folder (default: the newest real one)
    labels: Path | None = None
    train_list: Path | None = None
    test_list: Path | None = None
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    options: dict[str, str] = field(default_factory=dict)  # --set key=value method options
    xel_update: str = "epoch"
    force: bool = False
    progress: bool = True


@dataclass
class ScoreSummary:
    folder: Path
    scored: int
    cached: int
    trained: bool
    video_auc: float | None
    history: list[dict[str, float]]


def _coerce(value: str, annotation: Any) -> Any:
    """Parse a ``--set`` value by its option's annotation (``float``, ``int | None``, ``bool``, ``str``...)."""
    kind = str(annotation)
    if kind.startswith("bool"):
        return value.lower() in ("1", "true", "yes", "on")
    if "float" in kind:
        return float(value)
    if "int" in kind:
        return int(value)
    return value


def build_options(method_cls: type[WeakMethod], config: ScoreConfig) -> Any:
    """The method's options dataclass with ``--set`` overrides (xel passes unknown keys to its base)."""
    options_cls = method_cls.Options
    names = {f.name: f for f in dataclasses.fields(options_cls)}
    own: dict[str, Any] = {}
    for_base: dict[str, Any] = {}
    for key, value in config.options.items():
        if key in names:
            own[key] = _coerce(value, names[key].type)
        elif method_cls.name == "xel":
            for_base[key] = value
        else:
            valid = ", ".join(sorted(names))
            raise UserError(f"--set {key}: {method_cls.name} has no option {key!r}; its options are {valid}")
    if method_cls.name == "xel":
        base_cls = get_method(config.base)
        base_fields = {f.name: f for f in dataclasses.fields(base_cls.Options)}
        unknown = [k for k in for_base if k not in base_fields]
        if unknown:
            raise UserError(f"--set {unknown[0]}: neither xel nor {config.base} has that option")
        own["base"] = config.base
        own.setdefault("update", config.xel_update)
        own["base_options"] = {k: _coerce(v, base_fields[k].type) for k, v in for_base.items()}
    try:
        return options_cls(**own)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{method_cls.name} options: {exc}") from None


def choose_features(workspace: Workspace, config: ScoreConfig) -> tuple[list[VideoFeatures], dict[str, Any]]:
    """The videos' features and an identity for the cache key."""
    if config.features:
        videos = scan_feature_dir(config.features)
        identity = {"features_dir": str(Path(config.features).resolve()),
                    "files": {v.name: [workspace.manifest.sha256_of(p)[:16] for p in v.files] for v in videos}}
        return videos, identity
    root = workspace.root / "features"
    folders = sorted((p for p in root.glob("*") if (p / "config.json").is_file()), key=lambda p: p.stat().st_mtime)
    if config.features_tag:
        folders = [p for p in folders if p.name == config.features_tag]
        if not folders:
            raise UserError(f"--features-tag {config.features_tag}: no such folder in {root}")
    if not folders:
        raise UserError(f"{root}: no features yet; run `vad-pipeline extract VIDEOS...` first or pass --features DIR")
    real = [p for p in folders if "-random-" not in p.name]
    folder = (real or folders)[-1]
    if len(folders) > 1 and not config.features_tag:
        log.info("score: using features/%s (pick another with --features-tag)", folder.name)
    videos = scan_workspace_features(folder)
    if not videos:
        raise UserError(f"{folder}: holds no finished features; run `vad-pipeline extract` again")
    return videos, {"features_tag": folder.name}


def split_videos(videos: list[VideoFeatures], splits: dict[str, str], config: ScoreConfig) -> tuple[set[str], set[str]]:
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
            return train, test | (names - train - test)
    log.warning("score: no train/test split given (labels split column, --train-list/--test-list): "
                "training and testing on all %d videos", len(names))
    return names, names


def score_videos(workspace: Workspace, config: ScoreConfig) -> ScoreSummary:
    """Train (or load) the method, then write scores for every video; see the module docstring."""
    method_cls = get_method(config.method)
    options = build_options(method_cls, config)
    videos, features_identity = choose_features(workspace, config)
    labels, splits = assign_labels(videos, config.labels)
    train_names, test_names = split_videos(videos, splits, config)
    by_name = {v.name: v for v in videos}

    first = videos[0].load()
    feature_dim = int(first.shape[-1])
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
        "features": features_identity,
        "train": sorted((n, labels[n]) for n in train_names),
    }
    digest = config_hash(key_config)
    folder = workspace.root / "scores" / f"{method_cls.name}-{digest}"
    prepare_folder(folder)
    checkpoint = folder / "model.pt"

    # concurrent runs of the same scoring take turns: the later ones find the model and scores done
    with artifact_lock(folder, "run"):
        trained = False
        history: list[dict[str, float]] = []
        if checkpoint.is_file() and not config.force:
            try:
                method.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
                history = json.loads((folder / "train.json").read_text())["history"]
            except Exception as exc:
                log.warning("%s: corrupt cache entry (%s); retraining", checkpoint, type(exc).__name__)
                checkpoint.unlink()
            else:
                method.eval()
                log.info("score: %s already trained, loaded %s", method_cls.name, checkpoint)
        if not checkpoint.is_file() or config.force:
            bags, bag_labels = _training_bags([by_name[n] for n in sorted(train_names)], labels, schedule.segments)
            log.info("score: training %s on %d bags (%d videos x crops, %d segments, D=%d) for %d epochs",
                     method_cls.name, len(bags), len(train_names), schedule.segments, feature_dim, schedule.epochs)
            started = time.perf_counter()
            result = train_method(method, bags, bag_labels, schedule, seed=config.seed, progress=config.progress)
            seconds = time.perf_counter() - started
            history = result.epochs
            save_torch_atomic(checkpoint, method.state_dict())
            save_json_atomic(folder / "train.json", {"config": key_config, "history": history, "seconds": seconds,
                                                     "train_videos": sorted(train_names),
                                                     "versions": library_versions()})
            trained = True
        manifest = workspace.manifest
        features_keys = {v.name: [manifest.sha256_of(p)[:16] for p in v.files] for v in videos}
        manifest.record_lineage("model", method_cls.name, digest, key_config, checkpoint,
                                {"features": {n: features_keys[n] for n in sorted(train_names)}})

        scored = cached = 0
        test_scores: dict[str, float] = {}
        method.eval()
        for video in tqdm(sorted(videos, key=lambda v: v.name), desc=f"score {method_cls.name}", unit="video",
                          disable=not config.progress, dynamic_ncols=True):
            target = folder / f"{video.key}.npy"
            sidecar = folder / f"{video.key}.json"
            split = "train" if video.name in train_names else "test"
            if video.name in train_names and video.name in test_names:
                split = "train+test"
            scores = (None if config.force or trained
                      else cached_scores(target, sidecar, labels[video.name], split))
            if scores is not None:
                cached += 1
            else:
                scores, extras, crops = _score_video(method, video)
                save_npy_atomic(target, scores)
                if extras:
                    save_npz_atomic(folder / f"{video.key}.extras.npz", extras)
                save_json_atomic(sidecar, {
                    "schema": SCORES_SCHEMA, "video": video.name, "key": video.key, "label": labels[video.name],
                    "split": split, "method": method_cls.name, "T": int(len(scores)), "crops": crops,
                    "features": [str(p) for p in video.files], "extras": sorted(extras), "source": video.source,
                })
                manifest.record_lineage("scores", video.key, digest, key_config, target,
                                        {"model": digest, "features": features_keys[video.name]},
                                        detail={"T": int(len(scores)), "method": method_cls.name})
                scored += 1
            if video.name in test_names:
                test_scores[video.name] = float(np.max(scores))

    video_auc = _video_auc(test_scores, labels)
    save_json_atomic(folder / "summary.json", {"method": method_cls.name, "config_hash": digest,
                                               "test_videos": len(test_scores), "video_auc": video_auc})
    if video_auc is not None:
        log.info("score: %s video-level ROC-AUC on %d test videos: %.4f", method_cls.name, len(test_scores),
                 video_auc)
    log.info("score: %d scored, %d cached -> %s", scored, cached, folder)
    return ScoreSummary(folder, scored, cached, trained, video_auc, history)


def cached_scores(target: Path, sidecar: Path, label: int, split: str) -> np.ndarray | None:
    """A video's cached scores ``(T,)``, its sidecar's label and split kept in step with the current labels (they
    may change without changing the scores: e.g. a corrected labels file); None when there are none, or when the
    entry is corrupt (a truncated array, a broken sidecar, the two disagreeing: said once, then computed again)."""
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
    if meta.get("label") != label or meta.get("split") != split:
        meta.update(label=label, split=split)
        save_json_atomic(sidecar, meta)
    return scores


def _training_bags(videos: list[VideoFeatures], labels: dict[str, int], segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    bags, bag_labels = [], []
    for video in videos:
        features = video.load()  # (T, crops, D)
        for crop in range(features.shape[1]):
            bags.append(segment_bag(features[:, crop], segments))
            bag_labels.append(labels[video.name])
    return torch.from_numpy(np.stack(bags)), torch.tensor(bag_labels)


@torch.no_grad()
def _score_video(method: WeakMethod, video: VideoFeatures) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Scores ``(T,)`` and extras, averaged over crops."""
    features = torch.from_numpy(np.ascontiguousarray(video.load().transpose(1, 0, 2)))  # (crops, T, D)
    per_crop = [method.outputs(features[c : c + 1]) for c in range(features.shape[0])]
    merged = {k: torch.stack([o[k] for o in per_crop]).mean(dim=0).numpy().astype(np.float32) for k in per_crop[0]}
    scores = merged.pop("scores")
    return scores, merged, int(features.shape[0])


def _video_auc(test_scores: dict[str, float], labels: dict[str, int]) -> float | None:
    truth = [labels[n] for n in test_scores]
    if len(set(truth)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, [test_scores[n] for n in test_scores]))
