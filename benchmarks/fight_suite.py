"""The weakly supervised accuracy suite on real surveillance clips labeled fight / no fight.

1. Every clip (``fight/`` + ``noFight/``, or ``anomaly/`` + ``normal/``) is resampled to one frame rate and size and
   cut to a whole number of 16-frame snippets, written losslessly, and its Kinetics-400 I3D features are extracted
   once (the default backbone, center crop; cached in the workspace).
2. Per seed, the clips are split into disjoint training and test pools (half of each class), and longer videos are
   composed: a normal video is several no-fight clips, an anomalous one has one or two fight clips inserted among
   no-fight clips. Because every clip is a whole number of snippets and I3D snippets do not overlap, a composed
   video's features are exactly its clips' features concatenated, so composition needs no new extraction; frame
   labels are 1 on fight frames.
3. ``mil``, ``align``, ``ddl`` (and its ablation: MIL only, +DR, +DA, both), ``xel`` over ``mil`` are trained on
   the training videos and evaluated on the test videos with ``vad-pipeline report``'s metrics: frame AUC, AP (both
   conventions), video AUC, false-alarm rate at 0.5 on normal test videos; beside them a trivial baseline (each
   snippet's feature L2 norm) so the gain is visible. Mean and standard deviation over the seeds.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger("fight_suite")

SNIPPET = 16
METHODS: dict[str, dict[str, Any]] = {
    "mil": {"method": "mil"},
    "align": {"method": "align"},
    "ddl": {"method": "ddl"},
    "ddl-mil-only": {"method": "ddl", "options": {"lambda_dr": "0", "lambda_da": "0"}},
    "ddl+dr": {"method": "ddl", "options": {"lambda_da": "0"}},
    "ddl+da": {"method": "ddl", "options": {"lambda_dr": "0"}},
    "xel(mil)": {"method": "xel", "base": "mil"},
}
CLASS_FOLDERS = {"fight": 1, "noFight": 0, "anomaly": 1, "normal": 0}


def find_clips(data: Path) -> dict[str, list[Path]]:
    """``{"anomalous": [...], "normal": [...]}`` from the class sub-folders of ``data``."""
    from vad_pipeline.io.decode import VIDEO_EXTENSIONS

    clips: dict[str, list[Path]] = {"anomalous": [], "normal": []}
    for folder, label in CLASS_FOLDERS.items():
        if (data / folder).is_dir():
            files = sorted(p for p in (data / folder).iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            clips["anomalous" if label else "normal"].extend(files)
    if not clips["anomalous"] or not clips["normal"]:
        raise SystemExit(f"{data}: expected clips in fight/ + noFight/ (or anomaly/ + normal/) sub-folders")
    return clips


def normalize_clip(source: Path, target: Path, fps: float, size: tuple[int, int]) -> int:
    """Resample ``source`` to ``fps`` and ``size`` (width, height), keep a whole number of snippets; FFV1 ``.avi``.
    Returns the frames written (0 when the clip is shorter than one snippet)."""
    if target.is_file():
        capture = cv2.VideoCapture(str(target))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return count
    capture = cv2.VideoCapture(str(source))
    native = capture.get(cv2.CAP_PROP_FPS) or fps
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    duration = len(frames) / native
    wanted = int(duration * fps) // SNIPPET * SNIPPET
    if wanted == 0:
        return 0
    picks = np.minimum((np.arange(wanted) * native / fps).round().astype(int), len(frames) - 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".tmp-" + target.name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"FFV1"), fps, size)
    for index in picks:
        writer.write(frames[index])
    writer.release()
    tmp.rename(target)
    return wanted


def compose(pools: dict[str, list[str]], features: dict[str, np.ndarray], count: int, clips_per_video: int,
            rng: np.random.Generator, prefix: str) -> list[dict[str, Any]]:
    """``count`` normal and ``count`` anomalous composed videos of ``clips_per_video`` clips each from the clip
    pools; an anomalous video holds one or two fight clips among no-fight clips (see the module docstring)."""
    videos = []
    for label in (0, 1):
        for number in range(count):
            # every video has clips_per_video clips, so its length says nothing about its label
            fights = min(int(rng.integers(1, 3)), clips_per_video - 1) if label else 0
            normal = rng.choice(pools["normal"], size=clips_per_video - fights,
                                replace=len(pools["normal"]) < clips_per_video - fights)
            parts = [(str(name), 0) for name in normal]
            for name in rng.choice(pools["anomalous"], size=fights, replace=False):
                parts.insert(int(rng.integers(0, len(parts) + 1)), (str(name), 1))
            stacked = np.concatenate([features[name] for name, _ in parts])
            snippet_labels = np.concatenate([np.full(len(features[name]), flag, np.uint8) for name, flag in parts])
            videos.append({"name": f"{prefix}_{'anomaly' if label else 'normal'}_{number:03d}", "label": label,
                           "features": stacked, "snippet_labels": snippet_labels, "clips": [n for n, _ in parts]})
    return videos


def _write_set(folder: Path, train: list[dict], test: list[dict]) -> tuple[Path, Path, Path]:
    features = folder / "features"
    features.mkdir(parents=True, exist_ok=True)
    for video in train + test:
        np.save(features / f"{video['name']}.npy", video["features"])
    labels, truth = folder / "labels.csv", folder / "ground_truth.csv"
    with open(labels, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["video", "label", "split"])
        for split, videos in (("train", train), ("test", test)):
            for video in videos:
                out.writerow([video["name"], "anomaly" if video["label"] else "normal", split])
    with open(truth, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["video", "start_frame", "end_frame"])
        for video in test:
            from vad_pipeline.postprocess.proposals import runs

            for start, end in runs(video["snippet_labels"]):
                out.writerow([video["name"], start * SNIPPET, end * SNIPPET])
    return features, labels, truth


def feature_norm_baseline(test: list[dict]) -> dict[str, float | None]:
    """The trivial baseline: each snippet's feature L2 norm (crops averaged) as its score."""
    from vad_pipeline.postprocess import metrics as m

    frames = [m.VideoFrames(v["name"], np.repeat(v["snippet_labels"], SNIPPET),
                            np.repeat(np.linalg.norm(v["features"].mean(axis=1), axis=1), SNIPPET), v["label"])
              for v in test]
    frame = m.frame_level(frames)
    video = m.video_level([v["label"] for v in test], [float(f.scores.max()) for f in frames])
    return {"frame_auc": frame["auc"], "frame_ap": frame["ap"], "frame_ap_sklearn": frame["ap_sklearn"],
            "video_auc": video["auc"], "false_alarm_rate": None}


