"""Video decoding: open a file with OpenCV, decord (GPU context when decord was built with CUDA) or torchcodec
(NVDEC on a GPU, the optional ``gpu-decode`` extra), read its metadata and stream its frames in chunks, never holding
the whole video in memory (see ``open_video`` for which decoder ``auto`` picks and why).

Frames come out as ``(N, H, W, 3)`` uint8 RGB arrays (torch tensors on the GPU for torchcodec there).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from ..errors import VideoError
from .video_info import VideoInfo

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".ogv"}
)
DECODERS = ("auto", "decord", "opencv", "torchcodec")


class FrameReader(Protocol):
    """An opened video: its metadata and a chunked frame stream."""

    info: VideoInfo

    def iter_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Yield consecutive ``(N, H, W, 3)`` uint8 RGB chunks covering every frame once, in order."""
        ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _captured_native_stderr() -> Iterator[list[str]]:
    """Capture what native libraries (ffmpeg, dmlc) write to fd 2, so a failure becomes one clean line."""
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded interpreters): nothing to capture
        yield lines
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def _native_reason(lines: list[str]) -> str:
    """The most informative native error line, without log prefixes or the file name."""
    for line in reversed(lines):
        if "ERROR" in line or "Invalid" in line or "not found" in line:
            text = line.split("ERROR", 1)[-1].lstrip(": ")
            return text.split(", ", 1)[-1] if text.startswith("opening") else text
    return lines[-1] if lines else ""


def _container_frame_count(path: Path) -> int:
    """The frame count the container header declares (OpenCV's reading of it), 0 when unknown."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if capture.isOpened() else 0
    finally:
        capture.release()


# Containers whose headers state the exact frame count, so a shortfall in decoded frames means truncation.
_EXACT_COUNT_CONTAINERS = frozenset({".avi", ".mp4", ".mov", ".m4v"})


_log_once_lock = threading.Lock()
_logged_messages: set[str] = set()
_decord_gpu_missing: str | None = None  # why decord cannot decode on the GPU, once known
_torchcodec_gpu_missing: str | None = None  # likewise torchcodec ("" once it is known that it can)


def _log_once(message: str) -> None:
    with _log_once_lock:
        if message in _logged_messages:
            return
        _logged_messages.add(message)
    log.info(message)


def _chunked(write_next: Callable[[np.ndarray], bool], info: VideoInfo, chunk_frames: int,
             first: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Stream ``info.frames`` frames as ``(N, H, W, 3)`` chunks. ``write_next(target)`` decodes the next frame into
    ``target`` and returns False at the end of the stream; ``first``, if given, is frame 0, already decoded.

    Each chunk is a new buffer handed to the consumer (not a copy of a reused one). Fewer frames than the header
    promised, or a decoder error, is one VideoError naming the file and the frame."""
    buffer = np.empty((chunk_frames, info.height, info.width, 3), dtype=np.uint8)
    filled = decoded = 0
    reason = ""
    while decoded < info.frames:
        try:
            if first is not None:
                buffer[filled], first = first, None
            elif not write_next(buffer[filled]):
                break
        except Exception as error:
            text = str(error).strip()
            reason = f" ({text.splitlines()[0][:200] if text else type(error).__name__})"
            break
        filled += 1
        decoded += 1
        if filled == chunk_frames:
            yield buffer
            buffer = np.empty_like(buffer)
            filled = 0
    if decoded < info.frames:
        raise VideoError(
            f"{info.path}: truncated or corrupt: decoding stopped at frame {decoded} of {info.frames}{reason}; "
            "re-encode or re-download the file"
        )
    if filled:
        yield buffer[:filled]


