"""The ``weak`` model kind (:mod:`.kinds`): the weakly supervised methods of :mod:`.registry` (mil, align, ddl, xel,
and any method registered there), which score ``(T, crops, D)`` snippet features.

Training and scoring a workspace: :mod:`.score`. Applying a bundle elsewhere runs the ``features`` stage with the
bundle's own feature spec (``feature_stage_for``), then the ``scores`` stage (:class:`.apply.ScoreStage`); live, each
16 frames make a snippet whose features join a window of the last ``context`` snippets (``SnippetScorer``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad_pipeline.core.stage import Executor, run_stage
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError
from vad_pipeline.extractors.config import ExtractConfig
from vad_pipeline.io.datasets import video_paths

from .base import WeakMethod
from .bundle import ModelBundle
from .config import ScoreConfig, TrainConfig
from .kinds import ModelKind, Predicted, ScoredVideo, config_from_options, register_kind

log = logging.getLogger(__name__)


class SnippetScorer:
    """A weak bundle live: every ``snippet_frames`` frames make a snippet whose features join the window of the last
    ``context`` snippets; the method scores the window, the newest snippet's score comes out."""

    unit = "snippet"

    def __init__(self, workspace: Workspace, bundle: ModelBundle, model: Path | None, context: int, extract: Any):
        self.stage = feature_stage_for(workspace, bundle, model, extract, progress=False)
        self.stage.prepare()
        self.method = bundle.build().to(self.stage.device)  # where the features are made
        self.crop_pool = bundle.features.get("crop_pool", "mean")
        self.window: deque = deque(maxlen=context)  # (crops, D) features of the last snippets
        self.pending: list[np.ndarray] = []
        self.length = self.stage.cfg.snippet_frames

    def push(self, index: int, arrival: float, frame: np.ndarray) -> list[tuple[int, int, float, float]]:
        self.pending.append(frame)
        if len(self.pending) < self.length:
            return []
        snippet, self.pending = np.stack(self.pending), []
        self.window.append(self.stage.snippet_features(snippet))  # (crops, D)
        features = torch.from_numpy(np.stack(self.window).transpose(1, 0, 2).copy())  # (crops, n, D)
        with torch.no_grad():
            per_crop = self.method.snippet_scores(features.to(self.stage.device))[:, -1]
            score = float(per_crop.max() if self.crop_pool == "max" else per_crop.mean())
        return [(index - self.length + 1, index, score, arrival)]

    def flush(self) -> list[tuple[int, int, float, float]]:
        return []  # frames after the last whole snippet are not scored, as offline


class ScoringNetwork(torch.nn.Module):
    """The scoring network alone, what ONNX export traces: ``(crops, T, D)`` -> ``(crops, T)``."""

    def __init__(self, method: WeakMethod):
        super().__init__()
        self.method = method

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.method.snippet_scores(features)


def feature_stage_for(workspace: Workspace, bundle: ModelBundle, model: Path | None, extract: Any = None,
                      progress: bool = True) -> Any:
    """The ``features`` stage that makes the features ``bundle`` was trained on, with the speed options of
    ``extract`` (an ``ExtractConfig``); one clear line when this machine would make other features."""
    from vad_pipeline.core.devices import resolve_device, runnable_precision
    from vad_pipeline.extractors.extract import FeatureStage

    if bundle.features.get("source") != "workspace":
        raise UserError(f"--model {model}: trained on feature files ({bundle.features.get('dir')}), not on "
                        "features this pipeline extracts; apply it to the same kind of files with --features DIR")
    spec = bundle.features["config"]
    random = str(spec.get("weights_sha256", "")).startswith("random")
    base = extract or ExtractConfig(progress=progress)
    precision = runnable_precision(spec.get("precision", "fp32"), resolve_device(base.device))
    if precision != spec.get("precision", "fp32"):  # mixed-precision features follow fp32 ones within cosine 0.999
        log.warning("%s: trained on %s features, which this machine does not compute natively; extracting fp32 "
                    "features instead (they agree within cosine 0.999)", model, spec.get("precision"))
    shaped = dataclasses.replace(
        base, backbone=spec["backbone"], crops=spec["crops"], tail=spec["tail"], snippet_frames=spec["snippet_frames"],
        short_side=spec["short_side"], crop_size=spec["crop_size"], precision=precision,
        preprocess=spec.get("preprocess", "host"), weights="random" if random else base.weights)
    stage = FeatureStage(shaped, workspace)
    ours = stage.config()
    differ = sorted(k for k in set(spec) | set(ours) if k != "precision" and spec.get(k) != ours.get(k))
    if differ:
        k = differ[0]
        hint = ("pass --weights with the checkpoint the model was trained with" if k == "weights_sha256"
                else "use a vad-pipeline version that extracts features the same way, or train the model again")
        raise UserError(f"--model {model}: trained on features with {k}={spec.get(k)!r}, this machine would "
                        f"make {k}={ours.get(k)!r}; {hint}")
    return stage