def run_suite(data: Path, workdir: Path, seeds: list[int], videos_per_class: int = 20, test_per_class: int = 10,
              clips_per_video: int = 4, fps: float = 25.0, size: tuple[int, int] = (320, 240),
              methods: dict[str, dict[str, Any]] | None = None, precision: str = "fp32",
              progress: bool = True) -> dict[str, Any]:
    """The whole suite (see the module docstring); cached in ``workdir``. ``precision`` is the I3D forward's
    (``fp32`` or ``bf16``: extract's ``--precision``); the splits and composed videos do not depend on it, so two
    runs with different precisions compare the same videos."""
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.models.data import scan_workspace_features
    from vad_pipeline.models.score import ScoreConfig, score_videos
    from vad_pipeline.postprocess.evaluate import EvalConfig
    from vad_pipeline.postprocess.report import ReportConfig, write_report
    from vad_pipeline.core.workspace import Workspace

    methods = methods or METHODS
    timings: dict[str, float] = {}
    started = time.perf_counter()
    clips = find_clips(data)
    normalized = workdir / "clips"
    kept: dict[str, list[str]] = {"anomalous": [], "normal": []}
    for kind, files in clips.items():
        for source in files:
            name = f"{'a' if kind == 'anomalous' else 'n'}_{source.stem}"
            if normalize_clip(source, normalized / kind / f"{name}.avi", fps, size):
                kept[kind].append(name)
    timings["normalize_s"] = time.perf_counter() - started

    started = time.perf_counter()
    workspace = Workspace(workdir / "work")
    summary = extract_videos(workspace, [normalized], ExtractConfig(precision=precision, progress=progress), stages=("features",))
    features = {v.name: v.load() for v in scan_workspace_features(summary.folder)}
    timings["extract_s"] = time.perf_counter() - started
    frames_extracted = sum(len(f) * SNIPPET for f in features.values())

    per_seed = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        pools_train, pools_test = {}, {}
        for kind, names in kept.items():
            order = list(rng.permutation(sorted(n for n in names if n in features)))
            half = len(order) // 2
            pools_train[kind], pools_test[kind] = order[:half], order[half:]
        train = compose(pools_train, features, videos_per_class, clips_per_video, rng, f"s{seed}train")
        test = compose(pools_test, features, test_per_class, clips_per_video, rng, f"s{seed}test")
        assert not ({c for v in train for c in v["clips"]} & {c for v in test for c in v["clips"]})
        folder = workdir / f"seed{seed}"
        feature_dir, labels, truth = _write_set(folder, train, test)
        seed_workspace = Workspace(folder / "work")
        rows: dict[str, dict[str, float | None]] = {"feature-norm baseline": feature_norm_baseline(test)}
        for label, spec in methods.items():
            t0 = time.perf_counter()
            result = score_videos(seed_workspace, ScoreConfig(features=feature_dir, labels=labels, seed=seed,
                                                              progress=False, method=spec["method"],
                                                              base=spec.get("base", "mil"),
                                                              options=dict(spec.get("options", {}))))
            report = write_report(seed_workspace, ReportConfig(gt=(truth,), out=folder / "report" / label,
                                                               runs="all", evaluation=EvalConfig(), max_videos=4))
            metrics = next(r.metrics for r in report.results if r.run.folder == result.folder)
            rows[label] = {"frame_auc": metrics["frame"]["auc"], "frame_ap": metrics["frame"]["ap"],
                           "frame_ap_sklearn": metrics["frame"]["ap_sklearn"], "video_auc": metrics["video"]["auc"],
                           "false_alarm_rate": metrics["false_alarm"]["rate"], "train_s": time.perf_counter() - t0}
            log.info("seed %d %-14s frame AUC %.4f", seed, label, rows[label]["frame_auc"])
        per_seed.append({"seed": seed, "train_videos": len(train), "test_videos": len(test), "rows": rows})

    summary_rows: dict[str, dict[str, Any]] = {}
    for label in per_seed[0]["rows"]:
        summary_rows[label] = {}
        for key in ("frame_auc", "frame_ap", "frame_ap_sklearn", "video_auc", "false_alarm_rate"):
            values = [s["rows"][label][key] for s in per_seed if s["rows"][label][key] is not None]
            summary_rows[label][key] = ({"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}
                                        if values else None)
    baseline = [s["rows"]["feature-norm baseline"]["frame_auc"] for s in per_seed]
    beats = {label: all(s["rows"][label]["frame_auc"] > b for s, b in zip(per_seed, baseline))
             for label in per_seed[0]["rows"] if label != "feature-norm baseline"}
    return {"suite": "fight", "precision": precision, "data": str(Path(data).resolve()), "clips": {k: len(v) for k, v in kept.items()},
            "frames_extracted": frames_extracted, "seeds": seeds, "videos_per_class": videos_per_class,
            "test_per_class": test_per_class, "clips_per_video": clips_per_video, "fps": fps, "size": list(size),
            "summary": summary_rows, "beats_baseline_every_seed": beats, "per_seed": per_seed, "timings": timings}


def print_table(record: dict[str, Any]) -> None:
    def cell(value: dict | None) -> str:
        return f"{value['mean']:.4f} ± {value['std']:.4f}" if value else "–"

    print(f"{'method':<22} {'frame AUC':>17} {'frame AP':>17} {'AP (sklearn)':>17} {'video AUC':>17} {'FAR@0.5':>17}")
    for label, row in record["summary"].items():
        print(f"{label:<22} " + " ".join(f"{cell(row[k]):>17}" for k in ("frame_auc", "frame_ap", "frame_ap_sklearn",
                                                                           "video_auc", "false_alarm_rate")))
    print("beats the feature-norm baseline's frame AUC on every seed: "
          + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in record["beats_baseline_every_seed"].items()))