class DecordReader:
    """decord.VideoReader read sequentially (``next()``) into chunk buffers; on the GPU when asked and decord
    was built with CUDA.

    Not ``get_batch``: on a 1,024-frame clip, batched reads took 2-4x the memory of sequential ones and left it
    growing from one video to the next (decord issues #197, #208), for no gain in speed."""

    def __init__(self, path: Path, want_gpu: bool = False, num_threads: int = 0):
        global _decord_gpu_missing
        import decord

        decord.logging.set_level(decord.logging.QUIET)  # ffmpeg's per-frame warnings; errors still raise

        self._path = path
        self._reader = None
        self._first: np.ndarray | None = None
        context_name = "cpu"
        with _captured_native_stderr() as native:
            error: Exception | None = None
            try:
                if want_gpu and _decord_gpu_missing is None:
                    try:
                        self._reader = decord.VideoReader(str(path), ctx=decord.gpu(0), num_threads=num_threads)
                        context_name = "gpu"
                    except Exception as exc:  # the PyPI wheel: DECORDError "CUDA not enabled"
                        if "CUDA not enabled" not in str(exc):
                            raise
                        _decord_gpu_missing = "decord was built without CUDA"
                if self._reader is None:
                    self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
                frames = len(self._reader)
                # Frame 0 proves the file decodes and gives the frame size; it is kept as the start of the first
                # pass, which then continues sequentially from frame 1 without seeking back.
                self._first = self._reader[0].asnumpy() if frames > 0 else None
                first = self._first.shape if self._first is not None else None
            except Exception as exc:
                error = exc
        if context_name == "gpu":
            _log_once("decode: decord on GPU 0 (decord built with CUDA)")
        else:
            why = _decord_gpu_missing if want_gpu else "no CUDA device requested or available"
            _log_once(f"decode: decord on CPU ({why})")
        if error is not None:
            reason = _native_reason(native) or str(error).splitlines()[0]
            raise VideoError(
                f"{path}: cannot be decoded as a video ({reason}): the file is corrupt, truncated or not a video; "
                "re-encode or re-download it"
            )
        if frames <= 0 or first is None:
            raise VideoError(f"{path}: video has no frames; remove it or re-encode it")
        if path.suffix.lower() in _EXACT_COUNT_CONTAINERS:
            # decord indexes what it can demux: a truncated AVI simply looks shorter. The header knows better.
            declared = _container_frame_count(path)
            if declared > frames + max(2, int(0.02 * declared)):
                raise VideoError(
                    f"{path}: truncated: the header declares {declared} frames but only {frames} are present; "
                    "re-encode or re-download the file"
                )
        height, width = int(first[0]), int(first[1])
        fps = float(self._reader.get_avg_fps() or 0.0)
        self.info = VideoInfo(str(path), fps, int(frames), width, height, f"decord-{context_name}")

    def iter_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        first, self._first = self._first, None
        if first is None:  # a second pass over the same reader
            self._reader.seek(0)

        # No fd capture here: this runs in a prefetch thread, and redirecting fd 2 would swallow the main thread's
        # progress and log output.
        def write_next(target: np.ndarray) -> bool:
            try:
                target[...] = self._reader.next().asnumpy()
            except StopIteration:
                return False
            return True

        return _chunked(write_next, self.info, chunk_frames, first)

    def close(self) -> None:
        self._reader = None


class TorchCodecReader:
    """torchcodec (FFmpeg's decoders; with ``device="cuda"`` NVDEC, and the frames stay on the GPU as
    ``(N, H, W, 3)`` uint8 torch tensors). Its exact frame count comes from a scan of the file."""

    def __init__(self, path: Path, device: str = "cpu"):
        try:
            from torchcodec.decoders import VideoDecoder
        except Exception as exc:  # not installed, or FFmpeg's libraries missing
            raise VideoError(f"{path}: --decoder torchcodec: torchcodec cannot load ({_first_line(exc)}); "
                             "pip install 'vad-pipeline[gpu-decode]' and FFmpeg 4-7, or choose another decoder") from None
        self._path = path
        self._device = device
        try:
            self._decoder = VideoDecoder(str(path), device=device, dimension_order="NHWC")
            meta = self._decoder.metadata
            frames, width, height = int(meta.num_frames or 0), int(meta.width or 0), int(meta.height or 0)
            fps = float(meta.average_fps or 0.0)
        except Exception as exc:
            raise VideoError(f"{path}: cannot be decoded as a video ({_first_line(exc)}): the file is corrupt, "
                             "truncated or not a video; re-encode or re-download it") from None
        if frames <= 0 or width <= 0:
            raise VideoError(f"{path}: video has no frames; remove it or re-encode it")
        self.info = VideoInfo(str(path), fps, frames, width, height,
                              "torchcodec-cuda" if device.startswith("cuda") else "torchcodec-cpu")

    def iter_chunks(self, chunk_frames: int) -> Iterator[Any]:
        """Chunks of ``(N, H, W, 3)`` uint8 frames: numpy arrays on the CPU, torch tensors on the GPU."""
        total = self.info.frames
        for start in range(0, total, chunk_frames):
            try:
                frames = self._decoder.get_frames_in_range(start, min(total, start + chunk_frames)).data
            except Exception as exc:
                raise VideoError(f"{self._path}: truncated or corrupt: decoding stopped at frame {start} of {total} "
                                 f"({_first_line(exc)}); re-encode or re-download the file") from None
            yield frames if self._device.startswith("cuda") else frames.numpy()

    def close(self) -> None:
        self._decoder = None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _torchcodec_cuda_missing() -> str | None:
    """Why torchcodec cannot decode on the GPU here (None: it can), found once."""
    global _torchcodec_gpu_missing
    if _torchcodec_gpu_missing is None:
        import importlib.util

        import torch

        if not torch.cuda.is_available():
            _torchcodec_gpu_missing = "no CUDA device"
        elif importlib.util.find_spec("torchcodec") is None:
            _torchcodec_gpu_missing = "torchcodec is not installed (pip install 'vad-pipeline[gpu-decode]')"
        else:
            try:
                importlib.import_module("torchcodec.decoders")
                _torchcodec_gpu_missing = ""
            except Exception as exc:
                _torchcodec_gpu_missing = f"torchcodec cannot load ({_first_line(exc)})"
    return _torchcodec_gpu_missing or None


