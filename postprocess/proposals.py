"""Temporal anomaly proposals from the weighted T-CAM (Panariello et al., ECCVW 2022).

For a video with snippet scores ``lambda_t`` and attention ``a_t``, ``psi_t = lambda_t * a_t`` (methods without
attention use ``psi_t = lambda_t``). ``psi`` is min-max normalised within the video, linearly interpolated to frame
resolution (snippet ``t``'s value sits at its centre frame ``16 t + 7.5``), thresholded (default 0.35), and every run
of frames above the threshold is a candidate; ``largest`` keeps the longest (the paper), ``all`` keeps every one.

A proposal's score is the paper's ``sum_t psi_t / (t_end - t_start - 1)`` with ``t_start`` and ``t_end`` the frames
just outside it, i.e. the mean of the un-normalised ``psi`` over the proposal's frames.

JSON (``proposals/<video>.json`` in a report, schema ``vad-pipeline/proposals/1``): ``{"video", "method",
"threshold", "mode", "proposals": [{"start_frame", "end_frame" (exclusive), "score"}]}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vad_pipeline.core.frame_scores import SNIPPET, minmax

PROPOSALS_SCHEMA = "vad-pipeline/proposals/1"


@dataclass(frozen=True)
class Proposal:
    """Frames ``[start_frame, end_frame)`` and the proposal's score."""

    start_frame: int
    end_frame: int
    score: float

    def to_json(self) -> dict:
        return asdict(self)


def weighted_tcam(scores: np.ndarray, attention: np.ndarray | None = None) -> np.ndarray:
    """``psi = lambda * a`` ``(T,)``; the scores alone when there is no attention."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    return scores if attention is None else scores * np.asarray(attention, dtype=np.float64).reshape(-1)


def frame_curve(values: np.ndarray, num_frames: int, snippet: int = SNIPPET) -> np.ndarray:
    """``(T,)`` snippet values linearly interpolated to ``(num_frames,)`` (ends held constant)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) == 1:
        return np.full(num_frames, values[0])
    centres = np.arange(len(values)) * snippet + (snippet - 1) / 2
    return np.interp(np.arange(num_frames), centres, values)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D mask as ``(start, end)`` with ``end`` exclusive."""
    mask = np.asarray(mask, dtype=bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], mask, [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def tcam_proposals(scores: np.ndarray, attention: np.ndarray | None, num_frames: int, threshold: float = 0.35,
                   mode: str = "largest", snippet: int = SNIPPET) -> list[Proposal]:
    """Temporal proposals of one video (see the module docstring)."""
    if mode not in ("largest", "all"):
        raise ValueError(f"proposal mode must be largest or all, not {mode!r}")
    psi = weighted_tcam(scores, attention)
    if psi.size == 0 or num_frames <= 0:
        return []
    raw = frame_curve(psi, num_frames, snippet)
    normalised = frame_curve(minmax(psi), num_frames, snippet)
    found = [Proposal(s, e, float(raw[s:e].mean())) for s, e in runs(normalised >= threshold)]
    if mode == "largest" and found:
        found = [max(found, key=lambda p: (p.end_frame - p.start_frame, p.score))]
    return found


def proposal_frame_scores(proposals: list[Proposal], num_frames: int) -> np.ndarray:
    """``(num_frames,)``: frames inside a proposal take its score, all others 0 (overlaps keep the highest)."""
    frames = np.zeros(num_frames, np.float64)
    for p in proposals:
        segment = frames[p.start_frame : min(p.end_frame, num_frames)]
        np.maximum(segment, p.score, out=segment)
    return frames
