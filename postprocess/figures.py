"""The report's pictures as PNG bytes (matplotlib, headless Agg backend) and frame thumbnails."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vad_pipeline.io.frames import image_files  # noqa: E402

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def score_curves(labels: np.ndarray | None, curves: dict[str, np.ndarray],
                 proposals: dict[str, list[tuple[int, int]]], fps: float | None, title: str,
                 threshold: float | None = None) -> bytes:
    """Frame scores of every method ``{method: (N,)}`` over shaded ground truth, proposals (or alerts) as bars
    beneath, the alarm ``threshold`` as a dashed line."""
    fig, ax = plt.subplots(figsize=(9, 2.6))
    length = max((len(c) for c in curves.values()), default=len(labels) if labels is not None else 0)
    if labels is not None and len(labels):
        ax.fill_between(np.arange(len(labels)), 0, 1, where=labels > 0, step="mid", color="#f4a6a6", alpha=0.6,
                        label="ground truth", linewidth=0)
    for i, (method, scores) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        label = method
        if len(scores) and (scores.min() < 0 or scores.max() > 1):  # unbounded scores (e.g. ssmtl): drawn min-max
            low, high = float(scores.min()), float(scores.max())
            scores = (scores - low) / (high - low) if high > low else np.zeros_like(scores)
            label = f"{method} (min-max scaled)"
        ax.plot(np.arange(len(scores)), scores, color=color, linewidth=1.4, label=label)
        for start, end in proposals.get(method, []):
            y = -0.06 - 0.05 * i
            ax.plot([start, end - 1], [y, y], color=color, linewidth=3, solid_capstyle="butt")
    if threshold is not None:
        ax.axhline(threshold, color="#555", linestyle="--", linewidth=1, label=f"alarm threshold {threshold:.3g}")
    ax.set_xlim(0, max(length - 1, 1))
    ax.set_ylim(-0.08 - 0.05 * len(curves), 1.02)
    ax.set_xlabel("frame" + (f" ({fps:.3g} fps)" if fps else ""))
    ax.set_ylabel("anomaly score")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=7, ncol=min(len(curves) + 1, 6), frameon=False)
    ax.grid(alpha=0.25)
    return _png(fig)


def roc_pr(curves: dict[str, dict[str, np.ndarray]], aucs: dict[str, tuple[float | None, float | None]]) -> bytes:
    """ROC and precision-recall curves of every method side by side."""
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, (method, curve) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        auc_value, ap_value = aucs.get(method, (None, None))
        roc.plot(curve["fpr"], curve["tpr"], color=color,
                 label=f"{method} (AUC {auc_value:.3f})" if auc_value is not None else method)
        pr.plot(curve["recall"], curve["precision"], color=color,
                label=f"{method} (AP {ap_value:.3f})" if ap_value is not None else method)
    roc.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="frame-level ROC", xlim=(0, 1), ylim=(0, 1.01))
    pr.set(xlabel="recall", ylabel="precision", title="frame-level precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    for ax in (roc, pr):
        ax.legend(fontsize=7, loc="lower right" if ax is roc else "lower left")
        ax.grid(alpha=0.25)
    return _png(fig)


def thumbnails(video: Path, count: int = 8, height: int = 72) -> bytes | None:
    """``count`` evenly spaced frames of ``video`` (a file: OpenCV seek; a folder of frames: those images) side by
    side as one PNG; None when unreadable."""
    images = image_files(video) if Path(video).is_dir() else None
    capture = None if images is not None else cv2.VideoCapture(str(video))
    if capture is not None and not capture.isOpened():
        return None
    try:
        total = len(images) if images is not None else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:
            return None
        tiles = []
        for index in np.linspace(0, total - 1, count).round().astype(int):
            if images is not None:
                frame = cv2.imread(str(images[index]), cv2.IMREAD_COLOR)
                ok = frame is not None
            else:
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
                ok, frame = capture.read()
            if not ok:
                continue
            width = max(1, int(frame.shape[1] * height / frame.shape[0]))
            tile = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            cv2.putText(tile, str(index), (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(tile)
    finally:
        if capture is not None:
            capture.release()
    if not tiles:
        return None
    ok, data = cv2.imencode(".png", np.concatenate(tiles, axis=1))
    return data.tobytes() if ok else None


def image_png(image_rgb: np.ndarray) -> bytes:
    """An RGB array as PNG bytes."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cannot encode image")
    return data.tobytes()


def bar_table(rows: dict[str, dict[str, float | None]], title: str) -> bytes:
    """Grouped bars ``{row: {column: value}}`` (e.g. per-task AUC of an ablation)."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    columns = sorted({c for r in rows.values() for c in r})
    width = 0.8 / max(len(rows), 1)
    for i, (name, values) in enumerate(rows.items()):
        heights = [values.get(c) or 0.0 for c in columns]
        ax.bar(np.arange(len(columns)) + i * width, heights, width, label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(np.arange(len(columns)) + width * (len(rows) - 1) / 2, columns)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.25, axis="y")
    return _png(fig)
