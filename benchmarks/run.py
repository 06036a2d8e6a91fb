"""One benchmark of every stage, side by side on the same input, with the reference each is compared to.

    .venv/bin/python benchmarks/run.py --quick          # under 2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/run.py                  # the whole input video, 640 px detector, Ray rows
    .venv/bin/python benchmarks/run.py --only decode,extract --video my.mp4

Rows (in fresh subprocesses: one per decode row, one for the extract and scale rows, one for the tracks rows, one
per scorer and the report; models are loaded and warmed up with a full batch before the clock starts). Peak RSS is given twice: during the measured work alone (Linux VmHWM, reset when the clock starts) and
for the whole process (imports, model, warm-up included):

- decode/pipeline: the pipeline's reader (``--decoder auto``: on a GPU torchcodec's NVDEC or decord's GPU context
  when available) streaming RGB chunks of 64 frames; decode/decord-cpu, decode/decord-gpu, decode/opencv-reader
  (the pipeline's OpenCV reader, RGB), decode/torchcodec and decode/torchcodec-cuda (NVDEC) when installed;
  decode/cv2-bare: the bare ``cv2.VideoCapture.read()`` loop (BGR, no conversion), the reference. Best of 3 passes
  over the original input file. decode/frames: the pipeline's reader on a folder of jpg frames (UCSD Ped2 test clip
  04 from ../shared, else the input's first 180 frames written as jpgs); decode/frames-ffv1: the same frames as the
  lossless FFV1 copy the pipeline used to make of them (its reference); decode/frames-1-thread: the folder read by
  one thread; decode/frames-4x: a folder 4x longer (the frames repeated), whose peak RSS must be no higher.
  decode/parallel: the decode ceiling, ``--decoders`` videos decoded at once (one
  thread each, the pipeline's reader, no model); extract/pipeline-videos: the features stage on those videos with
  as many decoded ahead (the "parallel" group).
- extract/pipeline: the ``features`` stage end to end (decode + resize + crop in a background thread, model,
  memory-mapped write, sidecar) on the 16x clip, after one short warm-up video; extract/bare-forward: the same
  backbone's forward alone on the identical preprocessed batches, the reference. frames/s = 16 x snippets / s.
  extract/eager-fp32-forward: that forward as it was before the CPU speed-up (contiguous fp32, batch norms not
  folded into the convolutions), the reference of that speed-up; extract/pipeline-bf16 (CPU): the stage with ``--precision bf16``.
  In full mode all are measured twice, alternating, and the faster pass of each is kept.
- tracks/pipeline: the ``tracks`` stage end to end (decode thread, detection with class probabilities, ByteTrack,
  CSV); tracks/bare-predict: ``YOLO.predict`` alone on the same decoded frames and image size, one frame per call;
  tracks/bare-batched-predict (where the stage batches: a GPU): as many frames per call as the stage, the reference.
  objects/s = detections / seconds. Quick mode: two alternating passes each, the faster kept.
- score/<method>: ``vad-pipeline score`` on a synthetic feature set (D = 1024): training bags/s and scoring
  snippets/s; score/ssmtl: SSMTL training and inference objects/s (``ssmtl_bench.py``).
- report: ``vad-pipeline report`` (metrics, proposals, figures, HTML) on those scores.
- scale/1x, 4x, 16x: the ``features`` stage on the clip (16 frames in quick mode, 64 in full) looped 1, 4 and 16
  times, each after the same warm-up video: seconds per frame must stay constant and peak RSS flat.
- ray/* (full mode or ``--only ray``): ``extract`` on 4 videos in-process, on 1 Ray actor with all CPUs, on 1 actor
  with 1 CPU and on one actor per CPU; wall time includes starting Ray and loading the model in each actor, the
  second rate ("after start-up") counts from the first call to the last result.

Prints a table and writes ``<out>/benchmark.json`` (schema ``vad-pipeline/benchmark/1``: ``machine``, ``input``,
``rows`` [{name, frames, seconds, fps, rate, rate_unit, rate2, rate2_unit, run_peak_rss_mb, peak_rss_mb,
gpu_peak_mb, process_seconds, skipped, note}], ``ratios``,
``scaling``, ``wall_seconds``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "real-clips" / "bikes.mp4"
GROUPS = ("decode", "extract", "parallel", "tracks", "score", "report", "scale", "ray")
QUICK_GROUPS = ("decode", "extract", "parallel", "tracks", "score", "report", "scale")
SCHEMA = "vad-pipeline/benchmark/1"


# -- measurements (each runs in its own subprocess) ------------------------------------------------------------
def _vm_hwm_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: that one survives exec, so a child would
    report its parent's peak when the parent was bigger."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_SETUP_PEAK_MB: float | None = None


def begin_timed_part() -> None:
    """Remember the peak RSS of the set-up (imports, model load, warm-up) and restart peak tracking, so that the
    row's ``run_peak_rss_mb`` is the peak of the measured work alone (Linux ``clear_refs`` 5 resets VmHWM)."""
    global _SETUP_PEAK_MB
    _SETUP_PEAK_MB = _vm_hwm_mb()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        _SETUP_PEAK_MB = None  # cannot reset: the run peak is the process peak


