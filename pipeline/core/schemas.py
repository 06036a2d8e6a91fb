"""Schemas of the files several parts of the package write and read (one place, so writers and readers cannot
drift apart): names written into sidecars, and the per-object score table."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

SCORES_SCHEMA = "vad-pipeline/scores/1"  # scores/<method>-<hash>/<key>.json sidecars (weak methods, SSMTL, baselines)
BUNDLE_SCHEMA = "vad-pipeline/bundle/1"  # models/<method>-<key>.pt: a trained model and all it needs to be applied
PREDICTIONS_SCHEMA = "vad-pipeline/predictions/1"  # predictions/<model>/predictions.json of `vad-pipeline predict`

#: ``scores/<method>-<hash>/labels.json``: per video key, the ``label`` (0 / 1) and ``split`` the scoring run used
#: (labels may be corrected without changing any score, so they are kept beside the scores, not inside them)
LABELS_FILE = "labels.json"

#: columns of ``alerts.csv`` (one row per alert: a run of frames whose score is above the alarm threshold; frames
#: are 0-based and ``end_frame`` is inclusive; times are ``frame / fps`` in seconds, empty when fps is unknown)
#: ``attribute``: for object-centric methods the task / attribute (``vel``, ``knn``, ``mi`` ...) whose standardised
#: score is highest at the peak frame, what made the frame anomalous; empty for snippet methods
ALERT_COLUMNS = ("video", "video_id", "start_frame", "end_frame", "start_s", "end_s", "peak_frame", "peak_score",
                 "threshold", "attribute")

#: leading columns of ``scores/<method>-<hash>/<key>.objects.csv`` (one row per scored object; then one column per
#: task): the frame, the track, the box in the video's pixels and the object's combined anomaly score
OBJECT_SCORE_COLUMNS = ("frame", "track_id", "x1", "y1", "x2", "y2", "score")


def clip_name(meta: dict) -> str:
    """The name a features or tracks sidecar knows its video by (``"clip"``: a dataset's name for it, e.g.
    ``train_01``; older sidecars: the stem of ``"video"``)."""
    return meta.get("clip") or Path(meta["video"]).stem


def object_scores_header(tasks: tuple[str, ...]) -> list[str]:
    """The header of an ``<key>.objects.csv`` with per-task columns ``tasks``."""
    return [*OBJECT_SCORE_COLUMNS, *tasks]


def read_object_scores(path: Path) -> tuple[list[str], np.ndarray]:
    """An ``<key>.objects.csv`` as (column names, ``(N, columns)`` float array)."""
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an empty table
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    return header, table.reshape(-1, len(header))
