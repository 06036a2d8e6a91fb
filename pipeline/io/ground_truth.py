"""Frame-level (and optional pixel-level) ground truth, read from the formats the field distributes.

Every reader returns a :class:`GroundTruth`: per video, anomalous frame intervals (0-based, end exclusive) or a
per-frame ``(N,)`` 0/1 array, and optionally pixel masks ``(N, H, W)`` bool. Formats (``load_ground_truth`` picks
the reader from the path):

==============================================  ==================================================================
``Temporal_Anomaly_Annotation*.txt`` (UCF)      ``name.mp4  Class  s1  e1  s2  e2``; -1 = no interval; ``gt[s:e]=1``
``annotations.txt`` (XD-Violence)               ``name s1 e1 [s2 e2 ...]`` (or with class codes before each pair);
                                                ``gt[s:e]=1``; XD's ground truth is cut to ``16*floor((n-1)/16)``
Matlab_formate ``*.mat`` (UCF, Sultani)         ``Annotation_file.Anno`` rows ``[s, e]``, same convention as the txt
``test_frame_mask/`` (ShanghaiTech)             one ``<video>.npy`` ``(N,)`` 0/1 per video
``UCSDped*.m`` (UCSD Ped1/Ped2)                 ``gt_frame = [a:b, c:d]`` per test clip, 1-based inclusive; clip k is
                                                named ``Test00k`` and ``0k`` (the jpg layout's folder name)
``*.npz`` (frame labels or pixel masks)         per video key a ``(N,)`` 0/1 array, or ``(N, H, W)`` masks
``avenue.mat`` / ``testing_label_mask/``        Avenue: per video ``(1, N)`` labels; per video ``N_label.mat`` with
                                                ``volLabel`` masks
``*.csv``                                       ``video,start_frame,end_frame`` (0-based, end exclusive; a normal
                                                video may have a row with empty frames) or ``video,frame,label``
==============================================  ==================================================================

A malformed line is one :class:`UserError` naming the file and line. Video names are matched after
:func:`normalize_name` (file stem, ``_i3d``/crop suffixes removed), so ``Abuse028_x264.mp4`` in the annotation
matches features named ``Abuse028_x264_i3d.npy``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from .naming import video_name

SNIPPET = 16


def normalize_name(name: str) -> str:
    """The key under which ground truth and scores meet (see the module docstring)."""
    return video_name(str(name).strip())


@dataclass
class VideoTruth:
    """One video's ground truth: ``intervals`` (0-based, end exclusive) or ``labels`` ``(N,)``; ``masks``
    ``(N, H, W)`` bool when pixel-level truth exists. ``cut`` names a length convention (``"xd"``)."""

    name: str
    intervals: list[tuple[int, int]] = field(default_factory=list)
    labels: np.ndarray | None = None
    masks: np.ndarray | None = None
    cut: str | None = None
    source: str = ""

    @property
    def num_frames(self) -> int | None:
        """Frames the truth itself knows of (per-frame labels or masks); None for interval formats."""
        if self.labels is not None:
            return int(len(self.labels))
        if self.masks is not None:
            return int(len(self.masks))
        return None

    def frame_labels(self, num_frames: int | None = None) -> np.ndarray:
        """``(num_frames,)`` uint8; per-frame truth is cut or zero-padded to ``num_frames`` when given."""
        if self.labels is not None:
            labels = self.labels.astype(np.uint8)
        elif self.masks is not None:
            labels = self.masks.reshape(len(self.masks), -1).any(axis=1).astype(np.uint8)
        else:
            if num_frames is None:
                num_frames = max((end for _, end in self.intervals), default=0)
            labels = np.zeros(num_frames, np.uint8)
            for start, end in self.intervals:
                labels[max(start, 0) : max(end, 0)] = 1
            return labels
        if num_frames is None or num_frames == len(labels):
            return labels
        if num_frames < len(labels):
            return labels[:num_frames]
        return np.concatenate([labels, np.zeros(num_frames - len(labels), np.uint8)])

    def frame_masks(self, num_frames: int) -> np.ndarray | None:
        """``(num_frames, H, W)`` bool masks (cut or padded with empty masks), or None."""
        if self.masks is None:
            return None
        if num_frames <= len(self.masks):
            return self.masks[:num_frames]
        pad = np.zeros((num_frames - len(self.masks),) + self.masks.shape[1:], bool)
        return np.concatenate([self.masks, pad])


@dataclass
class GroundTruth:
    """Ground truth of many videos, looked up by normalized name."""

    videos: dict[str, VideoTruth] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def add(self, truth: VideoTruth) -> None:
        self.videos[normalize_name(truth.name)] = truth

    def get(self, name: str) -> VideoTruth | None:
        return self.videos.get(normalize_name(name))

    def merge(self, other: "GroundTruth") -> None:
        """Add ``other``'s videos; pixel masks join the frame labels of the same video."""
        for key, truth in other.videos.items():
            mine = self.videos.get(key)
            if mine is not None and truth.masks is not None and mine.masks is None:
                mine.masks = truth.masks
            elif mine is not None and mine.masks is not None and truth.masks is None:
                truth.masks = mine.masks
                self.videos[key] = truth
            else:
                self.videos[key] = truth
        self.sources.extend(other.sources)

    def __len__(self) -> int:
        return len(self.videos)

    def __contains__(self, name: str) -> bool:
        return normalize_name(name) in self.videos


