"""Scores in the workspace + ground truth -> frame scores, proposals and metrics per method.

A *run* is one ``scores/<method>-<hash>/`` folder of ``vad-pipeline score``. Its videos carry snippet scores
``(T,)`` (or frame scores ``(N,)`` when the sidecar says ``"level": "frame"``, as object-centric methods write), the
video label and split (from the folder's ``labels.json``, else the sidecar; videos scored by ``predict`` alone have
neither and are left out). Test videos (split ``test`` or ``train+test``) are evaluated; the frame count comes from the
features' sidecar (the decoded video) or is ``16 T`` for public features.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vad_pipeline.core.frame_scores import false_alarm_rate, minmax, smooth, snippet_to_frames
from vad_pipeline.core.schemas import LABELS_FILE, read_object_scores
from vad_pipeline.errors import UserError
from vad_pipeline.io.ground_truth import GroundTruth, VideoTruth, evaluation_length, load_many

from . import metrics as m
from .config import EvalConfig
from .proposals import Proposal, proposal_frame_scores, tcam_proposals

log = logging.getLogger(__name__)


@dataclass
class ScoredVideo:
    """One video's output of a run: ``scores`` ``(T,)`` snippet (or ``(N,)`` frame) scores, ``extras`` ``(T,)``."""

    name: str
    key: str
    label: int
    split: str
    scores: np.ndarray
    level: str  # "snippet" or "frame"
    extras: dict[str, np.ndarray]
    frames: int | None  # decoded frame count, when known
    fps: float | None
    source: str | None  # the original video, when known
    meta: dict[str, Any]


@dataclass
class ScoreRun:
    """One ``scores/<method>-<hash>/`` folder."""

    label: str
    method: str
    folder: Path
    videos: list[ScoredVideo]
    train: dict[str, Any] | None


def _features_meta(meta: dict[str, Any]) -> dict[str, Any]:
    for feature in meta.get("features", [])[:1]:
        sidecar = Path(feature).with_suffix(".json")
        if sidecar.is_file():
            try:
                return json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
    return {}


