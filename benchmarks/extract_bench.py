"""Decode and extract throughput, with peak memory, on one video.

Rows:
- decode/decord-cpu, decode/opencv: frames/s reading every frame of the video (RGB uint8), best of --repeats.
- extract/pipeline: the `features` stage end to end on the video (decode + resize + crop + model + write),
  frames/s = video frames / wall time, after a warm-up forward.
- extract/bare-forward: the same backbone's forward alone on identical preprocessed batches (batch-size
  snippets x crops, 16x224x224), frames/s = 16 * snippets / time.
Each row runs in its own subprocess; peak RSS is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def phase_decode(video: Path, decoder: str, repeats: int) -> dict:
    from vad_pipeline.decode import open_video

    best = float("inf")
    frames = 0
    for _ in range(repeats):
        reader = open_video(video, decoder)
        started = time.perf_counter()
        frames = sum(len(chunk) for chunk in reader.iter_chunks(64))
        best = min(best, time.perf_counter() - started)
        reader.close()
    return {"frames": frames, "seconds": best, "fps": frames / best}


def phase_extract(video: Path, weights: str | None, crops: str, batch: int, backbone: str) -> dict:
    import numpy as np

    from vad_pipeline.extractors.extract import ExtractConfig, FeatureStage
    from vad_pipeline.extractors.preprocess import CROP_MODES
    from vad_pipeline.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        stage = FeatureStage(ExtractConfig(backbone=backbone, weights=weights, crops=crops, batch_size=batch,
                                           progress=False), workspace)
        stage.prepare()
        ref = workspace.video_ref(video)
        folder = Path(tmp) / "out"
        warm = np.zeros((1, CROP_MODES[crops], 16, 224, 224, 3), np.uint8)
        stage._forward(warm)  # one warm-up forward (allocator, kernels)
        started = time.perf_counter()
        detail = stage.run(ref, folder)
        seconds = time.perf_counter() - started
    return {"frames": detail["frames"], "snippets": detail["T"], "seconds": seconds,
            "fps": detail["frames"] / seconds, "fps_snippet_frames": 16 * detail["T"] / seconds}


def phase_forward(video: Path, weights: str | None, crops: str, batch: int, backbone: str) -> dict:
    from vad_pipeline.decode import open_video
    from vad_pipeline.extractors.extract import ExtractConfig, FeatureStage
    from vad_pipeline.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        stage = FeatureStage(ExtractConfig(backbone=backbone, weights=weights, crops=crops, batch_size=batch,
                                           progress=False), Workspace(Path(tmp)))
        stage.prepare()
        reader = open_video(video)
        full = reader.info.frames // 16
        batches = list(stage._snippet_batches(reader, full))  # preprocessed in advance: model time only
        stage._forward(batches[0][1])  # warm-up
        started = time.perf_counter()
        for _, clips in batches:
            stage._forward(clips)
        seconds = time.perf_counter() - started
    return {"snippets": full, "seconds": seconds, "fps": 16 * full / seconds}


def run_phase(argv: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, "--phase", *argv], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"phase {argv} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=Path("../shared/data/real-clips/bikes.mp4"))
    parser.add_argument("--weights", default=None, help="checkpoint or 'random' (default: installed i3d weights)")
    parser.add_argument("--backbone", default="i3d")
    parser.add_argument("--crops", default="center")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract_bench.json"))
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        kind, *rest = args.phase
        video = Path(rest[0])
        if kind == "decode":
            out = phase_decode(video, rest[1], int(rest[2]))
        else:
            weights = None if rest[1] == "-" else rest[1]
            fn = phase_extract if kind == "extract" else phase_forward
            out = fn(video, weights, rest[2], int(rest[3]), rest[4])
        out["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(out))
        return

    video = args.video.resolve()
    weights = args.weights or "-"
    rows = {
        "decode/decord-cpu": run_phase(["decode", str(video), "decord", str(args.repeats)]),
        "decode/opencv": run_phase(["decode", str(video), "opencv", str(args.repeats)]),
        "extract/pipeline": run_phase(["extract", str(video), weights, args.crops, str(args.batch_size),
                                       args.backbone]),
        "extract/bare-forward": run_phase(["forward", str(video), weights, args.crops, str(args.batch_size),
                                           args.backbone]),
    }
    ratios = {
        "decode decord/opencv": rows["decode/decord-cpu"]["fps"] / rows["decode/opencv"]["fps"],
        "extract pipeline/bare (snippet frames)": rows["extract/pipeline"]["fps_snippet_frames"]
        / rows["extract/bare-forward"]["fps"],
    }
    print(f"video: {video}  backbone: {args.backbone}  crops: {args.crops}  batch: {args.batch_size}")
    print(f"{'row':<24} {'frames/s':>10} {'seconds':>9} {'peak RSS MB':>12}")
    for name, row in rows.items():
        print(f"{name:<24} {row['fps']:>10.1f} {row['seconds']:>9.2f} {row['peak_rss_mb']:>12.0f}")
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}")
    import torch

    machine = {"python": platform.python_version(), "machine": platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"video": str(video), "backbone": args.backbone, "crops": args.crops,
                                    "batch_size": args.batch_size, "rows": rows, "ratios": ratios,
                                    "machine": machine}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
