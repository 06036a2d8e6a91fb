"""Snippet scores -> frame scores, and the per-video normalisation and smoothing the literature applies."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

SNIPPET = 16


def snippet_to_frames(scores: np.ndarray, num_frames: int | None = None, snippet: int = SNIPPET) -> np.ndarray:
    """``(T,)`` snippet scores -> ``(num_frames,)`` frame scores.

    Snippet ``t`` covers frames ``[16 t, 16 t + 16)`` and each of them takes its score (the public evaluation code's
    ``np.repeat(scores, 16)``). Frames past ``16 T`` (the trailing partial snippet the extractor drops) take the
    last snippet's score; ``num_frames`` shorter than ``16 T`` cuts the expansion. ``num_frames=None`` -> ``16 T``."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    frames = np.repeat(scores, snippet)
    if num_frames is None or num_frames == len(frames):
        return frames
    if num_frames < len(frames):
        return frames[:num_frames]
    tail = scores[-1] if len(scores) else 0.0
    return np.concatenate([frames, np.full(num_frames - len(frames), tail)])


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] within one video (a constant video becomes all zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    return (scores - low) / (high - low) if high > low else np.zeros_like(scores)


def smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    """Temporal Gaussian smoothing (``scipy.ndimage.gaussian_filter1d``, edges repeated); ``sigma <= 0`` is a no-op."""
    scores = np.asarray(scores, dtype=np.float64)
    if sigma <= 0 or scores.size < 2:
        return scores
    return gaussian_filter1d(scores, sigma=sigma, mode="nearest")


def false_alarm_rate(normal_scores: np.ndarray | list[np.ndarray], threshold: float,
                     inclusive: bool = False) -> float | None:
    """The fraction of the normal frames ``normal_scores`` (one ``(N,)`` array or several) that raise an alarm at
    ``threshold``: a score strictly above it, as alerts fire (``inclusive``: at or above it, the convention of a
    threshold chosen for a recall, whose anomalous frames score at or above it); None without normal frames."""
    if isinstance(normal_scores, np.ndarray):
        values = normal_scores.reshape(-1)
    else:
        values = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in normal_scores] or [np.zeros(0)])
    if values.size == 0:
        return None
    return float(np.mean(values >= threshold if inclusive else values > threshold))

