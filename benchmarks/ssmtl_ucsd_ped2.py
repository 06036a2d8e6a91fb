"""The standard single-scene protocol for SSMTL: UCSD Ped2 (default), and the same for Avenue / ShanghaiTech /
Ped1 layouts (``--data`` points at any layout ``vad_pipeline.datasets`` recognises).

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
import csv
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _labels(path: Path, names: dict[str, Path], truth: Any) -> Path:
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["video", "label", "split"])
        for name in sorted(names):
            if name.startswith("train_"):
                out.writerow([name, "normal", "train"])
            else:
                video = truth.get(name)
                anomalous = video is not None and video.frame_labels().any()
                out.writerow([name, "anomaly" if anomalous else "normal", "test"])
    return path


def run_protocol(data: Path, workdir: Path, imgsz: int = 640, conf: float = 0.25, crop_size: int = 64,
                 epochs: int = 10, train_stride: int = 2, variant: str = "shallow-narrow",
                 tasks: tuple[str, ...] = ("aot", "mi", "mbp", "kd"), ablation: bool = False, seed: int = 0,
                 detector: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the protocol end to end (cached in ``workdir``) and return the results record."""
    from vad_pipeline.datasets import find_layout, materialize, ucsd_mask_archive
    from vad_pipeline.detectors.tracks import TrackConfig
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.postprocess.evaluate import EvalConfig, evaluate
    from vad_pipeline.postprocess.ground_truth import load_many
    from vad_pipeline.postprocess.report import ReportConfig, write_report
    from vad_pipeline.workspace import Workspace

    timings: dict[str, float] = {}
    started = time.perf_counter()
    layout = find_layout(data)
    workspace = Workspace(workdir)
    names = materialize(layout, workspace.root / "imported")
    truth_files = list(layout.ground_truth)
    packed = ucsd_mask_archive(layout, workspace.root / "imported" / "pixel_masks.npz")
    if packed:
        truth_files.append(packed)
    truth = load_many(truth_files)
    labels = _labels(workspace.root / "imported" / "labels.csv", names, truth)
    timings["materialize_s"] = time.perf_counter() - started

    started = time.perf_counter()
    summary = extract_videos(workspace, [workspace.root / "imported"], ExtractConfig(progress=progress),
                             stages=("tracks",), tracks=TrackConfig(detector=detector, imgsz=imgsz, conf=conf,
                                                                    progress=progress))
    if not summary.ok:
        raise SystemExit("tracking failed on some clips; see the log")
    timings["tracks_s"] = time.perf_counter() - started

    runs = {"all": tasks}
    if ablation:
        runs.update({task: (task,) for task in tasks})
    results: dict[str, Any] = {}
    for label, chosen in runs.items():
        started = time.perf_counter()
        config = SSMTLConfig(labels=labels, variant=variant, tasks=chosen, objects=ObjectConfig(size=crop_size),
                             train_stride=train_stride, epochs=epochs, seed=seed, progress=progress)
        outcome = score_ssmtl(workspace, config)
        train = json.loads((outcome.folder / "train.json").read_text())
        timings[f"ssmtl_{label}_s"] = time.perf_counter() - started
        report = write_report(workspace, ReportConfig(gt=tuple(truth_files), out=workspace.root / f"report-{label}",
                                                      evaluation=EvalConfig(frames="video", normalize=True)))
        metrics = report.results[0].metrics
        padded = evaluate(workspace.root, truth_files, EvalConfig(frames="video", normalize=True, single_class="pad"),
                          "latest")[0][0].metrics["frame"]
        results[label] = {
            "tasks": list(chosen), "folder": str(outcome.folder),
            "micro_auc": metrics["frame"]["auc"], "macro_auc": metrics["frame"]["macro_auc"],
            "macro_clips": metrics["frame"]["macro_videos"],
            "macro_auc_padded": padded["macro_auc"], "macro_clips_padded": padded["macro_videos"],
            "rbdc": (metrics.get("region") or {}).get("rbdc"), "tbdc": (metrics.get("region") or {}).get("tbdc"),
            "per_task_of_joint_model": {t: {"micro_auc": v["auc"], "macro_auc": v["macro_auc"]}
                                        for t, v in (metrics.get("tasks") or {}).items()},
            "train_objects": train.get("train_objects"), "train_seconds": train.get("seconds"),
            "train_objects_per_s": train.get("objects_per_second"), "teacher": train.get("teacher"),
            "report": str(workspace.root / f"report-{label}" / "index.html"),
        }
    return {
        "dataset": layout.kind, "data": str(Path(data).resolve()), "workdir": str(workspace.root),
        "clips": {"train": sum(c.split == "train" for c in layout.clips),
                  "test": sum(c.split == "test" for c in layout.clips)},
        "settings": {"imgsz": imgsz, "conf": conf, "crop_size": crop_size, "epochs": epochs,
                     "train_stride": train_stride, "variant": variant, "seed": seed},
        "results": results, "timings": timings,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ucsd-ped2")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "results" / "ped2-work")
    parser.add_argument("--imgsz", type=int, default=640, help="detector input size")
    parser.add_argument("--conf", type=float, default=0.25, help="detection confidence threshold")
    parser.add_argument("--detector", default=None, help="ultralytics .pt detector (default: the shipped one)")
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-stride", type=int, default=2, help="objects of every k-th training frame")
    parser.add_argument("--variant", default="shallow-narrow")
    parser.add_argument("--ablation", action="store_true", help="also train each task alone")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ssmtl_ped2.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    record = run_protocol(args.data, args.workdir, args.imgsz, args.conf, args.crop_size, args.epochs,
                          args.train_stride, args.variant, ablation=args.ablation, seed=args.seed,
                          detector=args.detector)
    record["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"{'run':<6} {'micro AUC':>10} {'macro AUC':>10} {'macro pad':>10} {'RBDC':>10} {'TBDC':>10}")
    for label, row in record["results"].items():
        cells = [row["micro_auc"], row["macro_auc"], row["macro_auc_padded"], row["rbdc"], row["tbdc"]]
        print(f"{label:<6} " + " ".join(f"{v:>10.4f}" if v is not None else f"{'-':>10}" for v in cells))
        for task, values in row["per_task_of_joint_model"].items():
            print(f"  {task:<4} (score of the joint model) micro {values['micro_auc']:.4f} macro {values['macro_auc']:.4f}")
    print(f"wall time {record['wall_s']:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
