"""Alerts: the runs of frames whose anomaly score is above an alarm threshold, as a user acts on them.

``alerts.csv`` (columns ``vad_pipeline.core.schemas.ALERT_COLUMNS``) holds one row per alert of every video; the same
rows are in ``predictions.json``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vad_pipeline.core.schemas import ALERT_COLUMNS
from vad_pipeline.io.atomic import atomic_path

from .proposals import runs


@dataclass(frozen=True)
class Alert:
    """Frames ``start_frame`` .. ``end_frame`` (inclusive) above the threshold; the highest score and its frame."""

    start_frame: int
    end_frame: int
    peak_frame: int
    peak_score: float

    def row(self, video: str, video_id: str, fps: float | None, threshold: float,
            attributes: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """The alert as an ``alerts.csv`` row (times in seconds when ``fps`` is known); ``attributes``: per task /
        attribute its ``(N,)`` standardised frame scores, the highest at the peak frame names the alert's cause."""

        def seconds(frame: int) -> float | str:
            return round(frame / fps, 3) if fps else ""

        return {"video": video, "video_id": video_id, "start_frame": self.start_frame, "end_frame": self.end_frame,
                "start_s": seconds(self.start_frame), "end_s": seconds(self.end_frame + 1),
                "peak_frame": self.peak_frame, "peak_score": round(self.peak_score, 6), "threshold": threshold,
                "attribute": dominant_attribute(attributes, self.peak_frame) if attributes else ""}


def dominant_attribute(attributes: dict[str, np.ndarray], frame: int) -> str:
    """The task / attribute whose standardised ``(N,)`` frame score is highest at ``frame``."""
    values = {name: float(scores[min(frame, len(scores) - 1)]) for name, scores in attributes.items() if len(scores)}
    return max(values, key=values.__getitem__) if values else ""


def find_alerts(frame_scores: np.ndarray, threshold: float) -> list[Alert]:
    """Every maximal run of frames with a score strictly above ``threshold`` in ``(N,)`` frame scores."""
    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    alerts = []
    for start, end in runs(scores > threshold):
        peak = start + int(np.argmax(scores[start:end]))
        alerts.append(Alert(start, end - 1, peak, float(scores[peak])))
    return alerts


def write_alerts_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` (``Alert.row``) as ``alerts.csv`` at ``path``, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ALERT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
