"""Motion foreground proposals: boxes around whatever moves, for the objects a detector cannot see.

A detector trained on people (the one shipped here) or on COCO misses most of what makes single-scene benchmarks
anomalous: Ped2's cyclists with their bicycles, skaters, carts. Background subtraction sees anything that moves.
Before the first frame, the background model is seeded with the per-pixel median of the video's first ``warmup``
frames (``warm_up``): left to learn from frame 0 on, MOG2 absorbs whatever is in view at the start (on Ped2 many
test clips open with a cyclist in the scene) and for its first frames sees only object edges. Per frame
(processed at ``work_height`` rows, scaled down or up, so every pixel setting is a fixed fraction of the frame): grey, Gaussian blur, OpenCV MOG2 foreground (no shadow class), a morphological opening (removes speckle) then a closing (joins the parts of one object: rider and
bicycle, legs and body), 8-connected components of at least ``min_area`` pixels (and at most ``max_area`` of the frame) -> one box each, in original
pixels, with the component's foreground fraction of its box.

The defaults were chosen on UCSD Ped2's test masks (``benchmarks/ssmtl_ucsd_ped2.py`` prints the coverage) for
coverage *and* tight boxes, since an object crop holding several people hides each one's motion: 95.9 % of its
2,410 anomalous regions get a box holding at least half of them, 8.3 boxes a frame, box widths 21 / 49 px (median
/ 90th percentile). Measured alternatives: no warm-up and a 15 px closing, 89.5 % and 23 / 53 px; warm-up with
MOG2's default variance floor, 99.0 % but 32 / 87 px (blobs of several people), which halved SSMTL's macro AUC;
the shipped person detector, 24 %.

``merge_detections`` joins these proposals with a detector's boxes: a proposal overlapping a detection (IoU >=
``iou``) is the same object and is dropped; the others become objects of the extra class "moving object". Every
object's class-probability vector gains one entry, its foreground fraction, so SSMTL's distillation task sees how
much of each box moves.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vad_pipeline.io.decode import open_video

from .config import MotionConfig

MOVING_CLASS_NAME = "moving object"


class MotionProposer:
    """Stateful per video (the background model learns as frames arrive): call ``propose`` on every frame in order.
    Use a new instance per video."""

    def __init__(self, config: MotionConfig = MotionConfig()):
        self.cfg = config
        self._subtractor = cv2.createBackgroundSubtractorMOG2(history=config.history,
                                                              varThreshold=config.var_threshold, detectShadows=False)
        self._subtractor.setVarMin(config.var_min)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (config.open_kernel,) * 2) if config.open_kernel else None
        self._close = (cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (config.close_kernel,) * 2)
                       if config.close_kernel else None)
        self.foreground: np.ndarray | None = None  # the last frame's mask (work resolution), bool
        self._scale = 1.0

    def _prepare(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Grey, at ``work_height`` rows, blurred."""
        height, width = frame_rgb.shape[:2]
        grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
        # Every frame is processed at work_height rows, smaller ones scaled up too: the kernels and areas below are
        # then the same fraction of the frame on any dataset (Ped1's 158 rows as Ped2's 240 or Avenue's 360).
        self._scale = self.cfg.work_height / height
        if self._scale != 1.0:
            grey = cv2.resize(grey, (max(1, round(width * self._scale)), self.cfg.work_height),
                              interpolation=cv2.INTER_AREA if self._scale < 1.0 else cv2.INTER_LINEAR)
        if self.cfg.blur:
            grey = cv2.GaussianBlur(grey, (self.cfg.blur, self.cfg.blur), 0)
        return grey

    def warm_up(self, frames_rgb: list[np.ndarray]) -> None:
        """Seed the background model with the per-pixel median of ``frames_rgb`` (the video's first frames),
        presented as many times as there are frames."""
        if not frames_rgb:
            return
        median = np.median(np.stack([self._prepare(f) for f in frames_rgb]), axis=0).astype(np.uint8)
        for _ in range(len(frames_rgb)):
            self._subtractor.apply(median)

    def propose(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 RGB -> boxes ``(n, 4)`` float32 x1 y1 x2 y2 in original pixels and the foreground
        fraction of each box ``(n,)``."""
        mask = self._subtractor.apply(self._prepare(frame_rgb))
        if self._open is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        if self._close is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        self.foreground = mask > 0
        count, _, stats, _ = cv2.connectedComponentsWithStats(self.foreground.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        kept = stats[1:][(areas >= self.cfg.min_area) & (areas <= self.cfg.max_area * mask.size)]
        if not len(kept):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        x, y, w, h, area = (kept[:, i].astype(np.float32) for i in range(5))
        boxes = np.stack([x, y, x + w, y + h], axis=1) / self._scale
        return boxes.astype(np.float32), (area / (w * h)).astype(np.float32)

    def moving_fraction(self, boxes: np.ndarray) -> np.ndarray:
        """The fraction of foreground pixels inside each box ``(n, 4)`` (original pixels) of the last frame."""
        if self.foreground is None or not len(boxes):
            return np.zeros(len(boxes), np.float32)
        integral = cv2.integral(self.foreground.astype(np.uint8))  # (h + 1, w + 1)
        rows, cols = self.foreground.shape
        scaled = np.asarray(boxes, np.float64) * self._scale
        x1 = np.clip(np.floor(scaled[:, 0]), 0, cols).astype(int)
        y1 = np.clip(np.floor(scaled[:, 1]), 0, rows).astype(int)
        x2 = np.clip(np.ceil(scaled[:, 2]), 0, cols).astype(int)
        y2 = np.clip(np.ceil(scaled[:, 3]), 0, rows).astype(int)
        inside = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
        area = np.maximum((x2 - x1) * (y2 - y1), 1)
        return (inside / area).astype(np.float32)


def first_frames(video: Path, count: int, decoder: str = "auto") -> list[np.ndarray]:
    """The first ``count`` frames of ``video`` (RGB), for :meth:`MotionProposer.warm_up`."""
    frames: list[np.ndarray] = []
    if count <= 0:
        return frames
    reader = open_video(video, decoder)
    try:
        for chunk in reader.iter_chunks(min(count, 32)):
            frames.extend(np.array(f) for f in chunk[: count - len(frames)])
            if len(frames) >= count:
                break
    finally:
        reader.close()
    return frames


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(len(a), len(b))`` of x1 y1 x2 y2 boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def merge_detections(detections: np.ndarray, probs: np.ndarray, proposals: np.ndarray, moving: np.ndarray,
                     proposal_moving: np.ndarray, config: MotionConfig) -> tuple[np.ndarray, np.ndarray]:
    """One frame's objects for the tracker.

    ``detections`` ``(n, 6)`` x1 y1 x2 y2 conf class with class probabilities ``probs`` ``(n, C)`` and foreground
    fractions ``moving`` ``(n,)``; ``proposals`` ``(m, 4)`` with fractions ``proposal_moving`` ``(m,)``. Returns the
    kept rows ``(k, 6)`` (proposals get ``config.conf`` and class ``C``, "moving object") and their probability
    vectors ``(k, C + 1)`` (the last entry is the foreground fraction)."""
    classes = probs.shape[1] if probs.ndim == 2 else 0
    detections = np.asarray(detections, np.float32).reshape(-1, 6)
    if len(detections) and len(proposals):
        novel = box_iou(proposals, detections[:, :4]).max(axis=1) < config.iou
        proposals, proposal_moving = proposals[novel], proposal_moving[novel]
    rows = np.concatenate([
        detections,
        np.concatenate([proposals, np.full((len(proposals), 1), config.conf, np.float32),
                        np.full((len(proposals), 1), classes, np.float32)], axis=1).reshape(-1, 6),
    ]).astype(np.float32)
    vectors = np.zeros((len(rows), classes + 1), np.float32)
    vectors[: len(detections), :classes] = np.asarray(probs, np.float32).reshape(len(detections), classes)
    vectors[:, classes] = np.concatenate([np.asarray(moving, np.float32).reshape(-1), proposal_moving])
    return rows, vectors


class FrameDifference:
    """How much the whole scene moves: per frame the mean absolute difference (0-255) of its blurred grey image
    (5x5 Gaussian) to the previous frame's. Push frames in order; the first gives None."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None

    def push(self, frame_rgb: np.ndarray) -> float | None:
        grey = cv2.GaussianBlur(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY), (5, 5), 0).astype(np.int16)
        value = None if self._previous is None else float(np.mean(np.abs(grey - self._previous)))
        self._previous = grey
        return value


def frame_motion(video: Path, decoder: str = "auto") -> np.ndarray:
    """``(N,)`` float32: :class:`FrameDifference` of every frame of ``video``, frame 0 taking frame 1's value (a
    one-frame video: 0)."""
    reader = open_video(video, decoder)
    difference, energies = FrameDifference(), []
    try:
        for chunk in reader.iter_chunks(32):
            for frame in chunk:
                value = difference.push(frame)
                if value is not None:
                    energies.append(value)
    finally:
        reader.close()
    if not energies:
        return np.zeros(reader.info.frames and 1, np.float32)
    return np.asarray([energies[0]] + energies, np.float32)