def _features_sidecar(features_file: Path) -> dict[str, Any]:
    """The features' sidecar (frame count, fps), or nothing for public-layout files."""
    sidecar = Path(features_file).with_suffix(".json")
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    except (OSError, ValueError):
        return {}


class WeakKind(ModelKind):
    name = "weak"
    frame_level = False

    def method_names(self) -> list[str]:
        from .registry import method_names

        return method_names()

    def config(self, options: dict[str, Any], command: str) -> Any:
        return config_from_options(TrainConfig if command == "train" else ScoreConfig, options)

    def train(self, workspace: Workspace, config: Any) -> Any:
        from .score import train_model

        return train_model(workspace, config)

    def score(self, workspace: Workspace, config: Any, executor: Executor | None = None) -> Any:
        from .score import score_videos

        return score_videos(workspace, config, executor=executor)

    def check_bundle(self, bundle: ModelBundle) -> None:
        bundle.build()

    def predict(self, workspace: Workspace, inputs: list[Path], bundle: ModelBundle, request: Any, extract: Any,
                executor: Executor | None = None) -> Predicted:
        from .apply import ScoreStage, feature_refs
        from .data import VideoFeatures, scan_feature_dir

        if request.tracks is not None:
            raise UserError(f"--tracks: {request.model} is a {bundle.method} model, which scores features; --tracks "
                            "is for object-centric models")
        failed: list[tuple[Path, str]] = []
        if request.features is not None:
            videos = scan_feature_dir(request.features)
        else:
            stage = feature_stage_for(workspace, bundle, request.model, extract, request.progress)  # a spec that
            paths = video_paths(inputs, "predict")  # cannot be applied here is said first
            summary = run_stage(workspace, stage, paths, progress=request.progress, executor=executor,
                                frame_rate=request.fps)
            assert summary.folder is not None
            videos = []
            for path in [*summary.done, *summary.cached]:
                ref = workspace.video_ref(path, fps=request.fps)
                npy = summary.folder / f"{ref.video_id}.npy"
                videos.append(VideoFeatures(name=ref.clip_name, key=ref.video_id, files=(npy,), source=str(path)))
            videos.sort(key=lambda v: v.key)
            failed += summary.failed
        keys = {v.key: [workspace.manifest.sha256_of(p)[:16] for p in v.files] for v in videos}
        for video in videos:
            dim = video.feature_dim()
            if dim != bundle.feature_dim:
                raise UserError(f"{video.files[0]}: features of size {dim}, the model takes {bundle.feature_dim}; "
                                "extract them with the model's backbone")
        stage = ScoreStage(bundle, {v.key: v for v in videos}, keys, extract.device)  # the same artifacts as `score`
        scored = run_stage(workspace, stage, feature_refs(videos, keys), progress=request.progress,
                           executor=executor)
        assert scored.folder is not None
        described = []
        for v in videos:
            meta = _features_sidecar(v.files[0])
            described.append(ScoredVideo(v.name, v.key, v.source, meta.get("frames"), meta.get("fps")))
        return Predicted(described, scored.folder, len(scored.done), len(scored.cached), failed + scored.failed)

    def live_scorer(self, workspace: Workspace, bundle: ModelBundle, model: Path | None, context: int,
                    extract: Any) -> SnippetScorer:
        return SnippetScorer(workspace, bundle, model, context, extract)

    def export_network(self, bundle: ModelBundle, model: Path) -> torch.nn.Module:
        return ScoringNetwork(bundle.build()).eval()


register_kind(WeakKind())
