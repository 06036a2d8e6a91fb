"""The weakly supervised methods on UCSD Ped2's weakly supervised split (RTFM / TEVAD's lists), from raw frames,
through the code paths of the three commands:

    vad-pipeline extract ../shared/data/ucsd-ped2 --split weak --stages features   # ten crops, padded tail
    vad-pipeline score --method mil|align|ddl|xel --seed S                          # labels from the split
    vad-pipeline report                                                             # frames: 16 T

10 training clips (6 anomalous, 4 normal; video labels only) and 18 test clips. Frame AUC over the test clips'
16 T frames (``report``'s default convention for snippet features) against the official frame labels, per method:
mean and population spread over the seeds, each with the crops' scores averaged (the public code's way) and with
their maximum (``--crop-pool max``); beside them two trivial baselines on the same test clips (the snippet
feature's L2 norm, crops averaged; frame-difference energy) that need no training.

    .venv/bin/python benchmarks/accuracy.py --suite ped2-weak --seeds 0,1,2
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS: dict[str, dict[str, Any]] = {"mil": {"method": "mil"}, "align": {"method": "align"},
                                      "ddl": {"method": "ddl"}, "xel(mil)": {"method": "xel", "base": "mil"}}
# each again with a snippet scored by its most anomalous crop (``--crop-pool max``) instead of the crops' mean
METHODS |= {f"{label}, crop max": spec | {"crop_pool": "max"} for label, spec in list(METHODS.items())}


def _frame_auc(folder: Path, truth: Any, evaluation: Any) -> dict[str, float | None]:
    from vad_pipeline.postprocess.evaluate import evaluate_run, load_run

    metrics = evaluate_run(load_run(folder), truth, evaluation).metrics
    return {"frame_auc": metrics["frame"]["auc"], "frame_ap": metrics["frame"].get("ap"),
            "video_auc": (metrics.get("video") or {}).get("auc")}


def run_weak(data: Path, workdir: Path, seeds: list[int], precision: str = "auto", epochs: int | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Extract (cached), train and score every method per seed, evaluate; returns the suite's record."""
    from vad_pipeline.io.datasets import recorded_dataset
    from vad_pipeline.core.devices import cpu_description
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.core.frame_scores import snippet_to_frames
    from vad_pipeline.models.data import scan_workspace_features
    from vad_pipeline.models.score import ScoreConfig, score_videos
    from vad_pipeline.postprocess.evaluate import EvalConfig
    from vad_pipeline.io.ground_truth import load_many
    from vad_pipeline.postprocess.object_baselines import FrameScores, frame_difference_energy, save_frame_run
    from vad_pipeline.core.workspace import Workspace

    timings: dict[str, float] = {}
    workspace = Workspace(workdir)
    started = time.perf_counter()
    extracted = extract_videos(workspace, [data], ExtractConfig(crops="ten", tail="pad", precision=precision,
                                                                progress=progress),
                               stages=("features",), split="weak")
    if not extracted.ok:
        raise SystemExit("feature extraction failed on some clips; see the log")
    timings["extract_s"] = time.perf_counter() - started
    dataset = recorded_dataset(workspace.root)
    assert dataset is not None
    truth = load_many([Path(p) for p in dataset["ground_truth"]])
    evaluation = EvalConfig(frames=dataset["evaluation"]["frames"], normalize=dataset["evaluation"]["normalize"])
    labels = Path(dataset["labels"])
    clips = {c["video_id"]: c for c in dataset["clips"]}
    features = {v.key: v for v in scan_workspace_features(extracted.folder) if v.key in clips}

    started = time.perf_counter()
    norm, framediff = [], []
    for key, video in sorted(features.items()):
        clip = clips[key]
        if clip["split"] != "test":
            continue
        snippets = video.load()  # (T, crops, D)
        common = dict(name=clip["name"], key=key, label=clip["label"], split="test", source=clip["source"], fps=25.0)
        frames = 16 * len(snippets)
        norm.append(FrameScores(scores=snippet_to_frames(np.linalg.norm(snippets.mean(axis=1), axis=1), frames),
                                **common))
        energy = frame_difference_energy(Path(clip["source"]))
        framediff.append(FrameScores(scores=np.concatenate([energy, np.full(frames - len(energy), energy[-1])]),
                                     **common))
    baselines = {
        "feature L2 norm": _frame_auc(save_frame_run(workspace.root, "baseline-featnorm", {"crops": "mean"}, norm),
                                      truth, evaluation),
        "frame-difference energy": _frame_auc(save_frame_run(workspace.root, "baseline-framediff", {"blur": 5},
                                                             framediff), truth, evaluation),
    }
    timings["baselines_s"] = time.perf_counter() - started

    from vad_pipeline.postprocess.report import over_seeds

    # rows as the fight suite's ("summary": per row, each metric's mean / std / values over seeds), baselines first
    summary: dict[str, Any] = {f"baseline: {name}": {k: over_seeds([v]) for k, v in row.items()}
                               for name, row in baselines.items()}
    results: dict[str, Any] = {}
    for label, spec in METHODS.items():
        per_seed = []
        for seed in seeds:
            started = time.perf_counter()
            # the methods train in fp32 here, as the figures of record were measured (scores are fp32 anyway)
            config = ScoreConfig(method=spec["method"], base=spec.get("base", "mil"), labels=labels, seed=seed,
                                 epochs=epochs, precision="fp32", crop_pool=spec.get("crop_pool", "mean"),
                                 progress=progress)
            outcome = score_videos(workspace, config)
            row = _frame_auc(outcome.folder, truth, evaluation)
            row.update(seed=seed, folder=str(outcome.folder), seconds=time.perf_counter() - started)
            per_seed.append(row)
        results[label] = per_seed
        summary[label] = {k: over_seeds([r[k] for r in per_seed]) for k in ("frame_auc", "frame_ap", "video_auc")}
    return {"dataset": dataset["title"], "split": dataset["split"], "data": str(Path(data).resolve()),
            "workdir": str(workspace.root), "evaluation": dataset["evaluation"],
            "clips": {"train": sum(c["split"] == "train" for c in dataset["clips"]),
                      "test": sum(c["split"] == "test" for c in dataset["clips"])},
            "features": {"crops": "ten", "tail": "pad", "folder": str(extracted.folder)}, "precision": precision,
            "method_precision": "fp32",
            "cpu": cpu_description(), "seeds": seeds, "summary": summary, "per_seed": results, "timings": timings}


def print_table(record: dict[str, Any]) -> None:
    print(f"{record['dataset']}, {record['split']} split ({record['clips']['train']} training / "
          f"{record['clips']['test']} test clips), frame AUC over 16 T frames")
    for name, row in record["summary"].items():
        auc = row["frame_auc"]
        values = ", ".join(f"{v:.4f}" for v in auc["values"])
        print(f"  {name:<38} {auc['mean']:.4f} ± {auc['std']:.4f}  ({values})")

