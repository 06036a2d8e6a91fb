"""The field's metrics, with its conventions as explicit options (scikit-learn underneath).

Conventions (defaults follow the public evaluation code):

- **AP.** The weakly supervised code bases report "AP" as ``auc(recall, precision)`` over
  ``precision_recall_curve`` (:func:`pr_auc`, key ``ap``); scikit-learn's step-wise ``average_precision_score`` is
  reported beside it (key ``ap_sklearn``). They differ slightly; papers almost always mean the first.
- **Micro vs macro.** Micro: all evaluated frames of all test videos concatenated, one curve. Macro: the mean of the
  per-video values; a video whose frames are all one class has no ROC curve: ``single_class="skip"`` (default) leaves
  it out of the mean, ``"pad"`` appends one frame of each class to it (the normal one scored 0, the anomalous one 1)
  so every video counts.
- **Video level.** A video's score is its maximum snippet score; label from the video labels.
- **Segment level.** Each 16-frame snippet is a sample scored by its snippet score, anomalous when any of its frames
  is anomalous.
- **Proposal level.** Frames inside a temporal proposal take the proposal's score, all other frames 0; then frame-level
  micro AUC / AP.
- **False alarms.** On normal test videos: the fraction of frames scored at or above a threshold (default 0.5), and
  at the highest threshold whose frame recall on the anomalous frames reaches a target (default 0.9).
- **RBDC / TBDC** (Ramachandra & Jones, WACV 2020 / TPAMI survey): see :class:`RegionTrackAccumulator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve


def _both_classes(labels: np.ndarray) -> bool:
    labels = np.asarray(labels)
    return labels.size > 0 and labels.min() != labels.max()


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC, or None when ``labels`` hold a single class."""
    labels = np.asarray(labels).reshape(-1)
    if not _both_classes(labels):
        return None
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64).reshape(-1)))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The public code's "AP": ``auc(recall, precision)`` of ``precision_recall_curve``; None without positives."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0 or labels.max() == 0:
        return None
    precision, recall, _ = precision_recall_curve(labels, np.asarray(scores, dtype=np.float64).reshape(-1))
    return float(auc(recall, precision))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """scikit-learn's ``average_precision_score``; None without positives."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0 or labels.max() == 0:
        return None
    return float(average_precision_score(labels, np.asarray(scores, dtype=np.float64).reshape(-1)))


def _pad(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([labels, [0, 1]]), np.concatenate([scores, [0.0, 1.0]])


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


@dataclass
class VideoFrames:
    """One test video's evaluated frames: ``labels`` and ``scores`` ``(N,)``; ``video_label`` 0/1."""

    name: str
    labels: np.ndarray
    scores: np.ndarray
    video_label: int


def frame_level(videos: list[VideoFrames], single_class: str = "skip") -> dict[str, float | int | None]:
    """Micro and macro frame-level ROC-AUC and AP (both conventions) over ``videos``."""
    if single_class not in ("skip", "pad"):
        raise ValueError("single_class must be skip or pad")
    labels = np.concatenate([v.labels for v in videos]) if videos else np.zeros(0)
    scores = np.concatenate([v.scores for v in videos]) if videos else np.zeros(0)
    per_auc, per_ap = [], []
    for video in videos:
        y, s = np.asarray(video.labels), np.asarray(video.scores, dtype=np.float64)
        if single_class == "pad" and not _both_classes(y):
            y, s = _pad(y, s)
        per_auc.append(roc_auc(y, s))
        per_ap.append(pr_auc(y, s) if y.max(initial=0) > 0 else None)
    return {
        "auc": roc_auc(labels, scores),
        "ap": pr_auc(labels, scores),
        "ap_sklearn": average_precision(labels, scores),
        "macro_auc": _mean(per_auc),
        "macro_ap": _mean(per_ap),
        "macro_videos": sum(v is not None for v in per_auc),
        "frames": int(labels.size),
        "anomalous_frames": int(labels.sum()),
    }


def video_level(video_labels: Iterable[int], video_scores: Iterable[float]) -> dict[str, float | None]:
    """Video-level AUC / AP from one score per video (its maximum snippet score)."""
    y, s = np.asarray(list(video_labels)), np.asarray(list(video_scores), dtype=np.float64)
    return {"auc": roc_auc(y, s), "ap": pr_auc(y, s), "ap_sklearn": average_precision(y, s)}


