"""Seeded synthetic surveillance-like videos with known frame-level anomalies, for the demo and the tests.

A static textured scene with a few pedestrians (small figures walking slowly, legs swinging). In an anomalous
video one event happens inside a known frame interval:

- ``runner``: a figure crosses the scene several times faster than anyone walks;
- ``vehicle``: a large bright box drives through the pedestrian area;
- ``fight``: two figures jitter violently in place.

Ground truth is written as CSV (``video,start_frame,end_frame``: 0-based, start inclusive, end exclusive; one row
per anomalous interval, normal videos have no row), and labels as ``video,label,split`` (label ``normal`` or
``anomaly``, split ``train`` or ``test``). ``video`` is the file stem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..io.atomic import save_csv_atomic, write_atomic

EVENTS = ("runner", "vehicle", "fight")


@dataclass(frozen=True)
class SyntheticVideo:
    """One generated file and its ground truth."""

    path: Path
    label: str  # "normal" or "anomaly"
    split: str  # "train" or "test"
    frames: int
    interval: tuple[int, int] | None  # anomalous frames [start, end), None for normal videos
    event: str | None


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    ys = np.linspace(0, 1, height)[:, None]
    base = 90 + 60 * ys + 10 * np.sin(np.linspace(0, 6, width))[None, :]
    texture = rng.normal(0, 6, size=(height, width))
    gray = np.clip(base + texture, 0, 255).astype(np.uint8)
    image = np.stack([gray, gray, (gray * 0.95).astype(np.uint8)], axis=-1)
    cv2.rectangle(image, (0, int(height * 0.55)), (width, int(height * 0.8)), (70, 70, 75), -1)  # the path
    return cv2.GaussianBlur(image, (3, 3), 0)


def _draw_person(frame: np.ndarray, x: float, y: float, color: tuple[int, int, int], phase: float, scale: float) -> None:
    h, w = int(22 * scale), int(8 * scale)
    cx, top = int(x), int(y - h)
    cv2.circle(frame, (cx, top - int(3 * scale)), max(2, int(3 * scale)), (200, 170, 150), -1)
    cv2.rectangle(frame, (cx - w // 2, top), (cx + w // 2, top + int(h * 0.6)), color, -1)
    swing = int(3 * scale * np.sin(phase))
    cv2.line(frame, (cx, top + int(h * 0.6)), (cx - swing, int(y)), (40, 40, 60), max(1, int(2 * scale)))
    cv2.line(frame, (cx, top + int(h * 0.6)), (cx + swing, int(y)), (40, 40, 60), max(1, int(2 * scale)))


def render_video(
    path: Path, seed: int, frames: int = 96, size: tuple[int, int] = (144, 192), fps: float = 25.0,
    event: str | None = None, interval: tuple[int, int] | None = None,
) -> None:
    """Write one seeded video to ``path`` (mp4, MPEG-4 part 2), with ``event`` inside ``interval`` if given."""
    rng = np.random.default_rng(seed)
    height, width = size
    background = _background(rng, height, width)
    walkers = []
    for _ in range(int(rng.integers(2, 5))):
        walkers.append({
            "x": float(rng.uniform(0, width)), "y": float(rng.uniform(0.62, 0.78) * height),
            "v": float(rng.choice([-1, 1]) * rng.uniform(0.6, 1.4)), "phase": float(rng.uniform(0, 6.28)),
            "color": tuple(int(c) for c in rng.integers(60, 200, size=3)), "scale": float(rng.uniform(0.9, 1.2)),
        })
    start, end = interval if interval else (frames, frames)
    direction = float(rng.choice([-1, 1]))
    fighters_x = float(rng.uniform(0.3, 0.7) * width)

    def drawn() -> Iterator[np.ndarray]:
        for index in range(frames):
            frame = background.copy()
            for walker in walkers:
                walker["x"] = (walker["x"] + walker["v"]) % (width + 20)
                walker["phase"] += 0.35
                _draw_person(frame, walker["x"] - 10, walker["y"], walker["color"], walker["phase"], walker["scale"])
            if event and start <= index < end:
                progress = (index - start) / max(1, end - start - 1)
                _draw_event(frame, event, progress, index, direction, fighters_x, rng)
            yield frame

    write_noisy_mp4(path, drawn(), fps, width, height, rng)


def write_noisy_mp4(path: Path, frames: Iterator[np.ndarray], fps: float, width: int, height: int,
                    rng: np.random.Generator) -> None:
    """Write ``frames`` (each ``(height, width, 3)`` RGB) to ``path`` atomically as an mp4v video, each with sensor
    noise of +-3 grey levels drawn from ``rng`` after it is drawn."""
    def write(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write mp4v video on this machine")
        try:
            for frame in frames:
                noisy = np.clip(frame.astype(np.int16) + rng.integers(-3, 4, size=frame.shape), 0, 255)
                writer.write(cv2.cvtColor(noisy.astype(np.uint8), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()

    write_atomic(path, write)


def _draw_event(frame: np.ndarray, event: str, progress: float, index: int, direction: float, fighters_x: float,
                rng: np.random.Generator) -> None:
    height, width = frame.shape[:2]
    travel = progress if direction > 0 else 1 - progress
    if event == "runner":
        x = -10 + travel * (width + 20) * 2.5 % (width + 20)
        _draw_person(frame, x, 0.72 * height, (220, 40, 40), index * 1.3, 1.1)
    elif event == "vehicle":
        x = int(-60 + travel * (width + 120))
        y = int(0.58 * height)
        cv2.rectangle(frame, (x, y), (x + 60, y + 28), (240, 220, 30), -1)
        cv2.circle(frame, (x + 12, y + 28), 6, (20, 20, 20), -1)
        cv2.circle(frame, (x + 48, y + 28), 6, (20, 20, 20), -1)
    elif event == "fight":
        for offset, color in ((-8, (200, 60, 60)), (8, (60, 60, 200))):
            jx, jy = rng.integers(-7, 8, size=2)
            _draw_person(frame, fighters_x + offset + jx, 0.7 * height + jy, color, index * 2.1, 1.1)
    else:
        raise ValueError(f"unknown event {event!r}; choose one of {EVENTS}")


def generate_dataset(
    root: Path, per_class: int = 4, frames: int = 96, seed: int = 0, size: tuple[int, int] = (144, 192),
    test_fraction: float = 0.5,
) -> list[SyntheticVideo]:
    """Write ``per_class`` normal and anomalous videos under ``root/videos/{normal,anomaly}/`` plus
    ``root/labels.csv`` and ``root/ground_truth.csv``; return what was written."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    videos: list[SyntheticVideo] = []
    n_test = max(1, round(per_class * test_fraction)) if per_class > 1 else 0
    for label in ("normal", "anomaly"):
        for number in range(per_class):
            split = "test" if number >= per_class - n_test else "train"
            path = root / "videos" / label / f"{label}_{number:03d}.mp4"
            event, interval = None, None
            if label == "anomaly":
                event = EVENTS[number % len(EVENTS)]
                length = int(rng.integers(frames // 4, frames // 2))
                begin = int(rng.integers(frames // 8, frames - length - frames // 8))
                interval = (begin, begin + length)
            render_video(path, seed=seed * 1000 + len(videos), frames=frames, size=size, event=event,
                         interval=interval)
            videos.append(SyntheticVideo(path, label, split, frames, interval, event))
    write_labels(root / "labels.csv", videos)
    write_ground_truth(root / "ground_truth.csv", videos)
    return videos


def generate_unlabeled(root: Path, count: int = 4, frames: int = 96, seed: int = 0,
                       size: tuple[int, int] = (144, 192)) -> list[SyntheticVideo]:
    """New footage to apply a trained model to: ``count`` videos ``root/videos/clip_<n>.mp4`` whose names and
    folders say nothing of their class (every second one holds an event), and no labels file. The frame ground
    truth is written as ``root/ground_truth.csv`` so that alerts can be checked afterwards."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    videos: list[SyntheticVideo] = []
    for number in range(count):
        event, interval = None, None
        if number % 2:
            event = EVENTS[(number // 2) % len(EVENTS)]
            length = int(rng.integers(frames // 4, frames // 2))
            begin = int(rng.integers(frames // 8, frames - length - frames // 8))
            interval = (begin, begin + length)
        path = root / "videos" / f"clip_{number:03d}.mp4"
        render_video(path, seed=seed * 1000 + 500 + number, frames=frames, size=size, event=event, interval=interval)
        videos.append(SyntheticVideo(path, "anomaly" if event else "normal", "new", frames, interval, event))
    write_ground_truth(root / "ground_truth.csv", videos)
    return videos


def jpeg_frames(video: Path, quality: int = 95) -> list[bytes]:
    """Every frame of ``video`` as JPEG bytes: what an MJPEG camera stream sends (tests and benchmarks serve them)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return frames
            frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    finally:
        capture.release()


def write_labels(path: Path, videos: list[SyntheticVideo]) -> None:
    save_csv_atomic(path, ["video", "label", "split"], ([v.path.stem, v.label, v.split] for v in videos))


def write_ground_truth(path: Path, videos: list[SyntheticVideo]) -> None:
    save_csv_atomic(path, ["video", "start_frame", "end_frame"],
                    ([v.path.stem, *v.interval] for v in videos if v.interval))


@dataclass(frozen=True)
class SyntheticFeatures:
    """One video of generated snippet features with its snippet-level truth."""

    name: str
    features: np.ndarray  # (T, crops, D) float32
    snippet_labels: np.ndarray  # (T,) 0/1
    label: int
    split: str


def synthetic_features(
    n_normal: int = 40, n_anomalous: int = 40, length: tuple[int, int] = (24, 48), dim: int = 64, crops: int = 1,
    shift: float = 1.0, seed: int = 0, test_fraction: float = 0.5,
) -> list[SyntheticFeatures]:
    """Seeded snippet features: temporally correlated Gaussian noise for normal snippets; inside one interval of
    each anomalous video (10-30 % of it) the features are shifted by ``shift`` along one of two fixed anomaly
    directions (a quarter of the dimensions each)."""
    rng = np.random.default_rng(seed)
    directions = np.zeros((2, dim), np.float32)
    for index in range(2):
        chosen = rng.choice(dim, size=max(1, dim // 4), replace=False)
        directions[index, chosen] = 1.0
    videos: list[SyntheticFeatures] = []
    for label, count in ((0, n_normal), (1, n_anomalous)):
        n_test = int(round(count * test_fraction))
        for number in range(count):
            steps = int(rng.integers(length[0], length[1] + 1))
            noise = rng.normal(size=(steps, crops, dim)).astype(np.float32)
            for t in range(1, steps):  # AR(1): neighbouring snippets look alike, as real features do
                noise[t] = 0.7 * noise[t - 1] + 0.71 * noise[t]
            truth = np.zeros(steps, np.int64)
            if label:
                span = int(rng.integers(max(1, steps // 10), max(2, int(steps * 0.3)) + 1))
                start = int(rng.integers(0, steps - span + 1))
                truth[start : start + span] = 1
                noise[start : start + span] += shift * directions[number % 2]
            name = f"{'anomaly' if label else 'normal'}_{number:03d}"
            videos.append(SyntheticFeatures(name, noise, truth, label, "test" if number < n_test else "train"))
    return videos


def write_feature_set(root: Path, videos: list[SyntheticFeatures]) -> tuple[Path, Path]:
    """Write ``root/features/<name>.npy`` and ``root/labels.csv`` (with splits); returns both paths."""
    folder = root / "features"
    folder.mkdir(parents=True, exist_ok=True)
    for video in videos:
        np.save(folder / f"{video.name}.npy", video.features)
    labels = root / "labels.csv"
    save_csv_atomic(labels, ["video", "label", "split"],
                    ([v.name, "anomaly" if v.label else "normal", v.split] for v in videos))
    return folder, labels


def write_feature_ground_truth(path: Path, videos: list[SyntheticFeatures], snippet_frames: int = 16) -> Path:
    """Frame ground truth of synthetic feature videos as ``video,start_frame,end_frame`` (each anomalous video's
    interval, ``snippet_frames`` frames per snippet); normal videos get no row."""
    spans = ((v.name, np.flatnonzero(v.snippet_labels)) for v in videos)
    save_csv_atomic(path, ["video", "start_frame", "end_frame"],
                    ([name, snippet_frames * found[0], snippet_frames * (found[-1] + 1)] for name, found in spans
                     if found.size))
    return path
