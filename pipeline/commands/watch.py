"""``vad-pipeline watch``: score a live stream with a model bundle, snippet by snippet, as frames arrive.

Sources (through OpenCV / FFmpeg): a video file (``--realtime`` plays it at its frame rate; its end ends the run),
a camera index (``0``), or an ``rtsp://`` / ``http(s)://`` URL. A reader thread takes frames as they come (their
arrival time is when the reader got them); every ``snippet_frames`` (16) frames make a snippet, whose features
(the bundle's backbone and crops) join a rolling window of the last ``context`` snippets; the method scores the
window and the newest snippet's score is emitted. For per-snippet methods (``mil``) this equals offline scoring;
temporal ones (``align``, ``ddl``) see ``context`` snippets of past instead of the whole video. An SSMTL bundle
tracks objects online and scores every frame (:mod:`vad_pipeline.models.ssmtl.live`): a frame's score comes half an
object window plus the smoothing radius after it (18 frames by default), and equals ``predict``'s.

Standard output: one JSON line per scored snippet (``{"event": "score", "time", "snippet", "start_frame",
"end_frame", "score", "latency_ms"}``: wall-clock ISO time, frames of the snippet, latency from the arrival of its
last frame to its score; SSMTL: one per frame, ``"frame"`` instead of ``"snippet"``, latency from that frame's
arrival), one when an alert starts (``"alert"``: ``start_frame``, ``score``, ``threshold``) and one
when it ends (``"alert_end"``: ``start_frame``, ``end_frame``, ``peak_frame``, ``peak_score``, ``clip`` when kept),
and at the end (the source's end, Ctrl-C or SIGTERM) a ``"summary"`` line: ``frames``, ``scores`` and ``unit``
(``snippet``, also given as ``snippets``, or ``frame``), ``alerts``,
``latency_ms`` p50 / p95, ``fps`` (sustained: frames scored per second of wall time), ``reconnects``.

Memory stays flat on an endless stream: the frame queue, the snippet window, the clip buffer and the latency
sample are bounded. A dropped stream (not a file) is reopened with exponential backoff, said on stderr; after
``retries`` failed attempts in a row the run ends. ``--out DIR`` keeps a clip (mp4) around each alert:
``clip_seconds`` before it, the alert, and ``clip_seconds`` after.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vad_pipeline.extractors.config import ExtractConfig

from ..core.workspace import Workspace
from ..errors import UserError

log = logging.getLogger(__name__)

LATENCY_SAMPLE = 10_000  # latencies kept for the percentiles (the most recent ones)


@dataclass(frozen=True)
class WatchConfig:
    """Options of ``vad-pipeline watch``."""

    model: Path | None = None
    threshold: float | None = None  # None: the bundle's calibrated alarm threshold
    realtime: bool = False  # a file: deliver frames at its frame rate, as a camera would
    out: Path | None = None  # keep a clip around each alert here
    context: int = 32  # snippets of past the method sees (temporal methods)
    clip_seconds: float = 2.0  # kept before and after each alert
    retries: int = 5  # reopen a dropped stream this many times in a row (backoff 0.5 s, doubling, at most 8 s)
    queue_frames: int = 256  # frames read ahead of the model at most
    fps: float | None = None  # a folder of frames: its frame rate (None: 25)


@dataclass
class WatchSummary:
    """What a run did: ``scores`` score events, one per ``unit`` (a snippet, or a frame for SSMTL)."""

    frames: int
    scores: int
    alerts: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    fps: float
    reconnects: int
    clips: list[Path]
    unit: str = "snippet"


def parse_source(source: str) -> tuple[Any, bool]:
    """``source`` as OpenCV opens it, and whether it is a live stream (reopened when it drops) rather than a file."""
    if source.isdigit():
        return int(source), True
    if "://" in source:
        return source, True
    path = Path(source)
    if not path.is_file() and not path.is_dir():
        raise UserError(f"{source}: no such file; pass a video file, a folder of frames, a camera index or an "
                        "rtsp:// / http:// URL")
    return str(path), False


class _FolderCapture:
    """A folder of frames (:mod:`vad_pipeline.io.frames`) behind the part of ``cv2.VideoCapture`` the reader uses."""

    def __init__(self, folder: str, fps: float | None):
        import cv2

        from ..io.frames import FrameFolderReader

        self._reader = FrameFolderReader(Path(folder), fps)
        self._chunks = self._reader.iter_chunks(16)
        self._pending: list = []
        self._to_bgr = lambda frame: cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def get(self, _property: int) -> float:
        return self._reader.info.fps

    def read(self) -> tuple[bool, Any]:
        if not self._pending:
            try:
                chunk = next(self._chunks, None)
            except UserError as exc:  # an unreadable frame: the stream ends there, with one line
                log.error("%s", exc)
                return False, None
            if chunk is None:
                return False, None
            self._pending = list(chunk)[::-1]
        return True, self._to_bgr(self._pending.pop())

    def release(self) -> None:
        self._reader.close()


class FrameSource:
    """Frames of a source in a reader thread: ``(index, arrival time, RGB frame)`` items in a bounded queue,
    ``None`` at the end. Reopens a dropped live stream with backoff."""

    def __init__(self, source: str, config: WatchConfig):
        self.target, self.live = parse_source(source)
        self.source = source
        self.config = config
        self.queue: queue.Queue = queue.Queue(maxsize=config.queue_frames)
        self.stop = threading.Event()
        self.reconnects = 0
        self.fps = 25.0
        self.error: str | None = None
        capture = self._open()
        if capture is None:
            raise UserError(f"{source}: cannot be opened (not a video, a camera or a reachable stream)")
        self.fps = capture.get(5) or 25.0  # cv2.CAP_PROP_FPS
        self._thread = threading.Thread(target=self._read, args=(capture,), name="vad-watch-reader", daemon=True)
        self._thread.start()

    def _open(self) -> Any:
        import cv2

        if isinstance(self.target, str) and Path(self.target).is_dir():
            return _FolderCapture(self.target, self.config.fps)
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def _read(self, capture: Any) -> None:
        import cv2

        index, started, failures = 0, time.monotonic(), 0
        try:
            while not self.stop.is_set():
                if self.config.realtime and not self.live:
                    delay = started + index / self.fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                ok, frame = capture.read()
                if not ok:
                    capture.release()
                    if not self.live:
                        break
                    capture = None
                    while capture is None and failures < self.config.retries and not self.stop.is_set():
                        wait = min(8.0, 0.5 * 2 ** failures)
                        failures += 1
                        log.warning("watch: %s dropped; reopening in %.1f s (attempt %d of %d)", self.source, wait,
                                    failures, self.config.retries)
                        time.sleep(wait)
                        capture = self._open()
                    if capture is None:
                        self.error = f"{self.source}: stream lost after {failures} attempt(s) to reopen it"
                        break
                    self.reconnects += 1
                    continue
                failures = 0
                item = (index, time.monotonic(), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                while not self.stop.is_set():
                    try:
                        self.queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                index += 1
        finally:
            if capture is not None:
                capture.release()
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self.queue.put(None, timeout=0.2)
                return
            except queue.Full:
                if self.stop.is_set():
                    try:
                        self.queue.get_nowait()
                    except queue.Empty:
                        pass

    def frames(self):
        """Yield ``(index, arrival, frame)`` until the source ends."""
        while True:
            item = self.queue.get()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)


class ClipKeeper:
    """The last ``clip_seconds`` of frames, and the mp4 clip of the alert in progress (``--out``)."""

    def __init__(self, folder: Path | None, fps: float, seconds: float):
        self.folder = folder
        self.fps = fps
        self.buffer: deque = deque(maxlen=max(1, int(round(seconds * fps))))
        self.after = max(0, int(round(seconds * fps)))
        self.writer: Any = None
        self.path: Path | None = None
        self.remaining: int | None = None  # frames still to write after the alert ended
        self.kept: list[Path] = []

    def add(self, index: int, frame: np.ndarray) -> None:
        if self.folder is None:
            return
        if self.writer is not None:
            self.writer.write(frame[..., ::-1])
            if self.remaining is not None:
                self.remaining -= 1
                if self.remaining <= 0:
                    self._close()
        else:
            self.buffer.append(frame)

    def start(self, start_frame: int) -> Path | None:
        if self.folder is None:
            return None
        import cv2

        if self.writer is not None:  # the previous alert's tail is still being written: it becomes this clip
            self.remaining = None
            return self.path
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"alert-{start_frame:09d}.mp4"
        height, width = self.buffer[-1].shape[:2] if self.buffer else (0, 0)
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
        for frame in self.buffer:
            self.writer.write(frame[..., ::-1])
        self.buffer.clear()
        self.remaining = None
        return self.path

    def end(self) -> None:
        if self.writer is not None:
            self.remaining = self.after
            if self.remaining <= 0:
                self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            if self.path is not None:
                self.kept.append(self.path)
        self.writer, self.remaining = None, None

    def close(self) -> None:
        self._close()


def watch(workspace: Workspace, source: str, config: WatchConfig, extract: Any = None,
          emit: Callable[[dict[str, Any]], None] | None = None) -> WatchSummary:
    """Score ``source`` live with the bundle ``config.model``; see the module docstring. ``emit`` receives each
    JSON event (default: printed on stdout)."""
    from vad_pipeline.models.bundle import load_bundle
    from vad_pipeline.models.kinds import kind_of

    emit = emit or (lambda event: print(json.dumps(event), flush=True))
    if config.model is None:
        raise UserError("watch: --model BUNDLE is required (made by `vad-pipeline train`)")
    if config.context < 1:
        raise UserError(f"--context {config.context}: at least 1 snippet")
    bundle = load_bundle(config.model)
    extract = extract or ExtractConfig(progress=False)
    parse_source(source)  # a missing file is one line before any model loads
    scorer = kind_of(bundle.method).live_scorer(workspace, bundle, config.model, config.context, extract)
    reader = FrameSource(source, config)  # frames arrive from now on: the models are ready
    threshold = bundle.threshold if config.threshold is None else float(config.threshold)
    clips = ClipKeeper(config.out, reader.fps, config.clip_seconds)
    latencies: deque = deque(maxlen=LATENCY_SAMPLE)
    frames = scored = alerts = 0
    last_end_frame = -1
    alert: dict[str, Any] | None = None
    first_arrival: float | None = None
    finished = time.monotonic()
    log.info("watch: %s with %s (threshold %.4f), %s, one score per %s", source, bundle.method, threshold,
             "live stream" if reader.live else ("a file in real time" if config.realtime else "a file"), scorer.unit)

    def record(start_frame: int, end_frame: int, score: float, since: float) -> None:
        nonlocal finished, scored, alerts, alert, last_end_frame
        finished = time.monotonic()
        latency = (finished - since) * 1000.0
        latencies.append(latency)
        last_end_frame = end_frame
        emit({"event": "score", "time": _now(), scorer.unit: scored if scorer.unit == "snippet" else start_frame,
              "start_frame": start_frame, "end_frame": end_frame, "score": round(score, 6),
              "latency_ms": round(latency, 1)})
        scored += 1
        if score > threshold and alert is None:
            alerts += 1
            alert = {"start_frame": start_frame, "peak_frame": start_frame, "peak_score": score,
                     "clip": clips.start(start_frame)}
            emit({"event": "alert", "time": _now(), "start_frame": start_frame, "score": round(score, 6),
                  "threshold": threshold})
        elif alert is not None and score > threshold and score > alert["peak_score"]:
            alert.update(peak_frame=start_frame, peak_score=score)
        elif alert is not None and score <= threshold:
            _end_alert(emit, alert, start_frame - 1)
            clips.end()
            alert = None

    try:
        for index, arrival, frame in reader.frames():
            first_arrival = arrival if first_arrival is None else first_arrival
            frames += 1
            clips.add(index, frame)
            for item in scorer.push(index, arrival, frame):
                record(*item)
        for item in scorer.flush():
            record(*item)
    except KeyboardInterrupt:
        log.info("watch: interrupted; stopping")
    finally:
        reader.close()
        if alert is not None:
            _end_alert(emit, alert, last_end_frame)
        clips.close()
    if reader.error:
        log.error("%s", reader.error)
    seconds = max(1e-9, finished - first_arrival) if first_arrival is not None else 0.0
    p50, p95 = (np.percentile(list(latencies), [50, 95]).tolist() if latencies else (None, None))
    summary = WatchSummary(frames, scored, alerts, p50, p95, frames / seconds if seconds else 0.0,
                           reader.reconnects, clips.kept, scorer.unit)
    emit({"event": "summary", "time": _now(), "frames": frames, "scores": scored, "unit": scorer.unit,
          **({"snippets": scored} if scorer.unit == "snippet" else {}), "alerts": alerts,
          "latency_ms": {"p50": None if p50 is None else round(p50, 1), "p95": None if p95 is None else round(p95, 1)},
          "fps": round(summary.fps, 2), "reconnects": reader.reconnects, "clips": [str(p) for p in clips.kept]})
    log.info("watch: %d frames, %d %s scores, %d alert(s); latency p50 %s ms, p95 %s ms; %.1f frames/s sustained",
             frames, scored, scorer.unit, alerts, "-" if p50 is None else f"{p50:.0f}",
             "-" if p95 is None else f"{p95:.0f}", summary.fps)
    return summary


def _end_alert(emit: Callable[[dict[str, Any]], None], alert: dict[str, Any], end_frame: int) -> None:
    emit({"event": "alert_end", "time": _now(), "start_frame": alert["start_frame"], "end_frame": end_frame,
          "peak_frame": alert["peak_frame"], "peak_score": round(alert["peak_score"], 6),
          "clip": str(alert["clip"]) if alert.get("clip") else None})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
