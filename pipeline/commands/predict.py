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
- ``alerts.csv``: one row per alert (columns ``vad_pipeline.core.schemas.ALERT_COLUMNS``), every video;
- ``predictions.json`` (schema ``vad-pipeline/predictions/1``): ``model`` (path), ``model_key``, ``method``,
  ``threshold``, ``threshold_source`` (``calibrated`` with ``far``, or ``--threshold``), ``scores`` (the scores
  folder), ``failed`` (video, message) and per video ``video``, ``key``, ``frames``, ``fps``, ``snippets`` (None for
  SSMTL), ``max_score``, ``frame_scores`` (file), ``alerts`` (rows as in the CSV), ``proposals`` (T-CAM proposals:
  ``start_frame``, ``end_frame`` exclusive, ``score``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vad_pipeline.extractors.config import ExtractConfig

from ..core.frame_scores import snippet_to_frames
from ..core.schemas import PREDICTIONS_SCHEMA
from ..core.stage import Executor
from ..core.workspace import Workspace
from ..errors import UserError
from ..io.atomic import save_json_atomic, save_npy_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictConfig:
    """Options of ``vad-pipeline predict`` (the feature extraction's speed options come as an ``ExtractConfig``)."""

    model: Path | None = None
    threshold: float | None = None  # None: the bundle's calibrated alarm threshold
    out: Path | None = None  # None: <workdir>/predictions/<bundle file stem>
    features: Path | None = None  # public-layout feature files to score instead of videos
    tracks: Path | None = None  # object-centric bundles: a tracks folder (CSV + JSON sidecars) to score instead
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
    from vad_pipeline.models.bundle import load_bundle
    from vad_pipeline.models.kinds import kind_of

    if config.model is None:
        raise UserError("predict: --model BUNDLE is required (made by `vad-pipeline train`)")
    extract = extract or ExtractConfig(progress=config.progress)
    bundle = load_bundle(config.model)
    predicted = kind_of(bundle.method).predict(workspace, inputs, bundle, config, extract, executor)
    return _finish(workspace, config, bundle, predicted)


def _finish(workspace: Workspace, config: PredictConfig, bundle: Any, predicted: Any) -> PredictSummary:
    """Write the frame scores, alerts and predictions.json of what ``predicted`` (a ``kinds.Predicted``) scored."""
    from vad_pipeline.postprocess.alerts import write_alerts_csv

    out = Path(config.out) if config.out else workspace.root / "predictions" / Path(config.model).stem
    threshold = bundle.threshold if config.threshold is None else float(config.threshold)
    records, rows = _write_outputs(out, predicted.folder, predicted.videos, bundle.method, threshold, config)
    write_alerts_csv(out / "alerts.csv", rows)
    save_json_atomic(out / "predictions.json", {
        "schema": PREDICTIONS_SCHEMA, "model": str(Path(config.model).resolve()), "model_key": bundle.key,
        "method": bundle.method, "threshold": threshold,
        "threshold_source": "calibrated" if config.threshold is None else "--threshold",
        "far": bundle.calibration.get("far"), "scores": str(predicted.folder),
        "failed": [[str(p), message] for p, message in predicted.failed], "videos": records,
    })
    log.info("predict: %d video(s) scored, %d cached, %d failed; %d alert(s) at threshold %.4f -> %s",
             predicted.done, predicted.cached, len(predicted.failed), len(rows), threshold, out)
    return PredictSummary(out, predicted.done, predicted.cached, len(rows), predicted.failed)


def _write_outputs(out: Path, scores_folder: Path, videos: list[Any], method: str, threshold: float,
                   config: PredictConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per video frame scores, alerts and proposals from the cached scores: (predictions.json records, CSV rows)."""
    from vad_pipeline.models.kinds import kind_of
    from vad_pipeline.postprocess.alerts import find_alerts
    from vad_pipeline.postprocess.proposals import tcam_proposals

    records, rows = [], []
    for video in videos:
        target = scores_folder / f"{video.key}.npy"
        if not target.is_file():  # its scoring failed (reported above)
            continue
        scores = np.load(target, allow_pickle=False)
        frame_level = kind_of(method).frame_level
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
