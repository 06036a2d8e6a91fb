"""The list-file roots of the weakly supervised literature (RTFM, TEVAD): a dataset given as feature lists.

A *list root* is a folder holding, directly or in ``list/`` (as the public repositories ship them):

- a training list ``NAME-....list`` and its test list (the same name with ``-test``, or ``test`` for ``train``:
  ``ped2-i3d.list`` / ``ped2-i3d-test.list``, ``shanghai-i3d-train-10crop.list`` / ``...-test-10crop.list``), one
  feature path per line (``.../Test002_i3d.npy``): the clip is the file's stem without ``_i3d``;
- the frame ground truth ``gt-KEY.npy`` (``gt-ped2.npy``, ``gt-sh2.npy``): every test clip's frame labels
  concatenated in the test list's order, 16 frames per feature snippet (the last snippet padded or dropped);
- the clips themselves, video files or frame folders, anywhere under the root, named as the lists name them.

The training labels follow the public code's convention (TEVAD / RTFM ``dataset.py``): a training list holds its
anomalous clips first, as many as ``ANOMALOUS_FIRST`` says for the dataset the list is named after; lists of other
datasets need names that say the label (``_label_A``, ``Normal_``). A test clip is anomalous when any of its frames
in the ground truth is. The split's extraction follows the lists: ten or five crops when the paths say
``ten_crop`` / ``five_crop``, the last snippet padded or dropped, whichever makes the clips' frames add up to the
ground truth's length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .discovery import find_videos
from .naming import label_from_name, video_name

log = logging.getLogger(__name__)

SNIPPET_FRAMES = 16

#: how many of a training list's first entries are anomalous, by the dataset the list is named after: the split
#: points of the public RTFM / TEVAD code (``dataset.py`` slices ``list[:N]`` as anomalous, ``list[N:]`` as normal)
ANOMALOUS_FIRST = {"shanghai": 63, "ucf": 810, "violence": 1904, "ped2": 6}


@dataclass(frozen=True)
class ListSplit:
    """One pair of lists in a list root: ``name`` (``ped2``, ``shanghai``: the training list's first word), the
    two lists and the ground truth that goes with them (None when the root has none for this dataset)."""

    name: str
    train_list: Path
    test_list: Path
    ground_truth: Path | None


@dataclass
class ListClip:
    """A clip named by a list and found under the root; ``label`` 1 when anomalous (a test clip without ground
    truth: from its name, else 0)."""

    name: str
    source: Path
    split: str
    label: int


def read_ordered_list(path: Path) -> list[str]:
    """The clip names of a list file, in its order (one feature path or name per line; ``_i3d`` and crop suffixes
    removed, Windows paths understood)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc}); check the list file") from None
    return [video_name(line.strip()) for line in lines if line.strip()]


def _list_folder(root: Path) -> Path | None:
    for folder in (root, root / "list"):
        if folder.is_dir() and any(folder.glob("*.list")):
            return folder
    return None


def _train_list_of(test_list: Path) -> Path | None:
    stem = test_list.stem
    for candidate in (stem.replace("-test", "", 1), stem.replace("_test", "", 1), stem.replace("test", "train", 1)):
        path = test_list.with_name(candidate + ".list")
        if candidate != stem and path.is_file():
            return path
    return None


def _ground_truth_for(name: str, folder: Path) -> Path | None:
    """``gt-KEY.npy`` whose key, without trailing digits, begins the dataset's name (``gt-sh2`` for ``shanghai``)."""
    for path in sorted(folder.glob("gt-*.npy")):
        key = path.stem[3:].lower()
        if name.startswith(key) or name.startswith(key.rstrip("0123456789")):
            return path
    return None


def find_list_splits(root: Path) -> list[ListSplit]:
    """Every (training list, test list) pair under ``root`` (or ``root/list``), with its ground truth."""
    folder = _list_folder(Path(root))
    if folder is None:
        return []
    splits = []
    for test_list in sorted(folder.glob("*.list")):
        if "test" not in test_list.stem.lower():
            continue
        train_list = _train_list_of(test_list)
        if train_list is None:
            continue
        name = train_list.stem.split("-", 1)[0].split("_", 1)[0].lower()
        splits.append(ListSplit(name, train_list, test_list, _ground_truth_for(name, folder)))
    return splits


def _crops_of(list_file: Path) -> str | None:
    head = list_file.read_text(encoding="utf-8", errors="replace")[:4000].lower()
    for word, crops in (("ten_crop", "ten"), ("10crop", "ten"), ("five_crop", "five"), ("5crop", "five")):
        if word in head:
            return crops
    return None


def _training_labels(split: ListSplit, names: list[str]) -> list[int]:
    from_names = [label_from_name(n) for n in names]
    if all(label is not None for label in from_names):
        return [int(label) for label in from_names]
    if split.name in ANOMALOUS_FIRST:
        first = ANOMALOUS_FIRST[split.name]
        return [int(index < first) for index in range(len(names))]
    raise UserError(f"{split.train_list}: cannot tell which training clips are anomalous (the lists' convention "
                    f"knows how many come first only for {', '.join(sorted(ANOMALOUS_FIRST))}); name the list after "
                    "one of them, or extract the clips as videos and pass `score --labels FILE`")


