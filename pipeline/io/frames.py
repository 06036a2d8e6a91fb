"""A folder of images read as a video: what the field's datasets (UCSD Ped1/Ped2, ShanghaiTech test clips, frame
copies of Avenue) are made of.

The frames are the folder's image files (:data:`IMAGE_EXTENSIONS`, hidden files skipped) in natural order
(``2.jpg`` before ``10.jpg``), read directly, never re-encoded. A folder has no frame rate of its own: it is given
(``--fps``, default :data:`DEFAULT_FRAME_RATE`) and recorded in every output. Images are decoded by a small thread
pool (OpenCV releases the GIL), one chunk at a time, so memory stays flat in the number of frames.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import VideoError
from .video_info import VideoInfo

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
DEFAULT_FRAME_RATE = 25.0
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``frame2.jpg`` before ``frame10.jpg``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(name))


def _visible_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in natural order (empty when it holds none)."""
    try:
        files = _visible_files(folder)
    except OSError:
        return []
    return sorted((p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS), key=lambda p: natural_key(p.name))


def is_frame_folder(folder: Path) -> bool:
    """Whether ``folder`` directly holds image files (it is then read as one clip)."""
    return folder.is_dir() and bool(image_files(folder))


def list_frames(folder: Path, video_extensions: frozenset[str] = frozenset()) -> list[Path]:
    """The frames of a clip folder, or one VideoError naming the folder and the fix (no images; images mixed with
    video files)."""
    folder = Path(folder)
    frames = image_files(folder)
    if not frames:
        raise VideoError(f"{folder}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in this folder; point at "
                         "a folder of frames or a video file")
    videos = [p.name for p in _visible_files(folder) if p.suffix.lower() in video_extensions]
    if videos:
        raise VideoError(f"{folder}: holds both images ({len(frames)}) and video files ({', '.join(videos[:2])}"
                         f"{'...' if len(videos) > 2 else ''}); keep the frames of one clip alone in their folder")
    return frames


def numbering_gaps(frames: list[Path]) -> list[tuple[int, int]]:
    """``(after, before)`` pairs of frame numbers with a gap between them, where every name carries a number
    (``000123.jpg``, ``frame_7.png``); empty when the numbering is contiguous or there is none."""
    numbers = []
    for path in frames:
        found = _DIGITS.findall(path.stem)
        if not found:
            return []
        numbers.append(int(found[-1]))
    return [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1]


def folder_digest(frames: list[Path], file_digest: Callable[[Path], str]) -> str:
    """SHA-256 over the frames' names (in reading order) and contents: a changed, added, removed or renamed frame
    gives a new digest."""
    digest = hashlib.sha256(b"vad-pipeline frame folder\n")
    for path in frames:
        digest.update(f"{path.name}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def _read_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class FrameFolderReader:
    """A folder of images behind the :class:`~vad_pipeline.io.decode.FrameReader` interface: ``info`` (frame rate as
    given, the first frame's size) and ``(N, H, W, 3)`` uint8 RGB chunks in natural order."""

    def __init__(self, folder: Path, fps: float | None = None, video_extensions: frozenset[str] = frozenset(),
                 workers: int | None = None):

        import cv2

        self.folder = Path(folder)
        self.frames = list_frames(self.folder, video_extensions)
        gaps = numbering_gaps(self.frames)
        if gaps:
            after, before = gaps[0]
            log.warning("%s: frame numbering has %d gap(s) (first: %d then %d); the %d frames are read in order and "
                        "renumbered 0..%d", self.folder, len(gaps), after, before, len(self.frames),
                        len(self.frames) - 1)
        first = cv2.imread(str(self.frames[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise VideoError(f"{self.frames[0]}: cannot be read as an image (frame 0 of {self.folder}); re-copy it")
        height, width = first.shape[:2]
        self._workers = workers or _read_workers()
        self._pool: ThreadPoolExecutor | None = None
        self.info = VideoInfo(str(self.folder), float(fps or DEFAULT_FRAME_RATE), len(self.frames), width, height,
                              "frames")

    def _read(self, index: int) -> np.ndarray:
        import cv2

        path = self.frames[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(f"{path}: unreadable or truncated image (frame {index} of {len(self.frames)} in "
                             f"{self.folder}); re-copy that file")
        if image.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(f"{path}: {image.shape[1]}x{image.shape[0]}, but {self.frames[0].name} is "
                             f"{self.info.width}x{self.info.height}; the frames of one clip must share one size "
                             "(resize them or split the folder)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def iter_chunks(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Consecutive ``(N, H, W, 3)`` chunks; each chunk's images are decoded in parallel, the next chunk's
        decoding starts while the consumer holds the current one."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="vad-frames")
        total = len(self.frames)
        starts = range(0, total, chunk_frames)

        def submit(start: int) -> list:
            assert self._pool is not None
            return [self._pool.submit(self._read, i) for i in range(start, min(total, start + chunk_frames))]

        pending = submit(0) if total else []
        for start in starts:
            current = pending
            pending = submit(start + chunk_frames) if start + chunk_frames < total else []
            try:
                chunk = np.stack([future.result() for future in current])
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
            yield chunk

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
