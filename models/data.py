"""Snippet features and video-level labels for the weakly supervised methods.

Features come from one loader with two sources:

- the workspace's ``features/<tag>/`` folder written by ``vad-pipeline extract`` (names and source videos from the
  sidecars);
- ``--features DIR``: the public layouts users already have, searched recursively:
  ``name.npy`` with ``(T, D)`` or ``(T, crops, D)``; RTFM-style ``name_i3d.npy``; XD-Violence-style per-crop files
  ``name__0.npy, name__1.npy, ...`` (stacked into the crops axis); Sultani's 32-segment ``name.txt`` (np.loadtxt).

Labels (``normal`` / ``anomaly``), first match wins: ``--labels FILE`` (CSV ``video,label[,split]``; label
``normal|anomaly|0|1``), a ``normal/`` or ``anomaly/`` folder in the video's (or feature file's) path, then the
public naming conventions (UCF-Crime ``Normal_...`` is normal, any other UCF name anomalous only when the whole set
follows that convention; XD-Violence ``..._label_A`` normal, ``..._label_B...`` anomalous).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vad_pipeline.core.schemas import clip_name
from vad_pipeline.errors import UserError
from vad_pipeline.io.naming import LABELS, crop_index, label_from_name, label_from_path, video_name

log = logging.getLogger(__name__)




@dataclass(frozen=True)
class VideoFeatures:
    """One video's features on disk: ``name`` is the labels key (the video's file stem), ``key`` names outputs."""

    name: str
    key: str
    files: tuple[Path, ...]  # one file, or one per crop
    source: str | None = None  # original video path, when known

    def feature_dim(self) -> int:
        """``D``, read from the first file's header (``.npy``, memory-mapped) without loading the array."""
        path = self.files[0]
        if path.suffix == ".npy":
            try:
                return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[-1])
            except Exception:
                pass  # unreadable: load() says so in one line
        return int(self.load().shape[-1])

    def load(self) -> np.ndarray:
        """``(T, crops, D)`` float32."""
        arrays = [_read_array(path) for path in self.files]
        if len(arrays) == 1:
            array = arrays[0]
            return array[:, None, :] if array.ndim == 2 else array
        lengths = {a.shape[0] for a in arrays}
        if len(lengths) != 1 or any(a.ndim != 2 for a in arrays):
            raise UserError(f"{self.files[0]}: per-crop files of {self.name} disagree in shape; re-extract them")
        return np.stack(arrays, axis=1)


def _read_array(path: Path) -> np.ndarray:
    try:
        array = np.loadtxt(path, dtype=np.float32) if path.suffix == ".txt" else np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UserError(f"{path}: cannot read features ({type(exc).__name__}: {exc}); re-extract the file") from None
    if array.ndim not in (2, 3) or array.shape[0] == 0:
        raise UserError(f"{path}: features must be (T, D) or (T, crops, D), found shape {array.shape}")
    return array.astype(np.float32, copy=False)


def scan_feature_dir(folder: Path) -> list[VideoFeatures]:
    """Every video's features under ``folder`` in the public layouts (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--features {folder}: no such folder")
    groups: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".npy", ".txt") or not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".txt" and not path.stem[:1].isalnum():
            continue
        groups.setdefault(video_name(str(path.relative_to(folder).with_suffix(""))), []).append(path)
    videos = []
    for name, files in groups.items():
        files.sort(key=lambda p: crop_index(p.stem))
        videos.append(VideoFeatures(name=name, key=name, files=tuple(files), source=str(files[0])))
    if not videos:
        raise UserError(f"--features {folder}: no .npy or .txt feature files found")
    return videos


def scan_workspace_features(folder: Path) -> list[VideoFeatures]:
    """The videos of one ``features/<tag>/`` folder, named after their source videos."""
    videos = []
    for sidecar in sorted(folder.glob("*.json")):
        if sidecar.name == "config.json":
            continue
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        npy = sidecar.with_suffix(".npy")
        if npy.is_file():
            videos.append(VideoFeatures(name=clip_name(meta), key=meta["video_id"], files=(npy,),
                                        source=meta["video"]))
    return videos


# -- labels ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelEntry:
    label: int  # 1 anomalous, 0 normal
    split: str | None  # "train", "test" or None


def read_labels_csv(path: Path) -> dict[str, LabelEntry]:
    """``video,label[,split]`` with a header line; any bad line is one error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--labels {path}: no such file")
    entries: dict[str, LabelEntry] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["video", "label"]:
        raise UserError(f"{path}:1: expected the header 'video,label[,split]'")
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise UserError(f"{path}:{number}: expected 'video,label[,split]', found {','.join(row)!r}")
        name, label = video_name(row[0].strip()), row[1].strip().lower()
        if label not in LABELS:
            raise UserError(f"{path}:{number}: label {row[1]!r} is not one of normal, anomaly, 0, 1")
        split = row[2].strip().lower() if len(row) > 2 and row[2].strip() else None
        if split not in (None, "train", "test"):
            raise UserError(f"{path}:{number}: split {row[2]!r} is not train or test")
        entries[name] = LabelEntry(LABELS[label], split)
    return entries


_UCF_CLASSES = ("Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "RoadAccidents",
                "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism")


def assign_labels(videos: list[VideoFeatures], labels_file: Path | None,
                  allow_unlabeled: bool = False) -> tuple[dict[str, int], dict[str, str]]:
    """Video labels (name -> 0/1) and the splits the labels file gives (name -> train/test/val).

    Raises one clear error listing the videos no rule could label; with ``allow_unlabeled`` only when no video has
    a label (the others are said in one line and left out: new footage is for ``predict``)."""
    from_file = read_labels_csv(labels_file) if labels_file else {}
    labels: dict[str, int] = {}
    splits: dict[str, str] = {}
    unlabeled = []
    for video in videos:
        entry = from_file.get(video.name)
        label = entry.label if entry else label_from_path(video.source)
        if label is None:
            label = label_from_name(video.name)
        if label is None and video.name.startswith(_UCF_CLASSES):
            label = 1
        if label is None:
            unlabeled.append(video.name)
            continue
        labels[video.name] = label
        if entry and entry.split:
            splits[video.name] = entry.split
    if unlabeled and allow_unlabeled and labels:
        log.warning("%d video(s) without a label left out (%s%s); apply a trained model to them with "
                    "`vad-pipeline predict`", len(unlabeled), ", ".join(unlabeled[:3]), "..." if len(unlabeled) > 3 else "")
    elif unlabeled:
        where = f" in {labels_file}" if labels_file else ""
        raise UserError(
            f"no label for {len(unlabeled)} video(s) ({', '.join(unlabeled[:3])}{'...' if len(unlabeled) > 3 else ''})"
            f"{where}: pass --labels FILE (CSV video,label[,split]) or put videos in normal/ and anomaly/ folders"
        )
    return labels, splits


def segment_bag(features: np.ndarray, segments: int) -> np.ndarray:
    """Sultani's bag: ``(T, D)`` -> ``(segments, D)``, each segment the mean of its snippets (a segment that
    falls between snippets, when T < segments, takes the nearest one)."""
    length = features.shape[0]
    edges = np.linspace(0, length, segments + 1).round().astype(int)
    out = np.empty((segments, features.shape[1]), dtype=np.float32)
    for index in range(segments):
        start, stop = edges[index], edges[index + 1]
        if stop > start:
            out[index] = features[start:stop].mean(axis=0)
        else:
            out[index] = features[min(start, length - 1)]
    return out