def snippet_labels(frame_labels: np.ndarray, snippets: int, snippet: int = 16) -> np.ndarray:
    """``(T,)`` 0/1: a snippet is anomalous when any of its (evaluated) frames is."""
    padded = np.zeros(snippets * snippet, np.uint8)
    n = min(len(frame_labels), len(padded))
    padded[:n] = frame_labels[:n]
    return padded.reshape(snippets, snippet).max(axis=1)


def threshold_at_recall(labels: np.ndarray, scores: np.ndarray, recall: float) -> float | None:
    """The highest threshold at which at least ``recall`` of the anomalous frames score >= it."""
    labels, scores = np.asarray(labels).reshape(-1), np.asarray(scores, dtype=np.float64).reshape(-1)
    positives = np.sort(scores[labels == 1])[::-1]
    if positives.size == 0:
        return None
    needed = int(np.ceil(recall * positives.size))
    return float(positives[max(needed, 1) - 1])


def curves(labels: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray] | None:
    """ROC (``fpr``, ``tpr``) and PR (``recall``, ``precision``) curves for plotting; None for a single class."""
    if not _both_classes(labels):
        return None
    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    return {"fpr": fpr, "tpr": tpr, "recall": recall, "precision": precision}


# -- region- and track-based detection criteria ------------------------------------------------------------------
DEFAULT_THRESHOLDS = np.linspace(1.01, -0.01, 103)  # the grid of py-ssvad-metrics, for scores in [0, 1]