def _tail_matching(split: ListSplit, truth: np.ndarray, counts: list[int]) -> str:
    """``pad`` or ``drop``: the last-snippet convention under which the test clips' frames add up to the ground
    truth's length, or one error giving both sums."""
    padded = sum(SNIPPET_FRAMES * -(-n // SNIPPET_FRAMES) for n in counts)
    dropped = sum(SNIPPET_FRAMES * (n // SNIPPET_FRAMES) for n in counts)
    if len(truth) == padded:
        return "pad"
    if len(truth) == dropped:
        return "drop"
    raise UserError(f"{split.ground_truth}: {len(truth)} frame labels, but the {len(counts)} test clips of "
                    f"{split.test_list.name} give {padded} frames with the last snippet padded and {dropped} with it "
                    "dropped; use the ground truth of this copy of the clips")


@dataclass
class ListDataset:
    """What a list root holds for one split: its clips (in list order), the extraction the lists used, and each
    test clip's frame labels ``(16 T,)`` sliced from the ground truth (empty without one)."""

    split: ListSplit
    splits: tuple[str, ...]
    clips: list[ListClip]
    crops: str | None
    tail: str | None
    frame_labels: dict[str, np.ndarray]


def open_list_root(root: Path, split: str | None, frame_count) -> ListDataset | None:
    """``root`` read as a list root through the pair named ``split`` (default: the only pair whose clips are under
    ``root``), or None when ``root`` holds no list pair. ``frame_count(source)``: a clip's frames. Listed training
    clips that are not under ``root`` are left out with one line; a missing test clip is an error when there is
    ground truth to slice (its frames place every later clip's labels)."""
    root = Path(root)
    splits = find_list_splits(root) if root.is_dir() else []
    if not splits:
        return None
    names = tuple(s.name for s in splits)
    found = {}
    for path in find_videos([root], keep_links=True):
        found.setdefault(path.name if path.is_dir() else path.stem, path)
    if split:
        chosen = next((s for s in splits if s.name == split), None)
        if chosen is None:
            raise UserError(f"--split {split}: {root} holds the lists of {', '.join(names)}")
    else:
        present = [s for s in splits if any(n in found for n in read_ordered_list(s.test_list))]
        if len(present) != 1:
            where = (f"the clips of {', '.join(s.name for s in present)} are all" if present
                     else "no clip the lists name is")
            raise UserError(f"{root}: lists of {', '.join(names)}; {where} under it: choose one with --split NAME "
                            "(and put its clips, videos or frame folders named as the lists name them, under it)")
        chosen = present[0]
    train_names, test_names = read_ordered_list(chosen.train_list), read_ordered_list(chosen.test_list)
    clips = [ListClip(n, found[n], "train", label) for n, label in zip(train_names, _training_labels(chosen,
                                                                                                       train_names))
             if n in found]
    left_out = len(train_names) - len(clips)
    missing_tests = [n for n in test_names if n not in found]
    if not clips:
        raise UserError(f"{chosen.train_list}: none of its {len(train_names)} clips is under {root}; put the videos "
                        "(or frame folders) there, named as the list names them (Test002 for .../Test002_i3d.npy)")
    frame_labels: dict[str, np.ndarray] = {}
    tail = None
    if chosen.ground_truth is not None:
        if missing_tests:
            raise UserError(f"{chosen.test_list}: the test clip(s) {', '.join(missing_tests[:4])} are not under "
                            f"{root}; {chosen.ground_truth.name} holds every test clip's frames in order, so all "
                            "must be there")
        try:
            truth = np.load(chosen.ground_truth).astype(np.uint8).ravel()
        except (OSError, ValueError) as exc:
            raise UserError(f"{chosen.ground_truth}: not a readable .npy of frame labels ({exc})") from None
        counts = [frame_count(found[n]) or 0 for n in test_names]
        tail = _tail_matching(chosen, truth, counts)
        offset = 0
        for name, count in zip(test_names, counts):
            length = SNIPPET_FRAMES * (-(-count // SNIPPET_FRAMES) if tail == "pad" else count // SNIPPET_FRAMES)
            frame_labels[name] = truth[offset:offset + length]
            offset += length
    elif missing_tests:
        left_out += len(missing_tests)
    for name in test_names:
        if name in found:
            label = int(frame_labels[name].any()) if name in frame_labels else label_from_name(name)
            clips.append(ListClip(name, found[name], "test", label or 0))
    if left_out:
        log.warning("%s: %d listed clip(s) are not under %s; they are left out", chosen.name, left_out, root)
    return ListDataset(chosen, names, clips, _crops_of(chosen.train_list), tail, frame_labels)
