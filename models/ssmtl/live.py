"""SSMTL on a live stream (``vad-pipeline watch`` with an SSMTL bundle): frame scores as frames arrive.

Frames go through the tracks stage's online tracker (:class:`~vad_pipeline.detectors.tracks.OnlineTracker`: the
same detector, tracker and motion settings as the bundle's tracks spec). An object seen at frame ``c`` needs its
window of ``2h + 1`` frames (``h`` = half the object window, 6 by default): frame ``c`` is scored once frame
``c + h`` has arrived (at the stream's start the window is shifted inside it, as offline). Its objects' crops,
teacher features and task scores are those of :mod:`.apply`; the frame takes the maximum over its objects (the
``floor`` without any), and the temporal Gaussian smoothing needs ``r`` = 4 sigma (12 frames) of the frames after
it, so a frame's score comes out ``h + r`` frames after it arrived (18 frames, 0.72 s at 25 frames/s, plus the
compute). At the stream's end the rest is scored with the windows and smoothing edges of an offline run, so a file
watched live gets the frame scores ``predict`` writes (within float rounding of batching).

Memory is bounded: the last ``2h + 1`` frames, the objects of the frames not yet scored and ``4r + 2`` pooled
scores.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vad_pipeline.detectors.crops import crop_box, window_start
from vad_pipeline.detectors.flow import FlowConfig, FlowField, box_velocities, grey
from vad_pipeline.detectors.motion import FrameDifference

from .apply import SSMTLModel
from .objects import VideoObjects
from .teacher import Teacher

SMOOTHING_TRUNCATE = 4.0  # scipy's gaussian_filter1d default, as offline smoothing uses


class LiveObjectScorer:
    """Push ``(index, arrival, frame)`` in order; get ``(frame index, score, arrival)`` of every frame scored."""

    def __init__(self, model: SSMTLModel, teacher: Teacher, tracker: Any):
        options = model.options
        self.model, self.teacher, self.tracker = model, teacher, tracker
        self.half = options.objects.window // 2
        self.size, self.min_box = options.objects.size, options.objects.min_box
        self.sigma = options.sigma
        self.radius = int(SMOOTHING_TRUNCATE * self.sigma + 0.5) if self.sigma > 0 else 0
        self.frames: dict[int, np.ndarray] = {}
        self.rows: dict[int, np.ndarray] = {}
        self.arrivals: dict[int, float] = {}
        self.pooled: deque = deque(maxlen=4 * self.radius + 2)  # (index, pooled score)
        self.next_center = 0
        self.next_emit = 0
        self.last = -1
        self.flow, self.flow_config = FlowField(), FlowConfig()
        self.flows: dict[int, np.ndarray] = {}  # flow (j-1 -> j) by j, for the frames still to be scored
        self.difference = FrameDifference()
        self.motion: dict[int, float] = {}  # each frame's motion energy, for the frames still to be scored

    def push(self, index: int, arrival: float, frame: np.ndarray) -> list[tuple[int, float, float]]:
        self.arrivals[index] = arrival
        out = []
        for tracked, image, rows in self.tracker.push(index, frame):  # several at once after the motion warm-up
            self._add(tracked, image, rows)
            out += self._emit(final=False)
        return out

    def flush(self) -> list[tuple[int, float, float]]:
        """The stream ended: score and emit every frame still waiting (the offline edges)."""
        out = []
        for tracked, image, rows in self.tracker.flush():
            self._add(tracked, image, rows)
            out += self._emit(final=False)
        while self.next_center <= self.last:
            self._score(self.next_center, window_start(self.next_center, self.half, self.last))
            self.next_center += 1
            out += self._emit(final=False)
        return out + self._emit(final=True)

    def _add(self, index: int, frame: np.ndarray, rows: np.ndarray) -> None:
        self.frames[index], self.rows[index], self.last = frame, rows, index
        energy = self.difference.push(frame)
        if energy is not None:
            self.motion[index] = energy
            self.motion.setdefault(0, energy)  # frame 0 takes frame 1's, as offline
        while self.next_center <= index and window_start(self.next_center, self.half) + 2 * self.half <= index:
            self._score(self.next_center, window_start(self.next_center, self.half))
            self.next_center += 1
        for old in [i for i in self.frames if i < index - 2 * self.half]:  # the last 2h + 1 frames: every window
            del self.frames[old]  # still to cut starts there or later, the stream's end's shifted ones included

    def _score(self, center: int, first: int) -> None:
        """Pool the object scores of frame ``center`` (its window starts at ``first``)."""
        rows = self.rows.pop(center)
        boxes = rows[:, 1:5]
        smallest = self.min_box * self.frames[center].shape[0]  # a fraction of the frame height, as offline
        kept = (boxes[:, 2] - boxes[:, 0] >= smallest) & (boxes[:, 3] - boxes[:, 1] >= smallest)
        rows = rows[kept]
        scales = self.model.scales
        motion = np.array([self.motion.pop(center, 0.0)])
        if not len(rows):
            self.pooled.append((center, float(self.model.blend(np.array([scales["floor"]]), motion)[0])))
            return
        window = [self.frames[min(i, self.last)] for i in range(first, first + 2 * self.half + 1)]
        crops = np.stack([np.stack([crop_box(image, tuple(row[1:5]), self.size) for image in window])
                          for row in rows])
        probs = rows[:, 7:] if rows.shape[1] > 7 else np.ones((len(rows), 1))
        objects = VideoObjects(crops, np.full(len(rows), center), rows[:, 0].astype(np.int64),
                               rows[:, 1:5].astype(np.float32), probs.astype(np.float32),
                               self.teacher.features(crops[:, self.half]), self._velocities(center, rows[:, 1:5]),
                               (0, *self.frames[center].shape[:2]))
        pooled = np.array([self.model.object_scores(objects)[0].max()])
        self.pooled.append((center, float(self.model.blend(pooled, motion)[0])))

    def _velocities(self, center: int, boxes: np.ndarray) -> np.ndarray:
        """The objects' velocities at ``center`` from the flows around it (``FlowConfig.span`` each side), as
        offline; each flow is computed once and kept while a later frame still needs it."""
        span = self.flow_config.span
        for j in [j for j in self.flows if j <= center - span]:
            del self.flows[j]
        flows = []
        for j in range(center - span + 1, center + span + 1):
            if j not in self.flows and j - 1 in self.frames and j in self.frames and j <= self.last:
                self.flows[j] = self.flow(grey(self.frames[j - 1], self.flow_config),
                                          grey(self.frames[j], self.flow_config))
            if j in self.flows:
                flows.append(self.flows[j])
        return box_velocities(flows, boxes, self.frames[center].shape[0], self.flow_config)

    def _emit(self, final: bool) -> list[tuple[int, float, float]]:
        """The smoothed scores of the frames whose smoothing window is complete (all of them at the end)."""
        if not self.pooled:
            return []
        scored_until = self.pooled[-1][0]
        ready_until = scored_until if final else scored_until - self.radius
        if ready_until < self.next_emit:
            return []
        indices = np.array([i for i, _ in self.pooled])
        values = np.array([v for _, v in self.pooled], np.float64)
        smoothed = (gaussian_filter1d(values, self.sigma, mode="nearest", truncate=SMOOTHING_TRUNCATE)
                    if self.sigma > 0 and len(values) > 1 else values)
        out = []
        for position in np.flatnonzero((indices >= self.next_emit) & (indices <= ready_until)):
            frame = int(indices[position])
            out.append((frame, float(smoothed[position]), self.arrivals.pop(frame, float("nan"))))
        self.next_emit = ready_until + 1
        return out