def _int(token: str, path: Path, line: int) -> int:
    try:
        return int(float(token))
    except ValueError:
        raise UserError(f"{path}:{line}: expected a frame number, found {token!r}") from None


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ground truth ({exc.strerror})") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_ucf_annotations(path: Path) -> GroundTruth:
    """UCF-Crime ``Temporal_Anomaly_Annotation*.txt``."""
    path = Path(path)
    truth = GroundTruth(sources=[str(path)])
    for number, line in _lines(path):
        tokens = line.split()
        if len(tokens) < 4 or (len(tokens) - 2) % 2:
            raise UserError(f"{path}:{number}: expected 'name class s1 e1 [s2 e2]', found {line!r}")
        pairs = [(_int(tokens[i], path, number), _int(tokens[i + 1], path, number)) for i in range(2, len(tokens), 2)]
        intervals = []
        for start, end in pairs:
            if start < 0 or end < 0:
                continue
            if end < start:
                raise UserError(f"{path}:{number}: interval end {end} is before its start {start}")
            intervals.append((start, end))
        truth.add(VideoTruth(tokens[0], intervals, source=f"{path}:{number}"))
    return truth


def read_xd_annotations(path: Path) -> GroundTruth:
    """XD-Violence ``annotations.txt`` (plain or with class codes before each pair)."""
    path = Path(path)
    truth = GroundTruth(sources=[str(path)])
    for number, line in _lines(path):
        tokens = line.split()
        numbers = [t for t in tokens[1:] if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", t)]
        if not numbers or len(numbers) % 2:
            raise UserError(f"{path}:{number}: expected 'name s1 e1 [s2 e2 ...]', found {line!r}")
        values = [_int(t, path, number) for t in numbers]
        intervals = list(zip(values[0::2], values[1::2]))
        if any(end < start for start, end in intervals):
            raise UserError(f"{path}:{number}: an interval ends before it starts in {line!r}")
        truth.add(VideoTruth(tokens[0], intervals, cut="xd", source=f"{path}:{number}"))
    return truth


def read_ucsd_m(path: Path, frames_root: Path | None = None) -> GroundTruth:
    """UCSD ``UCSDped{1,2}.m``: clip k -> ``Test00k`` / ``0k``; frame counts from ``frames_root/<0k>/`` when given
    (or the ``testing/frames`` folder beside the file), else the truth holds only intervals."""
    path = Path(path)
    truth = GroundTruth(sources=[str(path)])
    if frames_root is None and (path.parent / "testing" / "frames").is_dir():
        frames_root = path.parent / "testing" / "frames"
    clip = 0
    for number, line in _lines(path):
        if "gt_frame" not in line:
            continue
        match = re.search(r"\[(.*)\]", line)
        if not match:
            raise UserError(f"{path}:{number}: expected 'gt_frame = [a:b, ...]', found {line!r}")
        clip += 1
        intervals = []
        for part in match.group(1).split(","):
            if not part.strip():
                continue
            bounds = part.split(":")
            if len(bounds) != 2:
                raise UserError(f"{path}:{number}: expected a range a:b, found {part.strip()!r}")
            start, end = (_int(b.strip(), path, number) for b in bounds)
            intervals.append((start - 1, end))  # 1-based inclusive -> 0-based, end exclusive
        name = f"{clip:02d}"
        video = VideoTruth(name, intervals, source=f"{path}:{number}")
        if frames_root is not None and (Path(frames_root) / name).is_dir():
            count = sum(1 for p in (Path(frames_root) / name).iterdir() if p.suffix.lower() in (".jpg", ".png", ".tif"))
            video.labels = video.frame_labels(count)
        truth.add(video)
        truth.videos[normalize_name(f"Test{clip:03d}")] = video
    if clip == 0:
        raise UserError(f"{path}: no 'gt_frame = [...]' lines; is this a UCSD ground-truth .m file?")
    return truth


def read_mask_dir(folder: Path) -> GroundTruth:
    """ShanghaiTech ``test_frame_mask/``: ``<video>.npy`` ``(N,)`` per video."""
    folder = Path(folder)
    truth = GroundTruth(sources=[str(folder)])
    for file in sorted(folder.glob("*.npy")):
        try:
            labels = np.load(file, allow_pickle=False)
        except Exception as exc:
            raise UserError(f"{file}: cannot read frame labels ({type(exc).__name__}); re-download it") from None
        truth.add(_labels_or_masks(file.stem, labels, str(file)))
    if not truth.videos:
        raise UserError(f"{folder}: no .npy frame-label files")
    return truth


def _labels_or_masks(name: str, array: np.ndarray, source: str) -> VideoTruth:
    array = np.asarray(array)
    if array.ndim == 3:
        return VideoTruth(name, masks=array.astype(bool), source=source)
    labels = array.reshape(-1)
    if labels.size and not np.isin(np.unique(labels), (0, 1)).all():
        raise UserError(f"{source}: frame labels must be 0/1, found values {np.unique(labels)[:5].tolist()}")
    return VideoTruth(name, labels=labels.astype(np.uint8), source=source)


def read_npz(path: Path) -> GroundTruth:
    """Per-video arrays in one ``.npz``: ``(N,)`` labels or ``(N, H, W)`` masks."""
    path = Path(path)
    truth = GroundTruth(sources=[str(path)])
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                truth.add(_labels_or_masks(key, archive[key], f"{path}[{key}]"))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path}: cannot read the archive ({type(exc).__name__}: {exc})") from None
    return truth


