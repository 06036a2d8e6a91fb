"""SSMTL on real footage with injected anomalies: does the chain (real detections -> object crops -> four tasks ->
frame scores) react to what each task is meant to catch? This is a plumbing check on two short clips, not a
benchmark of accuracy.

Training: the unmodified clips of ``../shared/data/real-clips`` (normal). Test: a copy of each clip per anomaly,
written losslessly (FFV1):

- ``reversed``: a stretch of frames played backwards (arrow of time);
- ``dropped``: a stretch where only every third frame is kept (motion irregularity);
- ``pasted``: a foreign object (a patch of the other clip) pasted and moved across a stretch (appearance).

Frame labels: the affected output frames. Reports frame-level micro AUC of SSMTL and of each task's score alone.

    .venv/bin/python benchmarks/ssmtl_real_clips.py
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _read(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _write(path: Path, frames: list[np.ndarray], fps: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()


def inject(frames: list[np.ndarray], kind: str, patch: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """One anomalous copy of ``frames`` and its frame labels."""
    n = len(frames)
    start = int(rng.integers(n // 4, n // 2))
    end = min(n, start + max(12, n // 4))
    if kind == "reversed":
        out = frames[:start] + frames[start:end][::-1] + frames[end:]
        labels = np.zeros(len(out), np.uint8)
        labels[start:end] = 1
    elif kind == "dropped":
        kept = frames[start:end:3]
        out = frames[:start] + kept + frames[end:]
        labels = np.zeros(len(out), np.uint8)
        labels[max(0, start - 1) : start + len(kept) + 1] = 1
    elif kind == "pasted":
        out = [f.copy() for f in frames]
        height, width = frames[0].shape[:2]
        ph, pw = patch.shape[:2]
        labels = np.zeros(n, np.uint8)
        for i in range(start, end):
            x = int((i - start) / max(1, end - start - 1) * (width - pw))
            y = int(height * 0.55 - ph / 2)
            out[i][y : y + ph, x : x + pw] = patch
            labels[i] = 1
    else:
        raise ValueError(kind)
    return out, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=REPO.parent / "shared" / "data" / "real-clips")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "results" / "real-clips-work")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ssmtl_real_clips.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from sklearn.metrics import roc_auc_score

    from vad_pipeline.detectors.tracks import TrackConfig
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.core.workspace import Workspace

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    root = args.workdir / "videos"
    sources = sorted(p for p in args.clips.iterdir() if p.suffix == ".mp4")
    decoded = {p.stem: _read(p) for p in sources}
    fps = {p.stem: cv2.VideoCapture(str(p)).get(cv2.CAP_PROP_FPS) or 25.0 for p in sources}
    truth: dict[str, np.ndarray] = {}
    rows = []
    for stem, frames in decoded.items():
        _write(root / "train" / f"train_{stem}.avi", frames, fps[stem])
        rows.append([f"train_{stem}", "normal", "train"])
        other = next(f for s, f in decoded.items() if s != stem)[len(decoded[stem]) // 3]
        oh, ow = other.shape[:2]
        patch = cv2.resize(other[oh // 4 : 3 * oh // 4, ow // 4 : 3 * ow // 4], (frames[0].shape[1] // 5,
                                                                                  frames[0].shape[0] // 4))
        for kind in ("reversed", "dropped", "pasted"):
            out, labels = inject(frames, kind, patch, rng)
            name = f"{stem}_{kind}"
            _write(root / "test" / f"{name}.avi", out, fps[stem])
            truth[name] = labels
            rows.append([name, "anomaly", "test"])
    labels_csv = args.workdir / "labels.csv"
    with open(labels_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "label", "split"])
        writer.writerows(rows)

    workspace = Workspace(args.workdir)
    extract_videos(workspace, [root], ExtractConfig(), stages=("tracks",), tracks=TrackConfig(imgsz=args.imgsz))
    summary = score_ssmtl(workspace, SSMTLConfig(labels=labels_csv, objects=ObjectConfig(size=args.crop_size),
                                                 epochs=args.epochs, seed=args.seed))
    labels_all, scores_all, tasks_all = [], [], {}
    per_video = {}
    for sidecar in sorted(summary.folder.glob("*.json")):
        meta = json.loads(sidecar.read_text())
        if meta.get("split") != "test":
            continue
        scores = np.load(sidecar.with_suffix(".npy"))
        labels = truth[meta["video"]][: len(scores)]
        extras = np.load(summary.folder / f"{meta['key']}.extras.npz")
        labels_all.append(labels)
        scores_all.append(scores)
        for name in extras.files:
            tasks_all.setdefault(name, []).append(extras[name])
        per_video[meta["video"]] = {"auc": float(roc_auc_score(labels, scores)), "objects": meta["objects"],
                                    **{n: float(roc_auc_score(labels, extras[n])) for n in extras.files}}
    y = np.concatenate(labels_all)
    record = {
        "micro_auc": float(roc_auc_score(y, np.concatenate(scores_all))),
        "per_task_micro_auc": {n.removeprefix("task_"): float(roc_auc_score(y, np.concatenate(v)))
                               for n, v in tasks_all.items()},
        "per_video": per_video, "train": json.loads((summary.folder / "train.json").read_text())["history"][-1],
        "wall_s": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"micro AUC {record['micro_auc']:.4f}; per task: "
          + ", ".join(f"{k} {v:.4f}" for k, v in record["per_task_micro_auc"].items()))
    for name, values in per_video.items():
        print(f"  {name:<28} " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in values.items()))
    print(f"wall time {record['wall_s']:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
