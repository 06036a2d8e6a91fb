"""``vad-pipeline demo``: generate a small seeded video set with known anomalies and run every stage on it."""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vad_pipeline.detectors.config import TrackConfig
from vad_pipeline.extractors.config import ExtractConfig

from ..core.workspace import Workspace
from ..synthetic.videos import generate_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Size of the generated sets. 12 videos per class (6 to train on) are what weak supervision needs to find
    every event type: with 4 per class the test split held an event no training video showed and the methods
    scored near chance."""

    per_class: int = 12
    frames: int = 96
    new_videos: int = 4  # unlabeled videos the trained bundles are applied to (`predict`)
    seed: int = 0
    weights: str | None = None  # None: the installed Kinetics-400 I3D (installed on first use)
    device: str = "auto"  # where every model runs: auto (CUDA when available), cpu, cuda or cuda:N
    progress: bool = True


def run_demo(workspace: Workspace, config: DemoConfig) -> int:
    """Generate the videos (once per seed and size), make sure weights exist, extract features and tracks, score with
    every method and write the report. Returns an exit code."""
    from vad_pipeline.extractors.extract import extract_videos

    from ..io.discovery import find_videos

    started = time.perf_counter()
    demo_root = workspace.root / "demo" / f"seed{config.seed}-n{config.per_class}-f{config.frames}"
    if not (demo_root / "ground_truth.csv").is_file():
        log.info("demo: generating %d normal + %d anomalous videos in %s", config.per_class, config.per_class, demo_root)
        generate_dataset(demo_root, per_class=config.per_class, frames=config.frames, seed=config.seed)
    else:
        log.info("demo: reusing the generated videos in %s", demo_root)

    weights = config.weights  # None: the Kinetics-400 I3D, which `extract` installs on first use (and the detector)
    # The demo's frames are 192x144: the detector runs at 320 (about 4x faster than its default 640) on every
    # second frame, which keeps the tracking part of the demo near 1 minute on 2 CPU cores.
    extract = ExtractConfig(weights=weights, device=config.device, progress=config.progress)
    summary = extract_videos(workspace, [demo_root / "videos"], extract, stages=("features",))
    # Person tracks of the test videos, which the report draws (on all of them they would double the demo's time).
    test_videos = [v for v in find_videos([demo_root / "videos"]) if _split_of(demo_root, v) == "test"]
    tracked = extract_videos(workspace, test_videos, extract, stages=("tracks",),
                             tracks=TrackConfig(imgsz=320, frame_stride=2, device=config.device,
                                                progress=config.progress))
    bundles = _score_all(workspace, summary.folder.name if summary.folder else None, demo_root, config)
    _predict_new(workspace, bundles, demo_root, extract, config)
    objects_root = _score_ssmtl(workspace, demo_root, config)
    from vad_pipeline.postprocess.report import ReportConfig, write_report

    truth = (demo_root / "ground_truth.csv", objects_root / "ground_truth.csv", objects_root / "masks.npz")
    report = write_report(workspace, ReportConfig(gt=truth))
    log.info("demo: labels in %s, frame ground truth in %s", demo_root / "labels.csv", demo_root / "ground_truth.csv")
    log.info("demo: finished in %.1f s; open %s (or `vad-pipeline report --open --workdir %s`)",
             time.perf_counter() - started, report.html, workspace.root)
    return 0 if summary.ok and tracked.ok else 1


def _split_of(demo_root: Path, video: Path) -> str | None:
    """The split ``labels.csv`` gives the generated ``video``."""
    with open(demo_root / "labels.csv", newline="") as handle:
        return next((row["split"] for row in csv.DictReader(handle) if row["video"] == video.stem), None)


def _score_ssmtl(workspace: Workspace, demo_root: Path, config: DemoConfig) -> Path:
    """SSMTL on generated object videos with oracle tracks (walkers in training; backward, jumping and unseen
    objects in test): the shipped person detector finds too few of the demo's drawn figures to train on.
    32 px crops and 5 epochs keep it demo-sized. Returns the object videos' folder."""
    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.synthetic.objects import generate_object_dataset

    objects_root = demo_root / "objects"
    if not (objects_root / "ground_truth.csv").is_file():
        # at most 6 training and 2 test videos per anomaly, however many weakly supervised videos there are
        generate_object_dataset(objects_root, train=min(6, config.per_class + 2),
                                test_per_anomaly=min(2, max(1, config.per_class // 2)), seed=config.seed)
    result = score_ssmtl(workspace, SSMTLConfig(tracks=objects_root / "tracks", labels=objects_root / "labels.csv",
                                                objects=ObjectConfig(size=32), epochs=5, seed=config.seed,
                                                device=config.device, progress=config.progress))
    log.info("demo: ssmtl frame scores of the object videos in %s", result.folder)
    return objects_root


def _score_all(workspace: Workspace, features_tag: str | None, demo_root: Path, config: DemoConfig) -> dict[str, Path]:
    """Train and apply every weakly supervised method on the demo's features (split from its labels.csv); returns
    each method's model bundle."""
    from vad_pipeline.models.registry import method_names
    from vad_pipeline.models.score import ScoreConfig, score_videos

    bundles = {}
    for method in method_names():
        result = score_videos(workspace, ScoreConfig(method=method, features_tag=features_tag,
                                                     labels=demo_root / "labels.csv", seed=config.seed,
                                                     device=config.device, progress=config.progress))
        auc = f"{result.video_auc:.3f}" if result.video_auc is not None else "n/a"
        log.info("demo: %-5s scores in %s (video-level ROC-AUC on the demo's test videos: %s)", method,
                 result.folder, auc)
        if result.bundle is not None:
            bundles[method] = result.bundle
    return bundles


def _predict_new(workspace: Workspace, bundles: dict[str, Path], demo_root: Path, extract: Any,
                 config: DemoConfig) -> None:
    """Apply each trained bundle to freshly generated, unlabeled videos, as a user applies a model to new footage;
    say how many alerts fell inside the injected events (their ground truth is known here, never read by predict)."""
    from .predict import PredictConfig, predict
    from ..synthetic.videos import generate_unlabeled

    new_root = demo_root / "new"
    if config.new_videos <= 0:
        return
    if not (new_root / "ground_truth.csv").is_file():
        generate_unlabeled(new_root, count=config.new_videos, frames=config.frames, seed=config.seed + 1)
    with open(new_root / "ground_truth.csv", newline="") as handle:
        events = {row["video"]: (int(row["start_frame"]), int(row["end_frame"])) for row in csv.DictReader(handle)}
    for method, bundle in bundles.items():
        result = predict(workspace, [new_root / "videos"], PredictConfig(model=bundle, progress=config.progress),
                         extract)
        with open(result.out / "alerts.csv", newline="") as handle:
            alerts = list(csv.DictReader(handle))
        inside = sum(1 for a in alerts if Path(a["video"]).stem in events
                     and int(a["start_frame"]) < events[Path(a["video"]).stem][1]
                     and int(a["end_frame"]) >= events[Path(a["video"]).stem][0])
        log.info("demo: %-5s on %d new unlabeled videos: %d alert(s), %d overlapping an injected event -> %s",
                 method, config.new_videos, len(alerts), inside, result.out / "alerts.csv")