def peak_fields() -> dict[str, float]:
    run_peak = _vm_hwm_mb()
    process_peak = max(run_peak, _SETUP_PEAK_MB or 0.0)
    return {"peak_rss_mb": process_peak, "run_peak_rss_mb": run_peak}


def _gpu_peak_mb() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def row_decode(video: str, decoder: str, gpu: bool = False, repeats: int = 7) -> dict[str, Any]:
    path = Path(video)
    if decoder == "cv2-bare":
        import cv2

        def one_pass() -> int:
            capture, frames = cv2.VideoCapture(str(path)), 0
            while capture.read()[0]:
                frames += 1
            capture.release()
            return frames
    elif decoder in ("torchcodec", "torchcodec-cuda"):
        device = "cuda" if decoder == "torchcodec-cuda" else "cpu"
        try:
            import torch
            from torchcodec.decoders import VideoDecoder

            if device == "cuda" and not torch.cuda.is_available():
                return {"skipped": "no CUDA device"}
            total = VideoDecoder(str(path), device=device).metadata.num_frames
        except Exception as exc:  # not installed, or no FFmpeg libraries for it to load
            return {"skipped": f"torchcodec unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"}

        def one_pass() -> int:
            decoder_, frames = VideoDecoder(str(path), device=device), 0
            for start in range(0, total, 64):
                frames += len(decoder_.get_frames_in_range(start, min(total, start + 64)).data)
            return frames
    else:
        from vad_pipeline.io.decode import DecordReader, OpenCVReader, open_video

        def opener() -> Any:
            if decoder == "pipeline":
                return open_video(path, "auto", want_gpu=gpu)
            if decoder == "frames-1-thread":
                from vad_pipeline.io.frames import FrameFolderReader

                return FrameFolderReader(path, workers=1)
            if decoder == "opencv-reader":
                return OpenCVReader(path)
            return DecordReader(path, want_gpu=decoder == "decord-gpu")

        if decoder == "decord-gpu":
            try:
                probe = opener()
            except Exception as exc:
                return {"skipped": f"decord GPU context failed ({str(exc).splitlines()[0][:80]})"}
            if probe.info.decoder != "decord-gpu":
                return {"skipped": "decord was built without CUDA (the PyPI wheel)"}

        def one_pass() -> int:
            reader = opener()
            frames = sum(len(chunk) for chunk in reader.iter_chunks(64))
            reader.close()
            return frames
    best, frames = float("inf"), 0
    begin_timed_part()
    for _ in range(repeats):
        started = time.perf_counter()
        frames = one_pass()
        best = min(best, time.perf_counter() - started)
    return {"frames": frames, "seconds": best}


def _feature_stage(tmp: Path, batch: int | None, precision: str | None = None, eager: bool = False,
                   device: str = "auto", decoders: int | None = None) -> Any:
    """A prepared, warmed-up features stage; ``eager``: the plain forward (contiguous fp32, batch norms unfolded),
    as it was before the CPU speed-up. ``precision`` None: fp32 on the CPU (the rows compare like with like; the
    bf16 row is apart), the stage's auto (fp16) on CUDA."""
    import numpy as np

    from vad_pipeline.extractors.extract import ExtractConfig, FeatureStage
    from vad_pipeline.core.workspace import Workspace

    from vad_pipeline.core.devices import resolve_device

    if precision is None:
        precision = "fp32" if resolve_device(device).type == "cpu" else "auto"
    stage = FeatureStage(ExtractConfig(batch_size=batch, precision=precision, device=device, decoders=decoders,
                                       progress=False), Workspace(tmp))
    if eager:
        stage.fast_forward = False
    stage.prepare()
    stage.forward(np.zeros((stage.batch_size, 1, 16, 224, 224, 3), np.uint8))  # warm-up at the real batch shape
    return stage