class OpenCVReader:
    """cv2.VideoCapture, read frame by frame (BGR converted to RGB)."""

    def __init__(self, path: Path):
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise VideoError(
                f"{path}: cannot be decoded as a video (OpenCV could not open it): the file is corrupt, truncated or "
                "not a video; re-encode or re-download it"
            )
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if frames <= 0 or width <= 0 or height <= 0:
            capture.release()
            raise VideoError(f"{path}: video has no frames; remove it or re-encode it")
        self._capture = capture
        self._path = path
        self.info = VideoInfo(str(path), fps, frames, width, height, "opencv")

    def iter_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        import cv2

        size = (self.info.height, self.info.width)

        def write_next(target: np.ndarray) -> bool:
            if not self._capture.grab():
                return False
            ok, frame = self._capture.retrieve()
            if not ok or frame.shape[:2] != size:
                return False
            cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=target)
            return True

        return _chunked(write_next, self.info, chunk_frames)

    def close(self) -> None:
        self._capture.release()


def open_video(path: Path, decoder: str = "auto", want_gpu: bool = False, fps: float | None = None) -> FrameReader:
    """Open ``path`` with the chosen decoder. Raises VideoError with a one-line reason.

    A folder of images is a video (:mod:`vad_pipeline.io.frames`: natural order, read directly); ``fps`` is its frame
    rate (default 25; video files keep their own).

    ``auto``: when a GPU is wanted, torchcodec on it (NVDEC, frames left on the GPU as torch tensors) when
    torchcodec is installed and loads, else decord with its GPU context when decord was built with CUDA; one log
    line says which decoder runs and why the others did not. Otherwise, for
    containers whose header states the exact frame count (mp4, avi, mov, m4v: the public datasets), OpenCV: decord's
    CPU reader decodes the same pixels no faster and its memory grows with video length when frames are consumed
    slower than it decodes them, as the model does (+500 MB on a 1,024-frame 640x272 clip, more from one video to
    the next; benchmarks/run.py, docs/guide.md "Decoding"). Other containers (mkv, webm, ...) only estimate their frame
    count, so they keep decord, which indexes every frame.
    ``decord`` forces decord (CPU context unless a GPU is wanted and available); ``opencv`` forces OpenCV;
    ``torchcodec`` forces torchcodec (on the GPU when one is wanted and it can, else on the CPU, numpy frames)."""
    path = Path(path)
    if path.is_dir():
        from .frames import FrameFolderReader

        return FrameFolderReader(path, fps, VIDEO_EXTENSIONS)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty (0 bytes); remove it or copy it again")
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")
    if decoder == "torchcodec":
        return TorchCodecReader(path, "cuda" if want_gpu and _torchcodec_cuda_missing() is None else "cpu")
    if decoder == "decord":
        return DecordReader(path, want_gpu=want_gpu)
    if decoder == "auto" and want_gpu and _torchcodec_cuda_missing() is None:
        try:
            reader = TorchCodecReader(path, "cuda")
            _log_once("decode: torchcodec on the GPU (NVDEC; frames stay on the GPU)")
            return reader
        except VideoError as exc:  # e.g. a codec NVDEC lacks: the next decoder tries
            log.debug("torchcodec on the GPU could not open %s: %s", path, exc)
    if decoder == "auto" and want_gpu and _decord_gpu_missing is None:
        reader = DecordReader(path, want_gpu=True)
        if reader.info.decoder == "decord-gpu":
            return reader
        reader.close()
    if decoder == "auto" and path.suffix.lower() not in _EXACT_COUNT_CONTAINERS:
        return DecordReader(path)  # an exact frame count needs decord's index here
    if decoder == "auto":
        why = (f"{_torchcodec_cuda_missing()}; {_decord_gpu_missing}" if want_gpu else "no GPU in use")
        _log_once(f"decode: OpenCV on CPU for mp4/avi/mov ({why}; decord's CPU reader is no faster and its memory "
                  "grows with video length; --decoder decord forces it)")
    return OpenCVReader(path)
