"""The ``ssmtl`` model kind (:mod:`vad_pipeline.models.kinds`): object-centric SSMTL, which scores the objects of
tracks, one score per frame.

Training and scoring a workspace: :mod:`.runner`. Applying a bundle elsewhere runs the ``tracks`` stage with the
bundle's own detector and settings (``track_stage_for``), the ``objects`` stage with its window, crop size and teacher
(``teacher_for``), then the ``scores`` stage (:class:`.apply.SSMTLScoreStage`); live, the online tracker feeds
:class:`.live.LiveObjectScorer`. There is no ONNX export: scoring needs tracks, a teacher and appearance memories.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from vad_pipeline.core.stage import Executor, run_stage
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.detectors.config import MotionConfig, TrackConfig
from vad_pipeline.errors import UserError
from vad_pipeline.io.datasets import video_paths

from ..bundle import ModelBundle
from ..kinds import ModelKind, Predicted, ScoredVideo, config_from_options, register_kind
from .config import ObjectConfig, SSMTLConfig

METHOD = "ssmtl"


def teacher_for(bundle: ModelBundle, model: Path | None, detector: Path | None) -> Any:
    """The teacher an SSMTL ``bundle`` distilled (the detector's backbone), checked by identity; one clear line when
    this machine has another."""
    from .teacher import choose_teacher

    spec = bundle.features
    if str(spec.get("teacher", "")).startswith("resnet:"):
        raise UserError(f"--model {model}: trained with --teacher-weights (a ResNet teacher); it can be applied to "
                        "models that distil the detector (train without --teacher-weights)")
    teacher = choose_teacher(None, detector)
    if teacher.identity != spec.get("teacher"):
        raise UserError(f"--model {model}: trained with teacher {spec.get('teacher')}, this machine has "
                        f"{teacher.identity}; install the detector the model was trained with")
    return teacher


def track_stage_for(workspace: Workspace, bundle: ModelBundle, model: Path | None, progress: bool = True,
                    device: str = "auto") -> Any:
    """The ``tracks`` stage that makes the tracks an SSMTL ``bundle`` was trained on, its detector on ``device``; one
    clear line when this machine would make other tracks (another detector) or the bundle was trained on tracks
    made elsewhere."""
    from vad_pipeline.detectors.tracks import TrackStage

    spec = bundle.features
    if spec.get("source") != "tracks":
        raise UserError(f"--model {model}: trained on a tracks folder made elsewhere ({spec.get('dir')}); apply it "
                        "to tracks made the same way with --tracks DIR")
    shape = spec["tracks"]
    config = TrackConfig(objects=shape.get("objects", "detector"), conf=shape["conf"],
                         imgsz=None if shape["imgsz"] == "auto" else int(shape["imgsz"]),
                         classes=tuple(shape["classes"]) if shape.get("classes") else None,
                         frame_stride=shape["frame_stride"],
                         motion=MotionConfig(**shape["motion"]) if "motion" in shape else MotionConfig(),
                         device=device, progress=progress)
    stage = TrackStage(config, workspace)
    ours = stage.config()
    differ = sorted(k for k in set(shape) | set(ours) if k != "precision" and shape.get(k) != ours.get(k))
    if differ:
        k = differ[0]
        hint = ("install the detector the model was trained with (VAD_DETECTOR_WEIGHTS, or `vad-pipeline weights "
                "install detector`)" if k == "detector_sha256"
                else "use a vad-pipeline version that tracks the same way, or train the model again")
        raise UserError(f"--model {model}: trained on tracks with {k}={shape.get(k)!r}, this machine would make "
                        f"{k}={ours.get(k)!r}; {hint}")
    return stage


class ObjectScorer:
    """An SSMTL bundle live (:mod:`.live`): one score per frame, half an object window plus the smoothing radius
    after it arrived."""

    unit = "frame"

    def __init__(self, workspace: Workspace, bundle: ModelBundle, model: Path | None, extract: Any):
        from vad_pipeline.detectors.tracks import OnlineTracker
        from vad_pipeline.core.devices import resolve_device

        from .apply import SSMTLModel
        from .live import LiveObjectScorer

        stage = track_stage_for(workspace, bundle, model, progress=False, device=extract.device)
        teacher = teacher_for(bundle, model, stage.detector_path)
        self.live = LiveObjectScorer(SSMTLModel.from_bundle(bundle, resolve_device(extract.device)), teacher,
                                     OnlineTracker(stage))

    def push(self, index: int, arrival: float, frame: np.ndarray) -> list[tuple[int, int, float, float]]:
        return [(f, f, score, since) for f, score, since in self.live.push(index, arrival, frame)]

    def flush(self) -> list[tuple[int, int, float, float]]:
        return [(f, f, score, since) for f, score, since in self.live.flush()]


class SSMTLKind(ModelKind):
    name = METHOD
    frame_level = True

    def method_names(self) -> list[str]:
        return [METHOD]

    def config(self, options: dict[str, Any], command: str) -> Any:
        """``SSMTLConfig`` from the options; ``tasks`` may come as a comma-separated string and the object window
        as ``crop_size``, ``half_window``, ``max_step`` (the CLI's names)."""
        options = {k: v for k, v in options.items() if v is not None}  # None: the field's default
        if isinstance(options.get("tasks"), str):
            options["tasks"] = tuple(t.strip() for t in options["tasks"].split(",") if t.strip())
        window = {"size": options.pop("crop_size", None), "half_window": options.pop("half_window", None),
                  "max_step": options.pop("max_step", None)}
        options["objects"] = dataclasses.replace(ObjectConfig(decoder="auto"),
                                                 **{k: v for k, v in window.items() if v is not None})
        if command != "train":
            options.pop("holdout", None)  # score calibrates on the training normals, as the benchmarks do
        return config_from_options(SSMTLConfig, options)

    def train(self, workspace: Workspace, config: Any) -> Any:
        from .runner import train_ssmtl

        return train_ssmtl(workspace, config)

    def score(self, workspace: Workspace, config: Any, executor: Executor | None = None) -> Any:
        from .runner import score_ssmtl

        return score_ssmtl(workspace, config, executor=executor)

    def check_bundle(self, bundle: ModelBundle) -> None:
        from .apply import SSMTLOptions, build_network

        build_network(SSMTLOptions.from_json(bundle.options), bundle.state_dict)

    def predict(self, workspace: Workspace, inputs: list[Path], bundle: ModelBundle, request: Any, extract: Any,
                executor: Executor | None = None) -> Predicted:
        """The tracks, objects and scores stages on ``inputs`` (or ``request.tracks``), the scoring on
        ``extract.device``."""
        from .apply import SSMTLOptions, SSMTLScoreStage
        from .runner import cut_objects, tracked_videos

        failed: list[tuple[Path, str]] = []
        if request.features is not None:
            raise UserError(f"--features: {request.model} is an SSMTL model, which scores objects from tracks; pass "
                            "videos, or --tracks DIR")
        if request.tracks is not None:
            folder = Path(request.tracks)
            if not folder.is_dir():
                raise UserError(f"--tracks {folder}: no such folder")
            videos = tracked_videos(workspace, folder)
            if not videos:
                raise UserError(f"--tracks {folder}: holds no tracks (<name>.csv with a <name>.json sidecar)")
            detector = None
        else:
            tracks_stage = track_stage_for(workspace, bundle, request.model, request.progress, extract.device)
            summary = run_stage(workspace, tracks_stage, video_paths(inputs, "predict"), progress=request.progress,
                                executor=executor, frame_rate=request.fps)
            failed += summary.failed
            assert summary.folder is not None
            keys = {workspace.video_ref(p, fps=request.fps).video_id for p in [*summary.done, *summary.cached]}
            videos = tracked_videos(workspace, summary.folder, keys)
            detector = tracks_stage.detector_path
        teacher = teacher_for(bundle, request.model, detector)
        options = SSMTLOptions.from_json(bundle.options)
        objects_folder, cut_failed = cut_objects(workspace, options.objects, teacher, videos, request.progress,
                                                 required=False)
        failed += cut_failed
        cut_paths = {str(p) for p, _ in cut_failed}
        videos = [v for v in videos if str(v.video) not in cut_paths]
        stage = SSMTLScoreStage(bundle, objects_folder, videos, extract.device)
        scored = run_stage(workspace, stage, [v.ref(v.key) for v in videos], progress=request.progress,
                           executor=executor)
        assert scored.folder is not None
        described = [ScoredVideo(v.name, v.key, str(v.video), v.frames, v.fps) for v in videos]
        return Predicted(described, scored.folder, len(scored.done), len(scored.cached), failed + scored.failed)

    def live_scorer(self, workspace: Workspace, bundle: ModelBundle, model: Path | None, context: int,
                    extract: Any) -> ObjectScorer:
        return ObjectScorer(workspace, bundle, model, extract)

    def export_network(self, bundle: ModelBundle, model: Path) -> Any:
        raise UserError(f"--model {model}: an SSMTL model (objects from tracks, a teacher, an appearance memory); "
                        "ONNX export covers the weak methods' snippet scorers, apply SSMTL with `vad-pipeline predict`")


register_kind(SSMTLKind())