def read_mat(path: Path) -> GroundTruth:
    """A MATLAB ground-truth file: Avenue's ``avenue.mat`` (per-video label rows), an Avenue
    ``N_label.mat`` (``volLabel`` masks) or a UCF ``Matlab_formate`` file (``Annotation_file``)."""
    import scipy.io

    path = Path(path)
    try:
        content = scipy.io.loadmat(path)
    except Exception as exc:
        raise UserError(f"{path}: cannot read the .mat file ({type(exc).__name__}: {exc})") from None
    truth = GroundTruth(sources=[str(path)])
    if "volLabel" in content:
        masks = np.stack([np.asarray(m, bool) for m in content["volLabel"].reshape(-1)])
        name = path.stem.removesuffix("_label")
        truth.add(VideoTruth(name.zfill(2) if name.isdigit() else name, masks=masks, source=str(path)))
        return truth
    if "Annotation_file" in content:
        record = content["Annotation_file"].reshape(-1)[0]
        name = str(np.asarray(record["VideoName"]).reshape(-1)[0])
        anno = np.asarray(record["Anno"], dtype=np.int64).reshape(-1, 2)
        truth.add(VideoTruth(name, [(int(s), int(e)) for s, e in anno if s >= 0 and e >= 0], source=str(path)))
        return truth
    for key, value in content.items():
        if key.startswith("__"):
            continue
        truth.add(_labels_or_masks(key, np.asarray(value), f"{path}[{key}]"))
    if not truth.videos:
        raise UserError(f"{path}: no ground-truth arrays in this .mat file")
    return truth


