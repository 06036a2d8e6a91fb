"""The standard single-scene protocol for SSMTL: UCSD Ped2 (default), and the same for Avenue / ShanghaiTech /
Ped1 layouts (``--data`` points at any layout ``vad_pipeline.io.datasets`` recognises).

Train on the official training clips (normal only), score every test frame, and report frame-level micro AUC (all
test frames concatenated) and macro AUC (mean over test clips) after the object-centric convention (per-clip
min-max, Gaussian smoothing sigma 3 inside SSMTL), RBDC / TBDC where pixel masks exist, and the per-task
contributions; with ``--ablation`` each task is also trained alone. Everything is cached in ``--workdir``: a
killed run resumes. The authors report Ped2 97.5 micro / 99.8 macro, Avenue 91.5 / 91.9, ShanghaiTech 82.4 / 89.3
(YOLOv3 COCO detector, 64 px crops, full training).

    .venv/bin/python benchmarks/ssmtl_ucsd_ped2.py --data ../shared/data/ucsd-ped2
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _seed_summary(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Every numeric metric over seeds (``report.over_seeds``: mean, population std, values)."""
    from vad_pipeline.postprocess.report import over_seeds

    keys = [k for k, v in per_seed[0].items() if isinstance(v, (int, float)) or v is None]
    return {key: over_seeds([row.get(key) for row in per_seed]) for key in keys}


def _frame_metrics(folder: Path, truth: Any, evaluation: Any) -> dict[str, Any]:
    from vad_pipeline.postprocess.evaluate import evaluate_run, load_run

    metrics = evaluate_run(load_run(folder), truth, evaluation).metrics
    return {"micro_auc": metrics["frame"]["auc"], "macro_auc": metrics["frame"]["macro_auc"],
            "macro_clips": metrics["frame"]["macro_videos"],
            "rbdc": (metrics.get("region") or {}).get("rbdc"), "tbdc": (metrics.get("region") or {}).get("tbdc"),
            "per_task_of_joint_model": {t: {"micro_auc": v["auc"], "macro_auc": v["macro_auc"]}
                                        for t, v in (metrics.get("tasks") or {}).items()}}


