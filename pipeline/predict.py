"""``vad-pipeline predict``: apply a trained model bundle to new footage, no labels needed.

Runs only what the bundle needs, with the bundle's own spec. A weakly supervised bundle: the ``features`` stage
(backbone, weights, crops, snippet length, precision as the model was trained), then its ``scores`` stage. An SSMTL
bundle: the ``tracks`` stage (the detector, its settings), the ``objects`` stage (window, crop size, the teacher),
then its ``scores`` stage. A spec this machine cannot reproduce (other weights, another detector) is one clear line.
Every stage's outputs are cached artifacts of the workspace, so a re-run, or a folder that grew, computes only what
is new, and nothing is ever trained.

Outputs in ``--out`` (default ``<workdir>/predictions/<bundle file stem>/``), rewritten on every run from the cached
scores (they are cheap):

- ``frames/<key>.npy``: float32 ``(N,)`` frame scores (weak methods: snippet ``t`` covers frames
  ``[16 t, 16 t + 16)``, the frames after the last full snippet take its score; SSMTL scores frames itself);
- ``alerts.csv``: one row per alert (columns ``vad_pipeline.schemas.ALERT_COLUMNS``), every video;
- ``predictions.json`` (schema ``vad-pipeline/predictions/1``): ``model`` (path), ``model_key``, ``method``,
  ``threshold``, ``threshold_source`` (``calibrated`` with ``far``, or ``--threshold``), ``scores`` (the scores
  folder), ``failed`` (video, message) and per video ``video``, ``key``, ``frames``, ``fps``, ``snippets`` (None for
  SSMTL), ``max_score``, ``frame_scores`` (file), ``alerts`` (rows as in the CSV), ``proposals`` (T-CAM proposals:
  ``start_frame``, ``end_frame`` exclusive, ``score``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import save_json_atomic, save_npy_atomic
from .errors import UserError
from .frame_scores import snippet_to_frames
from .schemas import PREDICTIONS_SCHEMA
from .stage import Executor, run_stage
from .workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictConfig:
    """Options of ``vad-pipeline predict`` (the feature extraction's speed options come as an ``ExtractConfig``)."""

    model: Path | None = None
    threshold: float | None = None  # None: the bundle's calibrated alarm threshold
    out: Path | None = None  # None: <workdir>/predictions/<bundle file stem>
    features: Path | None = None  # public-layout feature files to score instead of videos
    tracks: Path | None = None  # SSMTL bundles: a tracks folder (CSV + JSON sidecars) to score instead of videos
    proposal_threshold: float = 0.35  # T-CAM proposals: fraction of the video's score range
    fps: float | None = None  # folders of frames: their frame rate (None: 25)
    progress: bool = True


@dataclass
class PredictSummary:
    out: Path
    scored: int
    cached: int
    alerts: int
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def predict(workspace: Workspace, inputs: list[Path], config: PredictConfig, extract: Any = None,
            executor: Executor | None = None) -> PredictSummary:
    """Score ``inputs`` (video files or folders) with the bundle ``config.model``; see the module docstring.
    ``extract``: an ``ExtractConfig`` with the extraction's speed options (device, batch size, decoder, threads;
    its feature-shaping fields are replaced by the bundle's)."""
    from vad_pipeline.extractors.extract import ExtractConfig
    from vad_pipeline.models.apply import ScoreStage, feature_refs
    from vad_pipeline.models.bundle import load_bundle
    from vad_pipeline.models.data import scan_feature_dir

    if config.model is None:
        raise UserError("predict: --model BUNDLE is required (made by `vad-pipeline train`)")
    extract = extract or ExtractConfig(progress=config.progress)
    bundle = load_bundle(config.model)
    failed: list[tuple[Path, str]] = []
    if bundle.method == "ssmtl":
        videos, scores_folder, done, cached, failed = _score_objects(workspace, inputs, bundle, config, extract,
                                                                     executor)
        return _finish(workspace, config, bundle, videos, scores_folder, done, cached, failed)
    if config.tracks is not None:
        raise UserError(f"--tracks: {config.model} is a {bundle.method} model, which scores features; --tracks is "
                        "for SSMTL models")
    if config.features is not None:
        videos = scan_feature_dir(config.features)
    else:
        videos, failed = _extract_features(workspace, inputs, bundle, config, extract, executor)
    keys = {v.key: [workspace.manifest.sha256_of(p)[:16] for p in v.files] for v in videos}
    for video in videos:
        dim = video.feature_dim()
        if dim != bundle.feature_dim:
            raise UserError(f"{video.files[0]}: features of size {dim}, the model takes {bundle.feature_dim}; "
                            "extract them with the model's backbone")
    stage = ScoreStage(bundle, {v.key: v for v in videos}, keys, extract.device)  # the same artifacts as `score`
    scored = run_stage(workspace, stage, feature_refs(videos, keys), progress=config.progress, executor=executor)
    failed += scored.failed
    assert scored.folder is not None
    described = [_Described(v.name, v.key, v.source, **_frames_and_fps(v.files[0])) for v in videos]
    return _finish(workspace, config, bundle, described, scored.folder, len(scored.done), len(scored.cached), failed)


@dataclass
class _Described:
    """A scored video as the outputs describe it (``frames`` None: 16 per snippet)."""

    name: str
    key: str
    source: str | None
    frames: int | None = None
    fps: float | None = None


def _frames_and_fps(features_file: Path) -> dict[str, Any]:
    meta = _features_sidecar(features_file)
    return {"frames": meta.get("frames"), "fps": meta.get("fps")}


def _finish(workspace: Workspace, config: PredictConfig, bundle: Any, videos: list[_Described], scores_folder: Path,
            done: int, cached: int, failed: list[tuple[Path, str]]) -> PredictSummary:
    """Write the frame scores, alerts and predictions.json of the scored ``videos``."""
    from vad_pipeline.postprocess.alerts import write_alerts_csv

    out = Path(config.out) if config.out else workspace.root / "predictions" / Path(config.model).stem
    threshold = bundle.threshold if config.threshold is None else float(config.threshold)
    records, rows = _write_outputs(out, scores_folder, videos, bundle.method, threshold, config)
    write_alerts_csv(out / "alerts.csv", rows)
    save_json_atomic(out / "predictions.json", {
        "schema": PREDICTIONS_SCHEMA, "model": str(Path(config.model).resolve()), "model_key": bundle.key,
        "method": bundle.method, "threshold": threshold,
        "threshold_source": "calibrated" if config.threshold is None else "--threshold",
        "far": bundle.calibration.get("far"), "scores": str(scores_folder),
        "failed": [[str(p), message] for p, message in failed], "videos": records,
    })
    log.info("predict: %d video(s) scored, %d cached, %d failed; %d alert(s) at threshold %.4f -> %s",
             done, cached, len(failed), len(rows), threshold, out)
    return PredictSummary(out, done, cached, len(rows), failed)


def _score_objects(workspace: Workspace, inputs: list[Path], bundle: Any, config: PredictConfig, extract: Any,
                   executor: Executor | None) -> tuple[list[_Described], Path, int, int, list[tuple[Path, str]]]:
    """An SSMTL bundle on ``inputs`` (or ``config.tracks``): the tracks, objects and scores stages (the scoring on
    ``extract.device``); the scored videos, the scores folder, how many were scored and cached, and the failures."""
    from vad_pipeline.models.ssmtl.apply import SSMTLOptions, SSMTLScoreStage
    from vad_pipeline.models.ssmtl.runner import cut_objects, tracked_videos

    failed: list[tuple[Path, str]] = []
    if config.features is not None:
        raise UserError(f"--features: {config.model} is an SSMTL model, which scores objects from tracks; pass "
                        "videos, or --tracks DIR")
    if config.tracks is not None:
        folder = Path(config.tracks)
        if not folder.is_dir():
            raise UserError(f"--tracks {folder}: no such folder")
        videos = tracked_videos(workspace, folder)
        if not videos:
            raise UserError(f"--tracks {folder}: holds no tracks (<name>.csv with a <name>.json sidecar)")
        detector = None
    else:
        tracks_stage = track_stage_for(workspace, bundle, config.model, config.progress,
                                       extract.device)
        paths = _video_paths(inputs)
        summary = run_stage(workspace, tracks_stage, paths, progress=config.progress, executor=executor,
                            frame_rate=config.fps)
        failed += summary.failed
        assert summary.folder is not None
        keys = {workspace.video_ref(p, fps=config.fps).video_id for p in [*summary.done, *summary.cached]}
        videos = tracked_videos(workspace, summary.folder, keys)
        detector = tracks_stage.detector_path
    teacher = teacher_for(bundle, config.model, detector)
    options = SSMTLOptions.from_json(bundle.options)
    objects_folder, cut_failed = cut_objects(workspace, options.objects, teacher, videos, config.progress,
                                             required=False)
    failed += cut_failed
    cut_paths = {str(p) for p, _ in cut_failed}
    videos = [v for v in videos if str(v.video) not in cut_paths]
    stage = SSMTLScoreStage(bundle, objects_folder, videos, extract.device)
    scored = run_stage(workspace, stage, [v.ref(v.key) for v in videos], progress=config.progress, executor=executor)
    failed += scored.failed
    assert scored.folder is not None
    described = [_Described(v.name, v.key, str(v.video), v.frames, v.fps) for v in videos]
    return described, scored.folder, len(scored.done), len(scored.cached), failed


def teacher_for(bundle: Any, model: Path | None, detector: Path | None) -> Any:
    """The teacher an SSMTL ``bundle`` distilled (the detector's backbone), checked by identity; one clear line when
    this machine has another."""
    from vad_pipeline.models.ssmtl.teacher import choose_teacher

    spec = bundle.features
    if str(spec.get("teacher", "")).startswith("resnet:"):
        raise UserError(f"--model {model}: trained with --teacher-weights (a ResNet teacher); it can be applied to "
                        "models that distil the detector (train without --teacher-weights)")
    teacher = choose_teacher(None, detector)
    if teacher.identity != spec.get("teacher"):
        raise UserError(f"--model {model}: trained with teacher {spec.get('teacher')}, this machine has "
                        f"{teacher.identity}; install the detector the model was trained with")
    return teacher


def track_stage_for(workspace: Workspace, bundle: Any, model: Path | None, progress: bool = True,
                    device: str = "auto") -> Any:
    """The ``tracks`` stage that makes the tracks an SSMTL ``bundle`` was trained on, its detector on ``device``; one
    clear line when this machine would make other tracks (another detector) or the bundle was trained on tracks
    made elsewhere."""
    from vad_pipeline.detectors.motion import MotionConfig
    from vad_pipeline.detectors.tracks import TrackConfig, TrackStage

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


def feature_stage_for(workspace: Workspace, bundle: Any, model: Path | None, extract: Any = None,
                      progress: bool = True) -> Any:
    """The ``features`` stage that makes the features ``bundle`` was trained on, with the speed options of
    ``extract`` (an ``ExtractConfig``); one clear line when this machine would make other features."""
    from vad_pipeline.devices import resolve_device, runnable_precision
    from vad_pipeline.extractors.extract import ExtractConfig, FeatureStage

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


def _video_paths(inputs: list[Path]) -> list[Path]:
    """The video files under ``inputs`` (files or folders); one line when there are none."""
    from vad_pipeline.discovery import find_videos, nothing_found

    if not inputs:
        raise UserError("predict: no videos given; pass video files or folders")
    paths = find_videos(inputs)
    if not paths:
        raise nothing_found(inputs)
    return paths


def _extract_features(workspace: Workspace, inputs: list[Path], bundle: Any, config: PredictConfig, extract: Any,
                      executor: Executor | None) -> tuple[list[Any], list[tuple[Path, str]]]:
    """The ``features`` stage with the bundle's spec on the videos under ``inputs``: their features, and the videos
    that failed."""
    from vad_pipeline.models.data import VideoFeatures

    stage = feature_stage_for(workspace, bundle, config.model, extract, config.progress)  # a spec that cannot
    paths = _video_paths(inputs)  # be applied here is said first
    summary = run_stage(workspace, stage, paths, progress=config.progress, executor=executor, frame_rate=config.fps)
    assert summary.folder is not None
    videos = []
    for path in [*summary.done, *summary.cached]:
        ref = workspace.video_ref(path, fps=config.fps)
        npy = summary.folder / f"{ref.video_id}.npy"
        videos.append(VideoFeatures(name=ref.clip_name, key=ref.video_id, files=(npy,), source=str(path)))
    return sorted(videos, key=lambda v: v.key), list(summary.failed)


def _write_outputs(out: Path, scores_folder: Path, videos: list[_Described], method: str, threshold: float,
                   config: PredictConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per video frame scores, alerts and proposals from the cached scores: (predictions.json records, CSV rows)."""
    from vad_pipeline.postprocess.alerts import find_alerts
    from vad_pipeline.postprocess.proposals import tcam_proposals

    records, rows = [], []
    for video in videos:
        target = scores_folder / f"{video.key}.npy"
        if not target.is_file():  # its scoring failed (reported above)
            continue
        scores = np.load(target, allow_pickle=False)
        frame_level = method == "ssmtl"
        extras_file = scores_folder / f"{video.key}.extras.npz"
        attention, attributes = None, None
        if extras_file.is_file():
            with np.load(extras_file, allow_pickle=False) as archive:
                if frame_level:  # per-task frame scores: each alert names the attribute that made it
                    attributes = {k[len("task_"):]: archive[k] for k in archive.files if k.startswith("task_")}
                else:
                    attention = archive["attention"] if "attention" in archive.files else None
        frames = int(video.frames or (len(scores) if frame_level else 16 * len(scores)))
        frame_scores = (scores if frame_level else snippet_to_frames(scores, frames)).astype(np.float32)
        frame_file = out / "frames" / f"{video.key}.npy"
        save_npy_atomic(frame_file, frame_scores)
        video_rows = [a.row(video.name, video.key, video.fps, threshold, attributes)
                      for a in find_alerts(frame_scores, threshold)]
        rows += video_rows
        proposals = tcam_proposals(scores, attention, frames, threshold=config.proposal_threshold,
                                   snippet=1 if frame_level else 16)
        records.append({"video": video.source or video.name, "key": video.key, "method": method, "frames": frames,
                        "fps": video.fps, "snippets": None if frame_level else int(len(scores)),
                        "max_score": float(np.max(scores)) if len(scores) else None,
                        "frame_scores": str(frame_file), "alerts": video_rows,
                        "proposals": [p.to_json() for p in proposals]})
    return records, rows


def _features_sidecar(features_file: Path) -> dict[str, Any]:
    """The features' sidecar (frame count, fps), or nothing for public-layout files."""
    sidecar = Path(features_file).with_suffix(".json")
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    except (OSError, ValueError):
        return {}
