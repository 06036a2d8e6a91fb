"""How the field names videos and their labels: the labels key of a file or a list entry (``video_name``), labels
read from public naming (``label_from_name``: XD-Violence, UCF-Crime; ``label_from_path``: normal/ and anomaly/
folders), and RTFM-style list files (``read_list_file``). Dataset roots, training and evaluation all key videos
this way."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError

LABELS = {"normal": 0, "anomaly": 1, "anomalous": 1, "abnormal": 1, "0": 0, "1": 1}
_CROP_SUFFIX = re.compile(r"^(?P<name>.+)__(?P<crop>\d+)$")


def video_name(path_or_name: str) -> str:
    """The labels key of a feature file or list entry: its stem without ``_i3d`` / ``__<crop>`` suffixes
    (Windows-style paths from public list files are understood)."""
    stem = path_or_name.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".npy", ".txt", ".mp4", ".avi"):
        stem = stem.removesuffix(ext)
    match = _CROP_SUFFIX.match(stem)
    if match:
        stem = match.group("name")
    return stem.removesuffix("_i3d")


def crop_index(stem: str) -> int:
    """The crop number of a per-crop feature file (``name__3`` -> 3), 0 when its name has none."""
    match = _CROP_SUFFIX.match(stem)
    return int(match.group("crop")) if match else 0


def label_from_path(source: str | None) -> int | None:
    """1 / 0 when a folder named anomaly/anomalous/abnormal or normal is in the path, else None."""
    if not source:
        return None
    for part in reversed(Path(source.replace("\\", "/")).parts[:-1]):
        key = part.lower()
        if key in ("normal", "normals"):
            return 0
        if key in ("anomaly", "anomalous", "abnormal", "anomalies"):
            return 1
    return None


def label_from_name(name: str) -> int | None:
    """XD-Violence ``_label_A`` (normal) / ``_label_B..`` (anomalous); UCF-Crime ``Normal_`` (normal)."""
    match = re.search(r"_label_([A-Z][0-9A-Z-]*)", name)
    if match:
        return 0 if match.group(1) == "A" else 1
    if name.startswith("Normal_"):
        return 0
    return None


def read_list_file(path: Path) -> set[str]:
    """Video names from an RTFM-style list (one feature path or name per line)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such list file")
    return {video_name(line.strip()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