def run_protocol(data: Path, workdir: Path, objects: str = "both", imgsz: int | None = None, conf: float = 0.25,
                 crop_size: int = 64, epochs: int = 10, train_stride: int = 1, variant: str = "shallow-narrow",
                 tasks: tuple[str, ...] = ("aot", "mi", "mbp", "kd"), ablation: bool = False,
                 seeds: tuple[int, ...] = (0,), detector: str | None = None, device: str = "auto",
                 sigma: float = 3.0, lr_schedule: str = "constant", mirror: bool = False, precision: str = "auto",
                 progress: bool = True) -> dict[str, Any]:
    """Run the protocol end to end (cached in ``workdir``) and return the results record: coverage diagnostics,
    the two trivial baselines, SSMTL per seed (and per task alone with ``ablation``) with mean and spread."""
    from vad_pipeline.io.datasets import recorded_dataset
    from vad_pipeline.core.devices import cpu_description, resolve_device, resolve_precision
    from vad_pipeline.detectors.tracks import TrackConfig, read_tracks
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.postprocess.evaluate import EvalConfig
    from vad_pipeline.core.frame_scores import smooth
    from vad_pipeline.io.ground_truth import load_many
    from vad_pipeline.postprocess.object_baselines import (Coverage, FrameScores, coverage, frame_difference_energy,
                                                           largest_object_speed, save_frame_run)
    from vad_pipeline.postprocess.report import ReportConfig, write_report
    from vad_pipeline.core.workspace import Workspace

    timings: dict[str, float] = {}
    precision = resolve_precision(precision, resolve_device(device))  # auto: bf16 only where it is native
    workspace = Workspace(workdir)

    # `vad-pipeline extract ROOT --stages tracks --objects ...`: the dataset's clips read where they are (frame
    # folders directly), its split, labels and ground truth recorded in the workspace
    started = time.perf_counter()
    tracks_config = TrackConfig(objects=objects, detector=detector, imgsz=imgsz, conf=conf, progress=progress)
    summary = extract_videos(workspace, [data], ExtractConfig(progress=progress), stages=("tracks",),
                             tracks=tracks_config)
    if not summary.ok:
        raise SystemExit("tracking failed on some clips; see the log")
    tracks_folder = summary.folder
    timings["tracks_s"] = time.perf_counter() - started
    dataset = recorded_dataset(workspace.root)
    assert dataset is not None, f"{data}: not read as a dataset"
    truth_files = [Path(p) for p in dataset["ground_truth"]]
    truth = load_many(truth_files)
    labels = Path(dataset["labels"])
    names = {clip["name"]: Path(clip["source"]) for clip in dataset["clips"] if clip["split"] == "test"}

    # Diagnostics and baselines over the test clips, from the same tracks.
    started = time.perf_counter()
    per_clip: dict[str, dict[str, Any]] = {}
    total = Coverage()
    framediff, speed = [], []
    keys = {clip["name"]: clip["video_id"] for clip in dataset["clips"]}
    for name, video in sorted(names.items()):
        sidecar = tracks_folder / f"{keys[name]}.json"
        meta = json.loads(sidecar.read_text())
        table = read_tracks(sidecar.with_suffix(".csv"))
        table = table if table.size else np.zeros((0, 8))
        gt = truth.get(name)
        frames = int(meta["frames"])
        label = int(gt is not None and gt.frame_labels(frames).any())
        masks = gt.frame_masks(frames) if gt is not None else None
        if masks is not None:
            scale = np.array([masks.shape[2] / meta["width"], masks.shape[1] / meta["height"]] * 2)
            clip = coverage(table[:, 0], table[:, 2:6] * scale, masks)
            total = total + clip
            per_clip[name] = clip.as_dict()
        common = dict(name=name, key=meta["video_id"], label=label, split="test", fps=meta.get("fps"),
                      width=meta["width"], height=meta["height"], source=str(video))
        framediff.append(FrameScores(scores=smooth(frame_difference_energy(video), sigma), **common))
        speed.append(FrameScores(scores=smooth(largest_object_speed(table, frames), sigma), **common))
    evaluation = EvalConfig(frames="video", normalize=True)
    baselines = {
        "frame-difference energy": _frame_metrics(save_frame_run(workspace.root, "baseline-framediff",
                                                                 {"sigma": sigma, "blur": 5}, framediff),
                                                  truth, evaluation),
        "largest object speed": _frame_metrics(save_frame_run(workspace.root, "baseline-speed",
                                                              {"sigma": sigma, "tracks": tracks_folder.name}, speed),
                                               truth, evaluation),
    }
    timings["baselines_s"] = time.perf_counter() - started

    runs = {"all": tasks}
    if ablation:
        runs.update({task: (task,) for task in tasks})
    results: dict[str, Any] = {}
    for label, chosen in runs.items():
        per_seed = []
        for seed in seeds:
            started = time.perf_counter()
            config = SSMTLConfig(tracks_tag=tracks_folder.name, labels=labels, variant=variant, tasks=chosen,
                                 objects=ObjectConfig(size=crop_size), train_stride=train_stride, epochs=epochs,
                                 lr_schedule=lr_schedule, mirror=mirror, precision=precision, seed=seed, sigma=sigma,
                                 device=device,
                                 progress=progress)
            outcome = score_ssmtl(workspace, config)
            train = json.loads((outcome.folder / "train.json").read_text())
            timings[f"ssmtl_{label}_seed{seed}_s"] = time.perf_counter() - started
            row = _frame_metrics(outcome.folder, truth, evaluation)
            row.update(seed=seed, folder=str(outcome.folder), train_objects=train.get("train_objects"),
                       train_seconds=train.get("seconds"), train_objects_per_s=train.get("objects_per_second"),
                       teacher=train.get("teacher"), device=train.get("device"))
            per_seed.append(row)
        results[label] = {"tasks": list(chosen), "seeds": per_seed, "summary": _seed_summary(per_seed)}
    write_report(workspace, ReportConfig(gt=tuple(truth_files), out=workspace.root / "report",
                                                  evaluation=EvalConfig(frames="video", normalize=True)))
    return {
        "dataset": dataset["kind"], "title": dataset["title"], "data": str(Path(data).resolve()),
        "workdir": str(workspace.root),
        "clips": {"train": sum(c["split"] == "train" for c in dataset["clips"]),
                  "test": sum(c["split"] == "test" for c in dataset["clips"])},
        "settings": {"objects": objects, "imgsz": imgsz or "auto", "conf": conf, "crop_size": crop_size,
                     "epochs": epochs, "train_stride": train_stride, "variant": variant, "tasks": list(tasks),
                     "lr_schedule": lr_schedule, "mirror": mirror, "precision": precision, "seeds": list(seeds),
                     "sigma": sigma,
                     "device": device},
        "cpu": cpu_description(),
        "coverage": {"overall": total.as_dict(), "per_clip": per_clip} if per_clip else None,
        "baselines": baselines, "results": results, "timings": timings,
        "report": str(workspace.root / "report" / "index.html"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def print_table(record: dict[str, Any]) -> None:
    """The protocol's table: baselines, then SSMTL runs (mean ± std over seeds), coverage diagnostics."""
    from vad_pipeline.postprocess.report import format_cell, over_seeds

    keys = ("micro_auc", "macro_auc", "rbdc", "tbdc")
    print(f"{'run':<34} " + " ".join(f"{k.replace('_', ' '):>17}" for k in keys))
    for label, row in record["baselines"].items():
        print(f"{'baseline: ' + label:<34} " + " ".join(f"{format_cell(row.get(k), '-'):>17}" for k in keys))
    for label, row in record["results"].items():
        name = (f"ssmtl {label} ({'+'.join(row['tasks'])}; {len(row['seeds'])} "
                f"seed{'s' if len(row['seeds']) > 1 else ''})")
        print(f"{name:<34} " + " ".join(f"{format_cell(row['summary'].get(k), '-'):>17}" for k in keys))
        tasks = row["seeds"][0]["per_task_of_joint_model"] if len(row["tasks"]) > 1 else {}
        for task in tasks:
            micro, macro = (format_cell(over_seeds([s["per_task_of_joint_model"][task][m] for s in row["seeds"]]), "-")
                            for m in ("micro_auc", "macro_auc"))
            print(f"{'  its ' + task + ' score alone':<34} {micro:>17} {macro:>17}")
    if record.get("coverage"):
        overall = record["coverage"]["overall"]
        print(f"coverage: {overall['covered_regions']} of {overall['regions']} anomalous regions covered by an object "
              f"box (>= 50 % of the region) = {overall['region_coverage']:.3f}; anomalous frames with an object "
              f"{overall['anomalous_frame_coverage']:.3f}; {overall['objects_per_frame']:.2f} objects per test frame, "
              f"mean box {100 * overall['mean_box_fraction']:.2f} % of the frame")


def main(argv: list[str] | None = None) -> int:
    from vad_pipeline.models.ssmtl import SSMTLConfig
    from vad_pipeline.core.devices import PRECISION_CHOICES
    from vad_pipeline.models.ssmtl.runner import LR_SCHEDULES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ucsd-ped2")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "results" / "ped2-work")
    parser.add_argument("--objects", choices=("detector", "motion", "both"), default="both")
    parser.add_argument("--imgsz", type=int, default=None, help="detector input size (default: follow the frames)")
    parser.add_argument("--conf", type=float, default=0.25, help="detection confidence threshold")
    parser.add_argument("--detector", default=None, help="ultralytics .pt detector (default: the shipped one)")
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-stride", type=int, default=1, help="objects of every k-th training frame")
    parser.add_argument("--variant", default="shallow-narrow")
    parser.add_argument("--tasks", default="aot,mi,mbp,kd")
    parser.add_argument("--ablation", action="store_true", help="also train each task alone")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=SSMTLConfig.lr_schedule)
    parser.add_argument("--mirror", action="store_true", help="mirrored motion is equally normal (see ssmtl)")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=SSMTLConfig.precision,
                        help="ssmtl training and scoring precision (auto: bf16 where the CPU or GPU has it natively, "
                             "else fp32)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ssmtl_ped2.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    record = run_protocol(args.data, args.workdir, args.objects, args.imgsz, args.conf, args.crop_size, args.epochs,
                          args.train_stride, args.variant, tuple(args.tasks.split(",")), args.ablation,
                          tuple(int(s) for s in args.seeds.split(",")), args.detector, args.device,
                          lr_schedule=args.lr_schedule, mirror=args.mirror, precision=args.precision)
    record["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print_table(record)
    print(f"wall time {record['wall_s']:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