class Best:
    """Best-of-repeats bookkeeping for rows measured in one process: the fastest pass and the highest run peak."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def measure(self, name: str, work: Callable[[], int], **extra: Any) -> None:
        begin_timed_part()
        started = time.perf_counter()
        frames = work()
        seconds = time.perf_counter() - started
        peaks = peak_fields()
        row = self.rows.setdefault(name, {"name": name, "frames": frames, "seconds": seconds, "passes": 0, **extra})
        row["passes"] += 1
        if seconds <= row["seconds"]:
            row.update(seconds=seconds, frames=frames, **extra)
        row["run_peak_rss_mb"] = max(row.get("run_peak_rss_mb", 0.0), peaks["run_peak_rss_mb"])
        row["peak_rss_mb"] = max(row.get("peak_rss_mb", 0.0), peaks["peak_rss_mb"])

    def result(self) -> dict[str, Any]:
        return {"rows": list(self.rows.values())}


def row_extract(clips: dict[str, str], warmup: str, repeats: int, batch: int | None = None,
                device: str = "auto") -> dict[str, Any]:
    """scale/1x, 4x, 16x (the stage end to end, after one warm-up video), then extract/pipeline (= the 16x clip)
    and extract/bare-forward alternated ``repeats`` times, best pass of each; extract/eager-fp32-forward (the
    forward as it was before the CPU speed-up, its reference) and, on a CPU with native bf16,
    extract/pipeline-bf16 (``--precision bf16``), each alternated with them."""
    import torch

    from vad_pipeline.io.decode import open_video
    from vad_pipeline.core.devices import resolve_precision
    from vad_pipeline.core.workspace import Workspace

    best = Best()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        stage = _feature_stage(Path(tmp), batch, device=device)
        stage.run(workspace.video_ref(Path(warmup)), Path(tmp) / "warm")
        note = (f"batch {stage.batch_size}, {torch.get_num_threads()} threads, {stage.device} ({stage.precision}), "
                f"resize and crop on the {'device' if stage.preprocess == 'device' else 'CPU'}")

        def pipeline(video: str, name: str) -> None:
            ref = workspace.video_ref(Path(video))
            best.measure(name, lambda: 16 * stage.run(ref, Path(tmp) / name.replace("/", "-"))["T"], note=note)

        for k, video in clips.items():
            pipeline(video, f"scale/{k}x")
        def preprocessed() -> list[Any]:
            reader = open_video(Path(clips["16"]))
            batches = [clip for _, clip in stage.snippet_batches(reader, reader.info.frames // 16)]
            reader.close()
            return batches

        def bare(batches: list[Any], model: Any = stage) -> int:
            for clip in batches:
                model.forward(clip)
            return 16 * sum(len(clip) for clip in batches)

        eager = _feature_stage(Path(tmp), batch, precision="fp32", eager=True, device=device)
        # the mixed precision `auto` picks on this CPU (bf16 only where it is native: emulated, one forward took
        # over 300 s on an AVX2 CPU), measured beside the fp32 rows; none where auto is fp32
        mixed = resolve_precision("auto", stage.device)
        bf16 = (_feature_stage(Path(tmp), batch, precision=mixed, device=device)
                if stage.device.type == "cpu" and mixed != "fp32" else None)
        for attempt in range(repeats):
            if attempt:  # the first pipeline pass is the scale/16x one
                pipeline(clips["16"], "extract/pipeline")
            else:
                best.rows["extract/pipeline"] = dict(best.rows["scale/16x"], name="extract/pipeline")
            # preprocessed up front, outside the clock, and dropped before the next pipeline pass
            best.measure("extract/bare-forward", functools.partial(bare, preprocessed()), note=note)
            best.measure("extract/eager-fp32-forward", functools.partial(bare, preprocessed(), eager),
                         note=f"{note}, plain contiguous fp32 (before the speed-up)")
            if bf16 is not None:
                ref = workspace.video_ref(Path(clips["16"]))
                best.measure(f"extract/pipeline-{mixed}",
                             lambda: 16 * bf16.run(ref, Path(tmp) / f"{mixed}-{attempt}")["T"],
                             note=f"{note}, --precision {mixed}")
    return best.result()


def row_parallel(videos: list[str], device: str = "auto", decoders: int | None = None) -> dict[str, Any]:
    """decode/parallel: the decode ceiling, ``decoders`` videos decoded at once by the pipeline's reader in as many
    threads, no model; extract/pipeline-videos: the features stage on the same videos with ``--decoders`` that many
    (the next videos read ahead while one computes), after a warm-up video."""
    import threading

    from vad_pipeline.io.decode import open_video
    from vad_pipeline.core.stage import run_stage
    from vad_pipeline.core.workspace import Workspace

    best = Best()
    with tempfile.TemporaryDirectory() as tmp:
        stage = _feature_stage(Path(tmp), None, device=device, decoders=decoders)
        want_gpu = stage.device.type == "cuda"
        count = stage.decoders
        chosen = videos[: max(count, 2)]

        def decode_all() -> int:
            frames = [0] * count

            def decode(index: int) -> None:
                reader = open_video(Path(chosen[index % len(chosen)]), "auto", want_gpu=want_gpu)
                frames[index] = sum(len(chunk) for chunk in reader.iter_chunks(16 * stage.batch_size))
                reader.close()

            threads = [threading.Thread(target=decode, args=(i,)) for i in range(count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(frames)

        workspace = Workspace(Path(tmp) / "work")
        stage.run(workspace.video_ref(Path(videos[-1])), Path(tmp) / "warm")
        run = 0

        def extract_all() -> int:
            nonlocal run
            run += 1
            summary = run_stage(Workspace(Path(tmp) / f"work{run}"), stage, [Path(v) for v in chosen],
                                progress=False)
            assert not summary.failed, summary.failed
            return sum(16 * json.loads(p.read_text())["T"] for p in summary.folder.glob("*.json")
                       if p.name != "config.json")

        for _ in range(2):
            best.measure("decode/parallel", decode_all,
                         note=f"{count} video(s) at once, one thread each, the pipeline's reader, no model")
            best.measure("extract/pipeline-videos", extract_all,
                         note=f"{len(chosen)} videos, --decoders {count}, batch {stage.batch_size}, {stage.device} "
                              f"({stage.precision}), resize and crop on the "
                              f"{'device' if stage.preprocess == 'device' else 'CPU'}")
    return best.result()


def row_tracks(video: str, imgsz: int, conf: float, repeats: int) -> dict[str, Any]:
    """tracks/pipeline (the stage end to end) and tracks/bare-predict alternated ``repeats`` times."""
    import numpy as np

    from vad_pipeline.io.decode import open_video
    from vad_pipeline.detectors.tracks import TrackConfig, TrackStage
    from vad_pipeline.core.workspace import Workspace

    best = Best()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        stage = TrackStage(TrackConfig(imgsz=imgsz, conf=conf, progress=False), workspace)
        stage.prepare()
        frames = np.concatenate(list(open_video(Path(video)).iter_chunks(64)))
        bgr = [np.ascontiguousarray(frame[..., ::-1]) for frame in frames]
        batch = stage.batch_frames()
        for frame in frames[:3]:  # warm-up of both paths
            stage.detect([frame] * batch, imgsz)
            stage.model.predict(bgr[0], imgsz=imgsz, conf=conf, half=stage.half, verbose=False)
        ref = workspace.video_ref(Path(video))
        counts: dict[str, int] = {}

        def pipeline() -> int:
            counts["pipeline"] = stage.run(ref, Path(tmp) / "out")["detections"]
            return len(frames)

        def bare() -> int:
            detections = 0
            for frame in bgr:
                result = stage.model.predict(frame, imgsz=imgsz, conf=conf, half=stage.half, verbose=False)[0]
                detections += len(result.boxes)
            counts["bare"] = detections
            return len(frames)

        def bare_batched() -> int:
            detections = 0
            for start in range(0, len(bgr), batch):
                results = stage.model.predict(bgr[start : start + batch], imgsz=imgsz, conf=conf, half=stage.half,
                                              verbose=False)
                detections += sum(len(result.boxes) for result in results)
            counts["batched"] = detections
            return len(frames)

        for _ in range(repeats):
            best.measure("tracks/pipeline", pipeline)
            best.measure("tracks/bare-predict", bare)
            if batch > 1:
                best.measure("tracks/bare-batched-predict", bare_batched)
    kinds = [("pipeline", "tracks/pipeline"), ("bare", "tracks/bare-predict")]
    for kind, name in kinds + ([("batched", "tracks/bare-batched-predict")] if batch > 1 else []):
        row = best.rows[name]
        row.update(rate=counts[kind] / row["seconds"], rate_unit="objects/s",
                   note=f"imgsz {imgsz}, conf {conf}, {stage.detector_path.name}, {counts[kind]} detections, "
                        f"{batch if kind != 'bare' else 1} frame(s) per call")
    return best.result()


def row_score(features: str, labels: str, workdir: str, method: str, epochs: int, device: str = "auto") -> dict[str, Any]:
    import csv
    import math

    from vad_pipeline.models.score import ScoreConfig, score_videos
    from vad_pipeline.core.workspace import Workspace

    begin_timed_part()
    started = time.perf_counter()
    summary = score_videos(Workspace(Path(workdir)), ScoreConfig(method=method, features=Path(features),
                                                                 labels=Path(labels), epochs=epochs, force=True,
                                                                 device=device, progress=False))
    seconds = time.perf_counter() - started
    train = json.loads((summary.folder / "train.json").read_text())
    schedule = train["config"]["schedule"]
    with open(labels, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "train"]
    anomalous = sum(r["label"] == "anomaly" for r in rows)
    steps = len(train["history"]) * math.ceil(max(anomalous, len(rows) - anomalous) / schedule["batch_size"])
    bags = steps * 2 * schedule["batch_size"]
    import numpy as np

    snippets = sum(len(np.load(path)) for path in summary.folder.glob("*.npy"))
    score_seconds = max(1e-9, seconds - train["seconds"])
    return {"seconds": seconds, "rate": bags / train["seconds"], "rate_unit": "train bags/s",
            "rate2": snippets / score_seconds, "rate2_unit": "scored snippets/s",
            "note": f"{steps} steps x {2 * schedule['batch_size']} bags of 32 segments in {train['seconds']:.1f} s; "
                    f"{summary.scored} videos scored; on {train.get('device') or device}"}


def row_ssmtl(size: int, batch: int, steps: int, device: str = "auto") -> dict[str, Any]:
    import ssmtl_bench

    from vad_pipeline.core.devices import resolve_device

    begin_timed_part()  # the phase warms up with one step of each kind inside the timed part
    result = ssmtl_bench.phase("shallow-narrow", size, batch, steps, device=str(resolve_device(device)))
    return {"seconds": batch * steps / result["train_objects_per_s"] + batch * steps / result["infer_objects_per_s"],
            "rate": result["train_objects_per_s"], "rate_unit": "train objects/s",
            "rate2": result["infer_objects_per_s"], "rate2_unit": "inference objects/s",
            "note": f"shallow-narrow, {size} px crops, batch {batch}, all four tasks, {resolve_device(device)}"}


def row_report(workdir: str, gt: str) -> dict[str, Any]:
    from vad_pipeline.postprocess.report import ReportConfig, write_report
    from vad_pipeline.core.workspace import Workspace

    begin_timed_part()
    started = time.perf_counter()
    summary = write_report(Workspace(Path(workdir)), ReportConfig(gt=(Path(gt),), runs="all"))
    seconds = time.perf_counter() - started
    frames = sum(r.metrics.get("frame", {}).get("frames", 0) for r in summary.results)
    return {"frames": frames, "seconds": seconds, "note": f"{len(summary.results)} methods, metrics + figures + HTML"}


def row_ray(videos: list[str], mode: str, workdir: str) -> dict[str, Any]:
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.core.workspace import Workspace

    cpus = os.cpu_count() or 1
    executor = None
    if mode != "in-process":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            return {"skipped": "ray is not installed (pip install 'vad-pipeline[ray]')"}
        from vad_pipeline.core.ray_executor import RayExecutor

        workers, per_worker = {"1-worker": (1, cpus), "1-worker-1cpu": (1, 1), "per-cpu": (cpus, 1)}[mode]
        executor = RayExecutor(workers=workers, cpus_per_worker=per_worker, num_cpus=cpus)
    begin_timed_part()
    started = time.perf_counter()
    summary = extract_videos(Workspace(Path(workdir)), [Path(v) for v in videos],
                             ExtractConfig(progress=False), executor=executor)
    seconds = time.perf_counter() - started
    if summary.failed:
        raise RuntimeError(f"ray row {mode}: {summary.failed}")
    frames, video_seconds = 0, 0.0
    for path in summary.folder.glob("*.json"):
        if path.name != "config.json":
            meta = json.loads(path.read_text())
            frames, video_seconds = frames + 16 * meta["T"], video_seconds + meta["seconds"]
    detail = {"in-process": f"{cpus} threads", "1-worker": f"1 actor x {cpus} CPUs", "1-worker-1cpu": "1 actor x 1 CPU",
              "per-cpu": f"{cpus} actors x 1 CPU"}[mode]
    if executor is None:  # one video after another: the work is the sum of the per-video times
        work, startup = video_seconds, seconds - video_seconds
    else:
        work = executor.timings["work_seconds"]
        startup = executor.timings["connect_seconds"] + executor.timings["startup_seconds"]
    return {"frames": frames, "seconds": seconds, "rate": frames / work, "rate_unit": "frames/s after start-up",
            "note": f"{len(videos)} videos, {detail}; wall includes {startup:.1f} s of start-up (Ray, model load)"}


ROWS: dict[str, Callable[..., dict[str, Any]]] = {
    "decode": row_decode, "extract": row_extract, "parallel": row_parallel, "tracks": row_tracks, "score": row_score,
    "ssmtl": row_ssmtl, "report": row_report, "ray": row_ray,
}


def run_row(name: str, row_kind: str, **params: Any) -> dict[str, Any]:
    """Run one measurement in a fresh subprocess; returns its row (with peak RSS), or a failure note."""
    return run_rows(name, row_kind, **params)[0]


def run_rows(name: str, row_kind: str, **params: Any) -> list[dict[str, Any]]:
    """``run_row`` for measurements that make several rows in one process (they name their rows)."""
    command = [sys.executable, __file__, "--row", row_kind, "--params", json.dumps(params)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        rows = [{"name": name, "skipped": f"failed: {tail[0][:160]}"}]
    else:
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows = result.pop("rows", None) or [dict(result, name=name)]
    for row in rows:
        row["process_seconds"] = time.perf_counter() - started
        if "frames" in row and row.get("seconds"):
            row["fps"] = row["frames"] / row["seconds"]
        _print_row(row)
    return rows


# -- inputs -----------------------------------------------------------------------------------------------------
def write_clip(source: Path, target: Path, frames: int, loops: int = 1, marker: int = 0) -> Path:
    """The first ``frames`` frames of ``source`` repeated ``loops`` times, MPEG-4 part 2 (what OpenCV writes
    everywhere); ``marker`` changes one pixel so that copies are distinct videos to the workspace."""
    import cv2
    import numpy as np

    from vad_pipeline.io.decode import OpenCVReader

    reader = OpenCVReader(source)
    clip = np.concatenate(list(reader.iter_chunks(64)))[:frames]
    reader.close()
    if len(clip) < frames:
        clip = np.concatenate([clip] * (frames // len(clip) + 1))[:frames]
    height, width = clip.shape[1:3]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), reader.info.fps or 25.0, (width, height))
    for _ in range(loops):
        for index, frame in enumerate(clip):
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            if marker and index == 0:
                bgr[:8, :8] = 40 * marker % 256
            writer.write(bgr)
    writer.release()
    return target


def frame_folder_inputs(source: Path, inputs: Path) -> dict[str, Path]:
    """A folder of jpg frames (Ped2 test clip 04 when ../shared has it, else ``source``'s first 180 frames), the same
    folder 4x longer (hard links, renumbered) and the FFV1 copy of its frames."""
    import os

    import cv2

    from vad_pipeline.io.datasets import frames_to_video
    from vad_pipeline.io.decode import OpenCVReader
    from vad_pipeline.io.frames import image_files

    ped2 = REPO.parent / "shared" / "data" / "ucsd-ped2" / "testing" / "frames" / "04"
    one = inputs / "frames_1x"
    if not image_files(one):
        one.mkdir(parents=True, exist_ok=True)
        if ped2.is_dir():
            for frame in image_files(ped2):
                os.link(frame, one / frame.name) if frame.stat().st_dev == one.stat().st_dev else \
                    one.joinpath(frame.name).write_bytes(frame.read_bytes())
        else:
            reader = OpenCVReader(source)
            frames = next(reader.iter_chunks(180))
            reader.close()
            for index, frame in enumerate(frames):
                cv2.imwrite(str(one / f"{index + 1:03d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    four = inputs / "frames_4x"
    if not image_files(four):
        four.mkdir(parents=True, exist_ok=True)
        frames = image_files(one)
        for loop in range(4):
            for index, frame in enumerate(frames):
                os.link(frame, four / f"{loop * len(frames) + index + 1:04d}{frame.suffix}")
    return {"1x": one, "4x": four, "ffv1": frames_to_video(image_files(one), inputs / "frames_1x.avi", 25.0)}


def synthetic_scores_input(root: Path) -> tuple[Path, Path, Path]:
    """A feature set for the score and report rows: 40 + 40 videos of 24-48 snippets, D = 1024, and its GT."""
    from vad_pipeline.synthetic.videos import synthetic_features, write_feature_ground_truth, write_feature_set

    videos = synthetic_features(n_normal=40, n_anomalous=40, dim=1024, seed=0, shift=1.0)
    features, labels = write_feature_set(root, videos)
    return features, labels, write_feature_ground_truth(root / "ground_truth.csv", videos)


# -- output -----------------------------------------------------------------------------------------------------
def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def _print_row(row: dict[str, Any]) -> None:
    if row.get("skipped"):
        print(f"  {row['name']:<22} skipped: {row['skipped']}", flush=True)
        return
    rates = "  ".join(f"{_fmt(row[k], '.1f')} {row[k + '_unit']}" for k in ("rate", "rate2") if k in row)
    print(f"  {row['name']:<22} {_fmt(row.get('fps'), '9.1f')} frames/s {_fmt(row.get('seconds'), '8.2f')} s  "
          f"peak RSS {_fmt(row.get('run_peak_rss_mb'), '6.0f')} / {_fmt(row.get('peak_rss_mb'), '.0f')} MB  {rates}  {row.get('note', '')}", flush=True)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| row | frames/s | other rate | seconds | peak RSS MB (run / process) | GPU MB | note |",
             "|---|---:|---|---:|---:|---:|---|"]
    for row in rows:
        if row.get("skipped"):
            lines.append(f"| {row['name']} | - | - | - | - | - | skipped: {row['skipped']} |")
            continue
        rates = "; ".join(f"{row[k]:.1f} {row[k + '_unit']}" for k in ("rate", "rate2") if k in row)
        lines.append(f"| {row['name']} | {_fmt(row.get('fps'), '.1f')} | {rates or '-'} | "
                     f"{_fmt(row.get('seconds'), '.2f')} | {_fmt(row.get('run_peak_rss_mb'), '.0f')} / "
                     f"{_fmt(row.get('peak_rss_mb'), '.0f')} | "
                     f"{_fmt(row.get('gpu_peak_mb'), '.0f')} | {row.get('note', '')} |")
    return "\n".join(lines)


def _ratio(rows: dict[str, dict[str, Any]], top: str, bottom: str, key: str = "fps") -> float | None:
    a, b = rows.get(top, {}), rows.get(bottom, {})
    return a[key] / b[key] if a.get(key) and b.get(key) else None


def machine() -> dict[str, Any]:
    import torch

    from vad_pipeline.core.devices import cpu_description, native_bf16

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "cpu": cpu_description(), "native_bf16": native_bf16("cpu"),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small inputs: under 2 minutes on 2 CPU cores")
    parser.add_argument("--video", type=Path, default=None,
                        help=f"input video (default {DEFAULT_VIDEO.name} from ../shared, else a generated one)")
    parser.add_argument("--only", default=None, help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "run")
    parser.add_argument("--device", default="auto",
                        help="where the extract, parallel, score and SSMTL rows run: auto (CUDA when available), cpu, "
                             "cuda[:N]; tracks follow ultralytics' choice (the GPU when there is one)")
    parser.add_argument("--decoders", type=int, default=None,
                        help="parallel rows: videos decoded at once (default: extract's, 4 on a GPU, 1 on the CPU; "
                             "at least 2 videos are extracted)")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        row = ROWS[args.row](**json.loads(args.params))
        if "rows" not in row:
            row.update(peak_fields())
        row["gpu_peak_mb"] = _gpu_peak_mb()
        print(json.dumps(row))
        return

    began = time.perf_counter()
    groups = tuple(args.only.split(",")) if args.only else (QUICK_GROUPS if args.quick else GROUPS)
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise SystemExit(f"--only: unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    out = args.out
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    source = args.video or (DEFAULT_VIDEO if DEFAULT_VIDEO.is_file() else None)
    if source is None:
        from vad_pipeline.synthetic.videos import render_video

        source = inputs / "generated.mp4"
        if not source.is_file():
            render_video(source, seed=0, frames=256, size=(240, 320))
    source = source.resolve()
    base = 16 if args.quick else 64  # frames of the 1x clip (whole snippets)
    imgsz = 320 if args.quick else 640
    clips = {k: write_clip(source, inputs / f"clip_{k}x.mp4", base, loops=k) for k in (1, 4, 16)}
    print(f"input: {source} ({'quick' if args.quick else 'full'} mode); clips of {base} x 1/4/16 frames")

    document_machine = machine()
    rows: list[dict[str, Any]] = []
    if "decode" in groups:
        for decoder in ("pipeline", "decord-cpu", "decord-gpu", "opencv-reader", "torchcodec", "torchcodec-cuda",
                        "cv2-bare"):
            rows.append(run_row(f"decode/{decoder}", "decode", video=str(source), decoder=decoder,
                                gpu=document_machine["cuda"]))
        folders = frame_folder_inputs(source, inputs)
        for name, video, decoder in (("frames", folders["1x"], "pipeline"), ("frames-ffv1", folders["ffv1"], "pipeline"),
                                     ("frames-1-thread", folders["1x"], "frames-1-thread"),
                                     ("frames-4x", folders["4x"], "pipeline")):
            rows.append(run_row(f"decode/{name}", "decode", video=str(video), decoder=decoder, gpu=False))
    repeats = 1 if args.quick else 2
    if "scale" in groups or "extract" in groups:
        rows += run_rows("extract", "extract", clips={str(k): str(v) for k, v in clips.items()},
                         warmup=str(clips[4]), repeats=repeats, device=args.device)
    if "parallel" in groups:
        copies = [str(write_clip(source, inputs / f"parallel_{i}.mp4", base * 16, marker=i + 1)) for i in range(8)]
        rows += run_rows("parallel", "parallel", videos=copies, device=args.device, decoders=args.decoders)
    if "tracks" in groups:
        # the source's own frames (the looped clips repeat 16 frames, too few people in them); quick: its first 64
        track_clip = write_clip(source, inputs / "clip_tracks.mp4", 64) if args.quick else source
        conf = 0.1 if args.quick else 0.25  # at 320 px the person detector needs a lower threshold to find any
        rows += run_rows("tracks", "tracks", video=str(track_clip), imgsz=imgsz, conf=conf,
                         repeats=2 if args.quick else 1)
    if "score" in groups or "report" in groups:
        features, labels, gt = synthetic_scores_input(inputs / "scores")
        score_work = out / "score-work"
        methods = ("mil",) if args.quick else ("mil", "align", "ddl", "xel")
        for method in methods:
            rows.append(run_row(f"score/{method}", "score", features=str(features), labels=str(labels),
                                workdir=str(score_work), method=method, epochs=3, device=args.device))
        if "score" in groups:
            rows.append(run_row("score/ssmtl", "ssmtl", size=32 if args.quick else 64, batch=32 if args.quick else 64,
                                steps=2 if args.quick else 3, device=args.device))
        if "report" in groups:
            rows.append(run_row("report", "report", workdir=str(score_work), gt=str(gt)))
    scaling = [{"length": k, "frames": row["frames"], "seconds": row["seconds"], "fps": row["fps"],
                "seconds_per_frame": row["seconds"] / row["frames"], "run_peak_rss_mb": row["run_peak_rss_mb"],
                "peak_rss_mb": row["peak_rss_mb"]}
               for k in (1, 4, 16) if (row := next((r for r in rows if r["name"] == f"scale/{k}x"), {})).get("fps")]
    if "ray" in groups:
        copies = [str(write_clip(source, inputs / f"ray_{i}.mp4", base * 2, marker=i + 1)) for i in range(4)]
        for mode in ("in-process", "1-worker", "1-worker-1cpu", "per-cpu"):
            with tempfile.TemporaryDirectory() as work:
                rows.append(run_row(f"ray/{mode}", "ray", videos=copies, mode=mode, workdir=work))

    by_name = {row["name"]: row for row in rows}
    ratios = {
        "decode pipeline / cv2.VideoCapture": _ratio(by_name, "decode/pipeline", "decode/cv2-bare"),
        "decode frame folder / its FFV1 copy": _ratio(by_name, "decode/frames", "decode/frames-ffv1"),
        "peak RSS frame folder 4x / 1x": _ratio(by_name, "decode/frames-4x", "decode/frames", "run_peak_rss_mb"),
        "extract pipeline / bare forward": _ratio(by_name, "extract/pipeline", "extract/bare-forward"),
        "extract pipeline (videos decoded at once) / min(bare forward, decode ceiling)": _ratio(
            by_name, "extract/pipeline-videos", min(("extract/bare-forward", "decode/parallel"),
                                                    key=lambda n: by_name[n]["fps"]))
        if all(by_name.get(n, {}).get("fps") for n in ("extract/bare-forward", "decode/parallel")) else None,
        "extract pipeline / eager fp32 forward (before the speed-up)": _ratio(by_name, "extract/pipeline",
                                                                               "extract/eager-fp32-forward"),
        "extract pipeline bf16 / eager fp32 forward": _ratio(by_name, "extract/pipeline-bf16",
                                                             "extract/eager-fp32-forward"),
        "tracks pipeline / bare predict": _ratio(by_name, "tracks/pipeline", "tracks/bare-predict"),
        "tracks pipeline / bare batched predict": _ratio(by_name, "tracks/pipeline", "tracks/bare-batched-predict"),
        "ray 1 actor / in-process (wall)": _ratio(by_name, "ray/1-worker", "ray/in-process"),
        "ray per-CPU actors / 1 actor (wall)": _ratio(by_name, "ray/per-cpu", "ray/1-worker"),
        "ray per-CPU actors / 1 actor (after start-up)": _ratio(by_name, "ray/per-cpu", "ray/1-worker", "rate"),
        "ray per-CPU actors / 1 actor of 1 CPU (after start-up)": _ratio(by_name, "ray/per-cpu", "ray/1-worker-1cpu",
                                                                         "rate"),
    }
    ratios = {k: v for k, v in ratios.items() if v is not None}
    if len(scaling) == 3:
        first = scaling[0]
        for entry in scaling:
            entry["time_vs_1x"] = entry["seconds"] / first["seconds"]
            entry["run_rss_vs_1x"] = entry["run_peak_rss_mb"] / first["run_peak_rss_mb"]
    wall = time.perf_counter() - began
    document = {"schema": SCHEMA, "mode": "quick" if args.quick else "full", "groups": list(groups),
                "machine": document_machine, "input": {"video": str(source), "clip_frames": base, "track_imgsz": imgsz},
                "rows": rows, "ratios": ratios, "scaling": scaling, "wall_seconds": wall}
    (out / "benchmark.json").write_text(json.dumps(document, indent=2))
    print()
    print(table(rows))
    print()
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}")
    for entry in scaling:
        print(f"scaling {entry['length']:>2}x: {entry['frames']:>5} frames  {entry['seconds']:7.2f} s  "
              f"{entry['fps']:6.1f} frames/s  {1000 * entry['seconds_per_frame']:.1f} ms/frame  "
              f"time x{entry.get('time_vs_1x', 1):.2f}  peak RSS {entry['run_peak_rss_mb']:.0f} MB during the run, "
              f"{entry['peak_rss_mb']:.0f} MB whole process")
    print(f"wrote {out / 'benchmark.json'} in {wall:.0f} s")


if __name__ == "__main__":
    main()