def gt_track_labels(masks: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` int track ids for a video's GT masks when no track annotation exists: the 3-D connected
    components of the mask volume (8-connected in space, linked to any touching pixel of the previous/next frame)."""
    from scipy.ndimage import label

    labelled, _ = label(np.asarray(masks, bool), structure=np.ones((3, 3, 3), bool))
    return labelled


@dataclass
class _Counts:
    true_regions: np.ndarray  # per threshold: GT regions detected
    false_regions: np.ndarray  # per threshold: predicted regions matching no GT region
    track_hits: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (video, track) -> per thr hits
    track_sizes: dict[tuple[int, int], int] = field(default_factory=dict)


class RegionTrackAccumulator:
    """Region-based (RBDC) and track-based (TBDC) detection criteria of Ramachandra & Jones.

    Per frame and threshold, predicted regions are the 8-connected components of ``score map >= threshold`` and GT
    regions the connected components of the GT mask. A GT region is detected when some predicted region has IoU >=
    ``beta`` (0.1) with it; a predicted region is a false positive when no GT region reaches IoU ``beta`` with it.
    RBDR = detected GT regions / GT regions; a GT track is detected when at least ``alpha`` (0.1) of its regions are;
    TBDR = detected tracks / tracks; the x axis is false-positive regions per frame over all frames. RBDC / TBDC are
    the areas under RBDR / TBDR vs that rate for rates in [0, ``max_fpr``] (1), over a fixed threshold grid (the grid
    of py-ssvad-metrics, against which this is tested; score maps must lie in [0, 1]).
    """

    def __init__(self, thresholds: np.ndarray = DEFAULT_THRESHOLDS, alpha: float = 0.1, beta: float = 0.1):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.alpha, self.beta = alpha, beta
        n = len(self.thresholds)
        self.counts = _Counts(np.zeros(n), np.zeros(n))
        self.gt_regions = 0
        self.frames = 0
        self._videos = 0

    def update(self, gt_masks: np.ndarray, score_maps: np.ndarray, track_labels: np.ndarray | None = None) -> None:
        """Add one video: ``gt_masks`` ``(N, H, W)`` bool, ``score_maps`` ``(N, H, W)`` float in [0, 1] (or a
        sequence yielding ``(H, W)`` maps), optional ``track_labels`` ``(N, H, W)`` int GT track ids (default:
        :func:`gt_track_labels`)."""
        gt_masks = np.asarray(gt_masks, bool)
        if track_labels is None:
            track_labels = gt_track_labels(gt_masks)
        video = self._videos
        self._videos += 1
        for index in range(len(gt_masks)):
            self._frame(video, gt_masks[index], np.asarray(score_maps[index], np.float32), track_labels[index])

    def _frame(self, video: int, gt: np.ndarray, scores: np.ndarray, tracks: np.ndarray) -> None:
        if gt.shape != scores.shape:
            raise ValueError(f"score map shape {scores.shape} differs from the GT mask shape {gt.shape}")
        self.frames += 1
        gt_count, gt_labels = cv2.connectedComponents(gt.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        gt_count -= 1
        self.gt_regions += gt_count
        region_tracks = []
        for k in range(1, gt_count + 1):
            ids = tracks[gt_labels == k]
            ids = ids[ids > 0]
            region_tracks.append(int(np.bincount(ids).argmax()) if ids.size else -k)
        for key in region_tracks:
            self.counts.track_sizes[(video, key)] = self.counts.track_sizes.get((video, key), 0) + 1
        if scores.max(initial=0.0) < self.thresholds.min() and gt_count == 0:
            return
        gt_area = np.bincount(gt_labels.ravel(), minlength=gt_count + 1)
        for t, threshold in enumerate(self.thresholds):
            predicted = scores >= threshold
            if not predicted.any():
                continue
            pred_count, pred_labels = cv2.connectedComponents(predicted.astype(np.uint8), connectivity=8,
                                                              ltype=cv2.CV_32S)
            pred_count -= 1
            if gt_count == 0:
                self.counts.false_regions[t] += pred_count
                continue
            joint = np.bincount(gt_labels.ravel() * (pred_count + 1) + pred_labels.ravel(),
                                minlength=(gt_count + 1) * (pred_count + 1)).reshape(gt_count + 1, pred_count + 1)
            pred_area = joint.sum(axis=0)
            inter = joint[1:, 1:].astype(np.float64)
            union = gt_area[1:, None] + pred_area[None, 1:] - inter
            iou = inter / np.maximum(union, 1)
            matched = iou >= self.beta
            detected = matched.any(axis=1)
            self.counts.true_regions[t] += detected.sum()
            self.counts.false_regions[t] += (~matched.any(axis=0)).sum()
            for k, key in enumerate(region_tracks):
                if detected[k]:
                    hits = self.counts.track_hits.setdefault((video, key), np.zeros(len(self.thresholds)))
                    hits[t] += 1

    def summarize(self, max_fpr: float = 1.0) -> dict[str, float | None | list[float]]:
        """``rbdc``, ``tbdc`` and the curves (``fpr``, ``rbdr``, ``tbdr`` per threshold)."""
        if self.frames == 0 or self.gt_regions == 0:
            return {"rbdc": None, "tbdc": None}
        fpr = self.counts.false_regions / self.frames
        rbdr = self.counts.true_regions / self.gt_regions
        tracks = list(self.counts.track_sizes)
        detected_tracks = np.zeros(len(self.thresholds))
        for key in tracks:
            hits = self.counts.track_hits.get(key, np.zeros(len(self.thresholds)))
            detected_tracks += hits >= self.alpha * self.counts.track_sizes[key]
        tbdr = detected_tracks / len(tracks)
        keep = (fpr >= 0) & (fpr <= max_fpr)
        # The curve is traced as the threshold falls; points of equal rate keep that order (a stable sort).
        order = np.argsort(fpr[keep], kind="stable")
        x = fpr[keep][order]
        rbdc = float(auc(x, rbdr[keep][order])) if keep.sum() >= 2 else None
        tbdc = float(auc(x, tbdr[keep][order])) if keep.sum() >= 2 else None
        return {"rbdc": rbdc, "tbdc": tbdc, "gt_regions": int(self.gt_regions), "gt_tracks": len(tracks),
                "frames": int(self.frames), "fpr": fpr.tolist(), "rbdr": rbdr.tolist(), "tbdr": tbdr.tolist()}


def box_score_map(boxes: np.ndarray, scores: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32 map where each box ``(x1, y1, x2, y2)`` carries its score (overlaps averaged, as
    py-ssvad-metrics does for box predictions); pixels outside every box are 0."""
    total = np.zeros(shape, np.float32)
    count = np.zeros(shape, np.float32)
    height, width = shape
    for (x1, y1, x2, y2), score in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1)):
        x1, y1 = max(int(x1), 0), max(int(y1), 0)
        x2, y2 = min(int(x2), width), min(int(y2), height)
        total[y1:y2, x1:x2] += score
        count[y1:y2, x1:x2] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)