def read_csv(path: Path) -> GroundTruth:
    """``video,start_frame,end_frame`` intervals or ``video,frame,label`` per-frame rows (see the module docstring)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    truth = GroundTruth(sources=[str(path)])
    if header[:3] == ["video", "start_frame", "end_frame"]:
        intervals: dict[str, list[tuple[int, int]]] = {}
        for number, row in enumerate(rows[1:], start=2):
            if not "".join(row).strip():
                continue
            if len(row) < 3:
                raise UserError(f"{path}:{number}: expected 'video,start_frame,end_frame', found {','.join(row)!r}")
            spans = intervals.setdefault(row[0].strip(), [])
            if row[1].strip() == "" and row[2].strip() == "":
                continue  # a listed normal video
            start, end = _int(row[1], path, number), _int(row[2], path, number)
            if end < start or start < 0:
                raise UserError(f"{path}:{number}: interval [{start}, {end}) is empty or negative")
            spans.append((start, end))
        for name, spans in intervals.items():
            truth.add(VideoTruth(name, spans, source=str(path)))
        return truth
    if len(header) >= 3 and header[0] == "video" and header[1].startswith("frame") and header[-1] == "label":
        frames: dict[str, dict[int, int]] = {}
        for number, row in enumerate(rows[1:], start=2):
            if not "".join(row).strip():
                continue
            label = _int(row[-1], path, number)
            if label not in (0, 1):
                raise UserError(f"{path}:{number}: label must be 0 or 1, found {row[-1]!r}")
            frames.setdefault(row[0].strip(), {})[_int(row[1], path, number)] = label
        for name, by_frame in frames.items():
            labels = np.zeros(max(by_frame) + 1, np.uint8)
            for index, label in by_frame.items():
                labels[index] = label
            truth.add(VideoTruth(name, labels=labels, source=str(path)))
        return truth
    raise UserError(f"{path}:1: expected the header 'video,start_frame,end_frame' or 'video,frame,label'")


def _is_ucf_txt(path: Path) -> bool:
    for _, line in _lines(path)[:5]:
        tokens = line.split()
        if len(tokens) >= 2 and not re.fullmatch(r"-?\d+", tokens[1]) and re.fullmatch(r"[A-Za-z_]+", tokens[1]):
            # a class name in column 2 followed only by numbers: UCF; XD multiclass has codes like B4 between pairs
            return all(re.fullmatch(r"-?\d+", t) for t in tokens[2:])
    return False


def load_ground_truth(path: Path) -> GroundTruth:
    """Read ``path`` (a file, or a folder of per-video files) with the reader its format needs."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"--gt {path}: no such file or folder")
    if path.is_dir():
        if any(path.glob("*.npy")):
            return read_mask_dir(path)
        mats = sorted(path.glob("*.mat"))
        if mats:
            truth = GroundTruth(sources=[str(path)])
            for mat in mats:
                truth.merge(read_mat(mat))
            return truth
        raise UserError(f"--gt {path}: a ground-truth folder must hold per-video .npy or .mat files")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return read_ucf_annotations(path) if _is_ucf_txt(path) else read_xd_annotations(path)
    if suffix == ".m":
        return read_ucsd_m(path)
    if suffix == ".npz":
        return read_npz(path)
    if suffix == ".npy":
        return _single_npy(path)
    if suffix == ".mat":
        return read_mat(path)
    if suffix == ".csv":
        return read_csv(path)
    raise UserError(f"--gt {path}: unknown ground-truth format {suffix!r} (see `vad-pipeline report --help`)")


def _single_npy(path: Path) -> GroundTruth:
    truth = GroundTruth(sources=[str(path)])
    truth.add(_labels_or_masks(path.stem, np.load(path, allow_pickle=False), str(path)))
    return truth


def load_many(paths: list[Path]) -> GroundTruth:
    """Several ``--gt`` sources merged (e.g. frame labels plus a pixel-mask archive)."""
    truth = GroundTruth()
    for path in paths:
        truth.merge(load_ground_truth(path))
    return truth


def evaluation_length(truth: VideoTruth | None, num_frames: int | None, snippets: int, convention: str) -> int:
    """How many frames of a video are evaluated.

    ``snippets`` (default, the public evaluation code): ``16 * T``; ``video``: every decoded frame (the trailing
    frames take the last snippet's score); ``xd``: XD-Violence's ``16 * floor((n - 1) / 16)`` for XD truth and
    ``16 * T`` otherwise."""
    covered = SNIPPET * snippets
    if convention == "snippets":
        return covered
    if convention == "video":
        return int(num_frames) if num_frames else covered
    if convention == "xd":
        if truth is not None and truth.cut == "xd" and num_frames:
            return SNIPPET * ((int(num_frames) - 1) // SNIPPET)
        return covered
    raise UserError(f"--frames {convention}: expected snippets, video or xd")