def load_run(folder: Path) -> ScoreRun:
    """Read one scores folder (videos sorted by name)."""
    videos = []
    labels: dict[str, Any] = {}
    if (folder / LABELS_FILE).is_file():
        labels = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
    for sidecar in sorted(folder.glob("*.json")):
        if sidecar.name in ("summary.json", "train.json", "config.json", LABELS_FILE):
            continue
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            scores = np.load(sidecar.with_suffix(".npy"), allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable score entry (%s); run `vad-pipeline score` again", sidecar, type(exc).__name__)
            continue
        meta = {**meta, **labels.get(meta.get("key"), {})}
        if meta.get("label") is None:  # scored by `predict` only: no label, nothing to evaluate against
            continue
        extras_file = folder / f"{meta['key']}.extras.npz"
        extras: dict[str, np.ndarray] = {}
        if extras_file.is_file():
            with np.load(extras_file, allow_pickle=False) as archive:
                extras = {k: archive[k] for k in archive.files}
        features = _features_meta(meta)
        videos.append(ScoredVideo(
            name=meta["video"], key=meta["key"], label=int(meta["label"]), split=meta.get("split", "test"),
            scores=scores.astype(np.float64), level=meta.get("level", "snippet"), extras=extras,
            frames=meta.get("frames") or features.get("frames"), fps=meta.get("fps") or features.get("fps"),
            source=meta.get("source_video") or features.get("video") or meta.get("source"), meta=meta,
        ))
    train = None
    if (folder / "train.json").is_file():
        train = json.loads((folder / "train.json").read_text(encoding="utf-8"))
    method = folder.name.rsplit("-", 1)[0]
    return ScoreRun(method, method, folder, sorted(videos, key=lambda v: v.name), train)


def load_runs(root: Path, which: str = "all") -> list[ScoreRun]:
    """The runs under ``<workdir>/scores``: every one (``all``), or those ``which`` names (comma-separated run
    folder names, or method names that match exactly one run). Never chosen by age: a method with several runs
    shows each, labelled by its folder; one with a single run is labelled by the method."""
    folders = sorted(p for p in (root / "scores").glob("*") if (p / "summary.json").is_file())
    if not folders:
        raise UserError(f"{root / 'scores'}: no scores yet; run `vad-pipeline score --method ...` first")
    if which != "all":
        available = ", ".join(p.name for p in folders)
        chosen: list[Path] = []
        for wanted in (w.strip() for w in which.split(",") if w.strip()):
            match = ([p for p in folders if p.name == wanted]
                     or [p for p in folders if p.name.rsplit("-", 1)[0] == wanted])
            if len(match) != 1:
                raise UserError(f"--runs {wanted}: {'no' if not match else len(match)} scores run(s) of that name; "
                                f"name one of {available}")
            chosen += [m for m in match if m not in chosen]
        folders = chosen
    runs = [load_run(p) for p in folders]
    per_method: dict[str, int] = {}
    for run in runs:
        per_method[run.method] = per_method.get(run.method, 0) + 1
    for run in runs:
        if per_method[run.method] > 1:
            run.label = run.folder.name
    return sorted(runs, key=lambda r: r.label)


def discover_ground_truth(runs: list[ScoreRun]) -> list[Path]:
    """A ``ground_truth.csv`` beside the videos (e.g. the demo's), searched up to three folders above each video."""
    found: list[Path] = []
    for run in runs:
        for video in run.videos:
            if not video.source:
                continue
            for parent in list(Path(video.source).parents)[:3]:
                candidate = parent / "ground_truth.csv"
                if candidate.is_file() and candidate not in found:
                    found.append(candidate)
                    break
    return found


@dataclass
class VideoResult:
    """Per-video arrays the report draws: ``labels``/``scores`` ``(N,)``, proposals, per-video metrics."""

    video: ScoredVideo
    labels: np.ndarray | None
    scores: np.ndarray
    proposals: list[Proposal]
    metrics: dict[str, float | None]


@dataclass
class RunResult:
    run: ScoreRun
    metrics: dict[str, Any]
    videos: list[VideoResult] = field(default_factory=list)
    curves: dict[str, np.ndarray] | None = None


def _frame_scores(video: ScoredVideo, count: int, config: EvalConfig) -> np.ndarray:
    if video.level == "frame":
        scores = video.scores[:count]
        if len(scores) < count:
            scores = np.concatenate([scores, np.full(count - len(scores), scores[-1] if len(scores) else 0.0)])
    else:
        scores = snippet_to_frames(video.scores, count)
    if config.normalize:
        scores = minmax(scores)
    return smooth(scores, config.sigma)


def _truth_for(video: ScoredVideo, truth: GroundTruth) -> VideoTruth | None:
    found = truth.get(video.name)
    if found is None and video.label == 0:
        return VideoTruth(video.name)  # a normal video the annotation does not list: all frames normal
    return found


def evaluate_run(run: ScoreRun, truth: GroundTruth, config: EvalConfig) -> RunResult:
    """Frame-, video-, segment- and proposal-level metrics and false-alarm rates of one run."""
    chosen = [v for v in run.videos if config.split == "all" or v.split in ("test", "train+test")]
    framed: list[m.VideoFrames] = []
    proposal_frames: list[m.VideoFrames] = []
    segment_labels, segment_scores = [], []
    results: list[VideoResult] = []
    missing = []
    for video in chosen:
        gt = _truth_for(video, truth)
        snippets = len(video.scores) if video.level == "snippet" else int(np.ceil(len(video.scores) / 16))
        if video.level == "frame":
            count = len(video.scores) if config.frames != "video" or not video.frames else int(video.frames)
        else:
            count = evaluation_length(gt, video.frames, snippets, config.frames)
        scores = _frame_scores(video, count, config)
        if video.level == "frame":
            proposals = tcam_proposals(scores, None, count, config.proposal_threshold, config.proposals, snippet=1)
        else:
            attention = video.extras.get("attention") if "tcam" in video.extras else None
            psi = video.extras["tcam"] if attention is not None else video.scores
            proposals = tcam_proposals(psi, attention, count, config.proposal_threshold, config.proposals)
        labels = gt.frame_labels(count) if gt is not None else None
        per_video: dict[str, float | None] = {"max_score": float(np.max(scores)) if scores.size else None}
        if labels is None:
            missing.append(video.name)
        else:
            framed.append(m.VideoFrames(video.name, labels, scores, video.label))
            proposal_frames.append(m.VideoFrames(video.name, labels, proposal_frame_scores(proposals, count),
                                                 video.label))
            per_video.update(auc=m.roc_auc(labels, scores), ap=m.pr_auc(labels, scores))
            if video.level == "snippet":
                segment_labels.append(m.snippet_labels(labels, snippets))
                segment_scores.append(video.scores)
        results.append(VideoResult(video, labels, scores, proposals, per_video))
    if missing:
        log.warning("report %s: no frame ground truth for %d anomalous video(s) (e.g. %s); they count only at video "
                    "level; pass --gt", run.label, len(missing), missing[0])

    metrics: dict[str, Any] = {"test_videos": len(chosen), "frame_videos": len(framed)}
    metrics["frame"] = m.frame_level(framed, config.single_class) if framed else None
    metrics["video"] = m.video_level([v.label for v in chosen], [float(np.max(v.scores)) for v in chosen])
    if segment_labels:
        seg_y, seg_s = np.concatenate(segment_labels), np.concatenate(segment_scores)
        metrics["segment"] = {"auc": m.roc_auc(seg_y, seg_s), "ap": m.pr_auc(seg_y, seg_s),
                              "ap_sklearn": m.average_precision(seg_y, seg_s), "segments": int(seg_y.size)}
    else:
        metrics["segment"] = None
    metrics["proposal"] = m.frame_level(proposal_frames, config.single_class) if proposal_frames else None
    metrics["tasks"] = _task_metrics(results, config)
    metrics["region"] = _region_metrics(run, results, truth)
    curves = None
    if framed:
        all_labels = np.concatenate([v.labels for v in framed])
        all_scores = np.concatenate([v.scores for v in framed])
        normal_scores = np.concatenate([v.scores for v in framed if v.video_label == 0] or [np.zeros(0)])
        threshold = m.threshold_at_recall(all_labels, all_scores, config.target_recall)
        metrics["false_alarm"] = {
            "threshold": config.alarm_threshold,
            "rate": false_alarm_rate(normal_scores, config.alarm_threshold, inclusive=True),
            "target_recall": config.target_recall,
            "threshold_at_recall": threshold,
            "rate_at_recall": (false_alarm_rate(normal_scores, threshold, inclusive=True)
                               if threshold is not None else None),
            "normal_frames": int(normal_scores.size),
        }
        curves = m.curves(all_labels, all_scores)
    else:
        metrics["false_alarm"] = None
    return RunResult(run, metrics, results, curves)


def _task_metrics(results: list[VideoResult], config: EvalConfig) -> dict[str, Any] | None:
    """Frame-level metrics of each ``task_<name>`` extra alone (object-centric methods' per-task scores)."""
    names = sorted({k for r in results for k in r.video.extras if k.startswith("task_")})
    if not names:
        return None
    tasks = {}
    for name in names:
        videos = []
        for result in results:
            if result.labels is None or name not in result.video.extras:
                continue
            values = result.video.extras[name].astype(np.float64)[: len(result.labels)]
            if config.normalize:
                values = minmax(values)
            videos.append(m.VideoFrames(result.video.name, result.labels, smooth(values, config.sigma),
                                        result.video.label))
        if videos:
            tasks[name.removeprefix("task_")] = m.frame_level(videos, config.single_class)
    return tasks or None


def _region_metrics(run: ScoreRun, results: list[VideoResult], truth: GroundTruth) -> dict[str, Any] | None:
    """RBDC / TBDC for runs that wrote per-object boxes (``<key>.objects.csv``) on videos with pixel masks. Object
    scores are min-max normalised per video (the object-centric convention) and drawn as boxes."""
    accumulator = m.RegionTrackAccumulator()
    videos = 0
    for result in results:
        gt = truth.get(result.video.name)
        objects_csv = run.folder / f"{result.video.key}.objects.csv"
        if gt is None or gt.masks is None or not objects_csv.is_file():
            continue
        count = len(result.scores)
        masks = gt.frame_masks(count)
        header, table = read_object_scores(objects_csv)
        scores = minmax(table[:, header.index("score")]) if len(table) else np.zeros(0)
        height, width = masks.shape[1:]
        sx = width / float(result.video.meta.get("width") or width)
        sy = height / float(result.video.meta.get("height") or height)
        frames = table[:, 0].astype(int) if len(table) else np.zeros(0, int)
        maps = _BoxMaps(frames, table[:, 2:6] * [sx, sy, sx, sy] if len(table) else np.zeros((0, 4)), scores,
                        (height, width))
        accumulator.update(masks, maps)
        videos += 1
    if not videos:
        return None
    summary = accumulator.summarize()
    return {"rbdc": summary["rbdc"], "tbdc": summary["tbdc"], "videos": videos,
            "gt_regions": summary.get("gt_regions"), "gt_tracks": summary.get("gt_tracks")}


class _BoxMaps:
    """Lazily drawn ``(H, W)`` score maps of one video's object boxes, indexable by frame."""

    def __init__(self, frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray, shape: tuple[int, int]):
        self.frames, self.boxes, self.scores, self.shape = frames, boxes, scores, shape

    def __getitem__(self, index: int) -> np.ndarray:
        chosen = self.frames == index
        return m.box_score_map(self.boxes[chosen], self.scores[chosen], self.shape)


def evaluate(root: Path, gt_paths: list[Path], config: EvalConfig, which: str = "all") -> tuple[list[RunResult], GroundTruth]:
    """Every run of the workspace at ``root`` evaluated against ``gt_paths`` (or the discovered ground truth)."""
    runs = load_runs(root, which)
    paths = list(gt_paths) or discover_ground_truth(runs)
    if not gt_paths and paths:
        log.info("report: using the ground truth found beside the videos: %s", ", ".join(map(str, paths)))
    truth = load_many(paths) if paths else GroundTruth()
    if not paths:
        log.warning("report: no frame ground truth (--gt FILE|DIR); only video-level metrics and normal videos")
    return [evaluate_run(run, truth, config) for run in runs], truth
