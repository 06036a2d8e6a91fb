"""Seeded object-centric videos for SSMTL's learning test and demo, with oracle tracks and pixel ground truth.

Pedestrians walk left to right along a path in a static scene (legs swinging, 1.2-2.2 px per frame). Training
videos hold only such walkers. In each test video one anomalous object appears inside a known interval:

- ``backward``: a walker moving right to left with its gait played backwards (the arrow of time is reversed);
- ``jump``: a walker that leaps ahead several times its stride every frame (motion is irregular);
- ``appearance``: an object never seen in training (a bright green cart).

Written under ``root``: ``videos/{train,test}/*.mp4``; ``tracks/<video>.csv`` + ``.json`` in the ``tracks`` stage's
layout (schema ``vad-pipeline/tracks/1``; an oracle detector: exact boxes, confidence 1, class scores
``prob_0`` (person) / ``prob_1`` (other): a walker 0.9 / 0.05, the cart 0.1 / 0.8); ``labels.csv``
(``video,label,split``); ``ground_truth.csv`` (``video,start_frame,end_frame``); ``masks.npz`` (per video
``(N, H, W)`` bool: the anomalous object's box).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..io.atomic import save_csv_atomic, save_json_atomic, save_npz_atomic
from .videos import _background, _draw_person, write_noisy_mp4

ANOMALIES = ("backward", "jump", "appearance")
HEIGHT, WIDTH = 120, 160


@dataclass(frozen=True)
class ObjectVideo:
    """One generated video: its file, split, anomaly kind and anomalous interval ``[start, end)``."""

    path: Path
    split: str
    anomaly: str | None
    interval: tuple[int, int] | None


def _person_box(x: float, y: float, scale: float) -> tuple[float, float, float, float]:
    h = 22 * scale
    return x - 7 * scale, y - h - 6 * scale, x + 7 * scale, y + 1


def _render(path: Path, seed: int, frames: int, anomaly: str | None, interval: tuple[int, int] | None,
            fps: float = 25.0) -> tuple[list[list[float]], np.ndarray]:
    """Write the video; return the oracle track rows and the ``(frames, H, W)`` anomaly masks."""
    rng = np.random.default_rng(seed)
    background = _background(rng, HEIGHT, WIDTH)
    walkers = []
    for index in range(int(rng.integers(2, 4))):
        walkers.append({"id": index + 1, "x": float(rng.uniform(0, WIDTH)), "y": float(rng.uniform(0.66, 0.78) * HEIGHT),
                        "v": float(rng.uniform(1.2, 2.2)), "phase": float(rng.uniform(0, 6.28)),
                        "color": tuple(int(c) for c in rng.choice([[200, 50, 50], [50, 60, 200], [210, 130, 40]])),
                        "scale": float(rng.uniform(1.0, 1.2))})
    start, end = interval if interval else (frames, frames)
    odd = {"id": 99, "y": float(rng.uniform(0.68, 0.76) * HEIGHT), "phase": 0.0, "scale": 1.1,
           "color": (200, 50, 50), "v": float(rng.uniform(1.4, 2.0))}
    rows: list[list[float]] = []
    masks = np.zeros((frames, HEIGHT, WIDTH), bool)

    def add(frame_index: int, track: int, box: tuple[float, ...], probs: tuple[float, float]) -> None:
        x1, y1, x2, y2 = (float(np.clip(v, 0, WIDTH if i % 2 == 0 else HEIGHT)) for i, v in enumerate(box))
        if x2 - x1 >= 6 and y2 - y1 >= 6:
            rows.append([frame_index, track, x1, y1, x2, y2, 1.0, int(probs[1] > probs[0]), *probs])

    def drawn() -> Iterator[np.ndarray]:
        for index in range(frames):
            frame = background.copy()
            for walker in walkers:
                walker["x"] = (walker["x"] + walker["v"]) % (WIDTH + 30)
                walker["phase"] += 0.45
                x = walker["x"] - 15
                _draw_person(frame, x, walker["y"], walker["color"], walker["phase"], walker["scale"])
                add(index, walker["id"], _person_box(x, walker["y"], walker["scale"]), (0.9, 0.05))
            if anomaly and start <= index < end:
                step = index - start
                if anomaly == "backward":
                    x = WIDTH - 10 - step * odd["v"]
                    _draw_person(frame, x, odd["y"], odd["color"], -0.45 * step, odd["scale"])
                    box = _person_box(x, odd["y"], odd["scale"])
                    probs = (0.9, 0.05)
                elif anomaly == "jump":
                    x = 10 + step * 7.0 % (WIDTH - 20)
                    _draw_person(frame, x, odd["y"], odd["color"], 0.45 * step, odd["scale"])
                    box = _person_box(x, odd["y"], odd["scale"])
                    probs = (0.9, 0.05)
                elif anomaly == "appearance":
                    x = 5 + step * odd["v"]
                    y = int(odd["y"])
                    cv2.rectangle(frame, (int(x), y - 18), (int(x) + 30, y - 4), (40, 220, 60), -1)
                    cv2.circle(frame, (int(x) + 6, y - 3), 3, (20, 20, 20), -1)
                    cv2.circle(frame, (int(x) + 24, y - 3), 3, (20, 20, 20), -1)
                    box = (x - 1, y - 19, x + 31, y + 1)
                    probs = (0.1, 0.8)
                else:
                    raise ValueError(f"unknown anomaly {anomaly!r}; choose one of {ANOMALIES}")
                add(index, odd["id"], box, probs)
                x1, y1, x2, y2 = (int(round(v)) for v in box)
                masks[index, max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
            yield frame

    write_noisy_mp4(path, drawn(), fps, WIDTH, HEIGHT, rng)
    return rows, masks


def _write_tracks(folder: Path, video: Path, rows: list[list[float]], frames: int, fps: float) -> None:
    csv_path = folder / f"{video.stem}.csv"

    save_csv_atomic(csv_path, ["frame", "track_id", "x1", "y1", "x2", "y2", "confidence", "class", "prob_0", "prob_1"],
                    ([int(row[0]), int(row[1])] + [f"{v:.2f}" for v in row[2:6]]
                     + [f"{row[6]:.4f}", int(row[7]), f"{row[8]:.4f}", f"{row[9]:.4f}"]
                     for row in sorted(rows, key=lambda r: (r[0], r[1]))))
    save_json_atomic(folder / f"{video.stem}.json", {
        "schema": "vad-pipeline/tracks/1", "video": str(video), "video_id": video.stem, "frames": frames,
        "fps": fps, "width": WIDTH, "height": HEIGHT, "class_names": {"0": "person", "1": "other"},
        "detector": "oracle (synthetic ground-truth boxes)", "detections": len(rows),
    })


def generate_object_dataset(root: Path, train: int = 6, test_per_anomaly: int = 2, frames: int = 64,
                            seed: int = 0) -> list[ObjectVideo]:
    """Write the dataset described in the module docstring under ``root``; return its videos."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    videos: list[ObjectVideo] = []
    all_masks: dict[str, np.ndarray] = {}
    plan = [("train", None)] * train + [("test", kind) for kind in ANOMALIES for _ in range(test_per_anomaly)]
    for number, (split, anomaly) in enumerate(plan):
        name = f"{split}_{number:03d}" + (f"_{anomaly}" if anomaly else "")
        path = root / "videos" / split / f"{name}.mp4"
        interval = None
        if anomaly:
            length = int(rng.integers(frames // 3, frames // 2))
            begin = int(rng.integers(frames // 6, frames - length - frames // 8))
            interval = (begin, begin + length)
        rows, masks = _render(path, seed * 1000 + number, frames, anomaly, interval)
        _write_tracks(root / "tracks", path, rows, frames, 25.0)
        if split == "test":
            all_masks[name] = masks
        videos.append(ObjectVideo(path, split, anomaly, interval))

    save_npz_atomic(root / "masks.npz", all_masks, compressed=True)

    save_csv_atomic(root / "labels.csv", ["video", "label", "split"],
                    ([v.path.stem, "anomaly" if v.anomaly else "normal", v.split] for v in videos))
    save_csv_atomic(root / "ground_truth.csv", ["video", "start_frame", "end_frame"],
                    ([v.path.stem, *v.interval] for v in videos if v.interval))
    (root / "README.json").write_text(json.dumps({"generator": "vad_pipeline.synthetic.objects", "seed": seed,
                                                  "frames": frames, "anomalies": list(ANOMALIES)}, indent=1))
    return videos
