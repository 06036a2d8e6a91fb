"""The ``scores`` stage: a model bundle applied to one video's snippet features -> ``(T,)`` snippet scores.

One artifact per video in ``<workdir>/scores/<method>-<hash>/`` (the hash covers the bundle's key and the scoring
version only, so the same model on the same features always lands in the same place, whoever asks: ``score``,
``predict``, a Ray worker):

- ``<key>.npy``: float32 ``(T,)`` snippet scores in [0, 1] (several crops: their mean, or their maximum when the
  bundle says ``crop_pool: max``), computed in fp32 whatever precision the model trained in;
- ``<key>.extras.npz``: the method's extra ``(T,)`` arrays (``attention``, ``tcam``), when it has them;
- ``<key>.json`` sidecar (schema ``vad-pipeline/scores/1``, written last): ``video``, ``key``, ``method``, ``model``
  (the bundle's key), ``T``, ``crops``, ``features`` (the files read), ``extras``, ``source``.

Labels and splits are not part of a score: ``vad-pipeline score`` keeps them in the folder's ``labels.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad_pipeline.core.devices import resolve_device
from vad_pipeline.core.schemas import SCORES_SCHEMA
from vad_pipeline.core.stage import Stage
from vad_pipeline.core.workspace import NamedRef, VideoRef
from vad_pipeline.errors import CacheError
from vad_pipeline.io.atomic import save_json_atomic, save_npy_atomic, save_npz_atomic

from .base import WeakMethod
from .bundle import ModelBundle
from .data import VideoFeatures

SCORING_VERSION = 3  # bump when a change alters scores of the same model, so old score caches are not reused
# (3: scores in fp32 whatever the training precision)


#: how a snippet's per-crop scores become its score: ``mean`` (the public evaluation code's) or ``max`` (an anomaly
#: small in the frame fills one of the corner crops)


@torch.no_grad()
def score_features(method: WeakMethod, features: np.ndarray,
                   crop_pool: str = "mean") -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """``(T, crops, D)`` features -> float32 ``(T,)`` scores (over crops: their mean, or their maximum with
    ``crop_pool="max"``), the method's extra ``(T,)`` arrays (averaged over crops) and the number of crops. Runs
    where ``method``'s parameters are, in fp32 whatever precision the method trained in: scoring snippet features
    costs next to nothing, and under bf16 (8-bit mantissa) the scores near 1 tie (ddl with the crops' maximum lost
    0.045 frame AUC on Ped2's weak split)."""
    device = next(method.parameters()).device
    per_crop_input = torch.from_numpy(np.ascontiguousarray(features.transpose(1, 0, 2))).to(device)  # (crops, T, D)
    per_crop = [method.outputs(per_crop_input[c : c + 1].float()) for c in range(per_crop_input.shape[0])]
    merged = {k: torch.stack([o[k].float() for o in per_crop]).mean(dim=0).cpu().numpy().astype(np.float32)
              for k in per_crop[0] if k != "scores"}
    stacked = torch.stack([o["scores"].float() for o in per_crop])
    scores = (stacked.amax(dim=0) if crop_pool == "max" else stacked.mean(dim=0)).cpu().numpy().astype(np.float32)
    return scores, merged, int(per_crop_input.shape[0])


def feature_refs(videos: list[VideoFeatures], feature_keys: dict[str, list[str]]) -> list[NamedRef]:
    """The scores stage's inputs: one reference per video's features, named by the video's key."""
    return [NamedRef(path=Path(v.source or v.files[0]), sha256="".join(feature_keys[v.key]), size=0, name=v.key)
            for v in videos]


class BundleScoreStage(Stage):
    """What every ``scores`` stage shares: a model bundle applied per video, one ``<key>.npy`` and its ``<key>.json``
    sidecar (written last) per video, in a folder named by the method and the stage's config hash."""

    name = "scores"
    describes_videos = False
    bundle: Any

    def tag(self, digest: str) -> str:
        return f"{self.bundle.method}-{digest}"

    def outputs(self, video: VideoRef, folder: Path) -> list[Path]:
        return [folder / f"{video.video_id}.npy", folder / f"{video.video_id}.json"]


class ScoreStage(BundleScoreStage):
    """Per video: the bundle's method on the video's features (``features`` maps a video key to its features,
    ``feature_keys`` to the hashes of its feature files, the artifact's upstream keys)."""

    def __init__(self, bundle: ModelBundle, features: dict[str, VideoFeatures], feature_keys: dict[str, list[str]],
                 device: str = "auto"):
        self.bundle = bundle
        self.features = features
        self.feature_keys = feature_keys
        self.device = device  # resolved where the stage runs (a Ray actor has its own devices)
        self.method: WeakMethod | None = None

    def config(self) -> dict[str, Any]:
        return {"scoring_version": SCORING_VERSION, "model": self.bundle.key}

    def prepare(self) -> None:
        if self.method is None:
            self.method = self.bundle.build().to(resolve_device(self.device))

    def inputs(self, video: VideoRef) -> dict[str, Any]:
        return {"model": self.bundle.key, "features": self.feature_keys.get(video.video_id)}

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        self.prepare()
        assert self.method is not None
        source = self.features[video.video_id]
        scores, extras, crops = score_features(self.method, source.load(),
                                               self.bundle.features.get("crop_pool", "mean"))
        target, sidecar = self.outputs(video, folder)
        save_npy_atomic(target, scores)
        if extras:
            save_npz_atomic(folder / f"{video.video_id}.extras.npz", extras)
        save_json_atomic(sidecar, {
            "schema": SCORES_SCHEMA, "video": source.name, "key": source.key, "method": self.bundle.method,
            "model": self.bundle.key, "T": int(len(scores)), "crops": crops, "features": [str(p) for p in source.files],
            "extras": sorted(extras), "source": source.source,
        })
        return {"T": int(len(scores)), "method": self.bundle.method}

    def verify(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        scores, meta = read_score_entry(folder, video.video_id)
        return {"T": int(len(scores)), "method": meta.get("method")}


def read_score_entry(folder: Path, key: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A finished score artifact of a scores folder: its ``(T,)`` scores (memory-mapped) and its sidecar, checked
    against each other and against the extras it lists; CacheError when any of it is unreadable."""
    target = folder / f"{key}.npy"
    try:
        scores = np.load(target, allow_pickle=False, mmap_mode="r")
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if meta.get("schema") != SCORES_SCHEMA or int(meta["T"]) != len(scores):
            raise ValueError("the sidecar does not match the scores")
        if meta.get("extras"):
            with np.load(folder / f"{key}.extras.npz", allow_pickle=False) as archive:
                for extra in meta["extras"]:
                    if archive[extra].shape != scores.shape:
                        raise ValueError(f"extra {extra!r} does not match the scores")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheError(f"{target}: corrupt cache entry ({exc})") from None
    return scores, meta
