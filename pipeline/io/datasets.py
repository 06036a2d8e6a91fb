"""Single-scene benchmark layouts (UCSD Ped1/Ped2, CUHK Avenue, ShanghaiTech) -> clips the pipeline can read.

``find_layout(root)`` recognises:

=====================  ==========================================================================================
``ped-jpg``            ``training/frames/NN/*.jpg``, ``testing/frames/NN/*.jpg``, ``UCSDped2.m`` (or ``UCSDped1.m``),
                       optional ``pixel_masks_*.npz`` (the layout many public repositories use)
``ucsd``               ``Train/Train001/*.tif``, ``Test/Test001/*.tif``, ``Test/Test001_gt/*.bmp`` masks,
                       ``Test/UCSDped2.m`` (the dataset as UCSD distributes it; ``UCSDped2/`` may be the root)
``avenue``             ``training_videos/NN.avi``, ``testing_videos/NN.avi``, ``avenue.mat`` or
                       ``testing_label_mask/N_label.mat``
``shanghaitech``       ``training/videos/SS_VVV.avi``, ``testing/frames/SS_VVVV/*.jpg``, ``testing/test_frame_mask/``
=====================  ==========================================================================================

``vad-pipeline extract ROOT`` reads a recognised root as a dataset (``open_dataset``): its clips (frame folders are
read directly as videos, :mod:`vad_pipeline.io.frames`) under the names its ground truth uses (training clips
``train_<name>``, test clips their own), one of its published splits (``--split``: ``standard``; UCSD Ped2 also
``weak``, RTFM / TEVAD's weakly supervised split), the annotation files of UCF-Crime and XD-Violence and the
list roots of RTFM / TEVAD (:mod:`vad_pipeline.io.list_roots`), and records in the workspace (``record_dataset``) which clip is
in which split, its label and where the ground truth is, so that ``score`` and ``report`` need no ``--labels`` or
``--gt``. ``frames_to_video`` encodes a frame folder losslessly as FFV1 (the benchmark comparing both readings).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ..errors import UserError
from .atomic import atomic_path, save_npz_atomic
from .decode import VIDEO_EXTENSIONS, _container_frame_count
from .discovery import find_videos
from .frames import image_files, natural_key
from .ground_truth import load_ground_truth, load_many
from .list_roots import ListDataset, open_list_root
from .naming import label_from_name, read_list_file, video_name

log = logging.getLogger(__name__)


@dataclass
class Clip:
    """One clip: ``source`` is a video file or a folder of frames; ``name`` what outputs and ground truth call it."""

    name: str
    source: Path
    split: str  # "train" or "test"


@dataclass
class Layout:
    """A recognised dataset: its clips and the ground-truth files the readers take (frame labels, pixel masks)."""

    kind: str
    root: Path
    clips: list[Clip]
    ground_truth: list[Path] = field(default_factory=list)
    mask_folders: dict[str, Path] = field(default_factory=dict)  # UCSD: test clip -> folder of .bmp masks


def _frame_folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and image_files(p)),
                  key=lambda p: natural_key(p.name)) if folder.is_dir() else []


def _matching_m_file(candidates: list[Path], test_clips: int) -> list[Path]:
    """The ``UCSDped*.m`` whose number of ``gt_frame`` entries equals the number of test clips (Ped1 has 36,
    Ped2 12; both files may sit side by side)."""
    for path in candidates:
        if path.read_text(encoding="utf-8", errors="replace").count("gt_frame") == test_clips:
            return [path]
    return candidates[:1]


def detect_layout(root: Path) -> Layout | None:
    """The layout of ``root`` (see the module docstring), or None when it matches none."""
    root = Path(root)
    if not root.is_dir():
        return None
    if (root / "training" / "frames").is_dir() and (root / "testing" / "frames").is_dir():
        clips = [Clip(p.name, p, "train") for p in _frame_folders(root / "training" / "frames")]
        clips += [Clip(p.name, p, "test") for p in _frame_folders(root / "testing" / "frames")]
        tests = sum(c.split == "test" for c in clips)
        truth = _matching_m_file(sorted(root.glob("UCSDped*.m")), tests) or sorted(root.glob("frame_labels*.npz"))[:1]
        truth += sorted(root.glob("pixel_masks*.npz"))[:1]
        if (root / "testing" / "test_frame_mask").is_dir():
            truth = [root / "testing" / "test_frame_mask"]
        return Layout("ped-jpg" if not (root / "training" / "videos").is_dir() else "shanghaitech", root, clips,
                      truth)
    if (root / "training" / "videos").is_dir() and (root / "testing" / "frames").is_dir():
        clips = [Clip(p.stem, p, "train") for p in sorted((root / "training" / "videos").iterdir())
                 if p.suffix.lower() in VIDEO_EXTENSIONS]
        clips += [Clip(p.name, p, "test") for p in _frame_folders(root / "testing" / "frames")]
        return Layout("shanghaitech", root, clips, [root / "testing" / "test_frame_mask"])
    ucsd = root if (root / "Train").is_dir() else next((p for p in root.glob("UCSDped*") if (p / "Train").is_dir()), None)
    if ucsd is not None and (ucsd / "Test").is_dir():
        clips = [Clip(p.name, p, "train") for p in _frame_folders(ucsd / "Train")]
        tests = [p for p in _frame_folders(ucsd / "Test") if not p.name.endswith("_gt")]
        clips += [Clip(f"{int(p.name[4:]):02d}" if p.name[4:].isdigit() else p.name, p, "test") for p in tests]
        truth = _matching_m_file(sorted((ucsd / "Test").glob("UCSDped*.m")), len(tests))
        masks = {f"{int(p.name[4:7]):02d}": p for p in sorted((ucsd / "Test").glob("Test*_gt")) if p.is_dir()}
        return Layout("ucsd", ucsd, clips, truth, masks)
    if (root / "training_videos").is_dir() and (root / "testing_videos").is_dir():
        clips = [Clip(p.stem, p, "train") for p in sorted((root / "training_videos").iterdir())
                 if p.suffix.lower() in VIDEO_EXTENSIONS]
        clips += [Clip(p.stem, p, "test") for p in sorted((root / "testing_videos").iterdir())
                  if p.suffix.lower() in VIDEO_EXTENSIONS]
        # frame labels and pixel masks: both when both are there (the masks give RBDC / TBDC)
        truth = [p for p in (root / "avenue.mat", root / "testing_label_mask") if p.exists()]
        return Layout("avenue", root, clips, truth)
    return None


#: what each recognised layout needs, as (name, the folders it needs) for the line that says why none matched
LAYOUT_NEEDS = (
    ("UCSD / ShanghaiTech jpg layout", ("training/frames", "testing/frames")),
    ("ShanghaiTech", ("training/videos", "testing/frames")),
    ("UCSD original", ("Train", "Test")),
    ("CUHK Avenue", ("training_videos", "testing_videos")),
)


def layouts_tried(root: Path) -> str:
    """Which layouts were tried on ``root`` and what each was missing (one line's worth)."""
    parts = []
    for name, needs in LAYOUT_NEEDS:
        missing = [need + "/" for need in needs if not (Path(root) / need).is_dir()]
        parts.append(f"{name}: no {' or '.join(missing)}" if missing else f"{name}: no clips inside")
    parts += ["UCF-Crime: no Anomaly_Train.txt + Temporal_Anomaly_Annotation*.txt",
              "XD-Violence: no annotations.txt", "RTFM / TEVAD lists: no NAME.list + NAME-test.list"]
    return "tried " + "; ".join(parts)


def nothing_found(inputs: Iterable[Path | str]) -> UserError:
    """The one line for inputs that hold no video: what was looked for, and for a folder the dataset layouts tried
    and what each was missing."""
    inputs = [Path(p) for p in inputs]
    folders = [p for p in inputs if p.is_dir()]
    where = ", ".join(map(str, inputs))
    if len(folders) == 1 and len(inputs) == 1:
        empty = not any(True for _ in folders[0].iterdir())
        if empty:
            return UserError(f"{folders[0]}: empty folder; pass video files, folders of frames or a dataset root")
        return UserError(f"{folders[0]}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS)[:4])}, ...) or folders of "
                         f"images, and not a dataset root ({layouts_tried(folders[0])})")
    return UserError(f"no video files or folders of frames found in {where}; pass video files or folders")


def video_paths(inputs: list[Path], command: str) -> list[Path]:
    """The videos (files and frame folders) under ``inputs`` for ``command``; one line when there are none."""
    if not inputs:
        raise UserError(f"{command}: no videos given; pass video files or folders")
    paths = find_videos(inputs)
    if not paths:
        raise nothing_found(inputs)
    return paths


def find_layout(root: Path) -> Layout:
    """Recognise the layout of ``root`` (see the module docstring) or raise one clear error."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--data {root}: no such folder")
    layout = detect_layout(root)
    if layout is None or not layout.clips:
        raise UserError(f"--data {root}: not a known dataset layout ({layouts_tried(root)}); see "
                        "vad_pipeline.io.datasets")
    return layout


def frames_to_video(frames: list[Path], target: Path, fps: float) -> Path:
    """Encode image files losslessly as FFV1 ``.avi`` at ``target`` (atomic; reused when present)."""
    if target.is_file():
        return target
    first = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
    if first is None:
        raise UserError(f"{frames[0]}: cannot be read as an image; re-copy the dataset")
    height, width = first.shape[:2]
    with atomic_path(target) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
        if not writer.isOpened():
            raise UserError("OpenCV cannot write FFV1 video here; install an opencv-python build with FFmpeg")
        try:
            for path in frames:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None or image.shape[:2] != (height, width):
                    raise UserError(f"{path}: unreadable or of another size than {frames[0].name}")
                writer.write(image)
        finally:
            writer.release()
    return target


def ucsd_mask_archive(layout: Layout, target: Path) -> Path | None:
    """Pack the original UCSD ``Test0NN_gt/*.bmp`` masks into an ``.npz`` the ground-truth readers take."""
    if not layout.mask_folders:
        return None
    if target.is_file():
        return target
    arrays = {}
    for name, folder in layout.mask_folders.items():
        masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in image_files(folder)]
        arrays[name] = np.stack([m > 0 for m in masks])
    save_npz_atomic(target, arrays, compressed=True)
    return target


# -- a dataset root as the input of `vad-pipeline extract` ---------------------------------------------------------

#: the weakly supervised UCSD Ped2 split of RTFM / TEVAD (``list/ped2-i3d{,-test}.list``): 10 training clips (6 of the
#: official test clips, anomalous, and 4 normal training clips) and 18 test clips, features with ten crops and the
#: last snippet padded (16 * ceil(frames / 16) frames per clip: 3,200 frames in ``gt-ped2.npy``)
PED2_WEAK_TRAIN = ("Test002", "Test006", "Test009", "Test010", "Test011", "Test012",
                   "Train007", "Train008", "Train014", "Train015")
PED2_WEAK_TEST = ("Test001", "Test003", "Test004", "Test005", "Test007", "Test008",
                  "Train001", "Train002", "Train003", "Train004", "Train005", "Train006", "Train009", "Train010",
                  "Train011", "Train012", "Train013", "Train016")

DATASET_FOLDER = "dataset"  # <workdir>/dataset/: dataset.json, labels.csv (and pixel_masks.npz for UCSD's .bmp masks)
DATASET_SCHEMA = "vad-pipeline/dataset/1"


@dataclass(frozen=True)
class SplitDefinition:
    """A published split of a dataset: its description and the extraction its literature used (``crops``,
    ``tail``; None: the command's defaults) and the evaluation convention (``frames``, ``normalize``)."""

    name: str
    description: str
    crops: str | None = None
    tail: str | None = None
    frames: str = "video"
    normalize: bool = True


STANDARD_SPLIT = SplitDefinition(
    "standard", "the official one-class split: normal training clips, test clips with frame labels; frame AUC over "
    "every decoded frame, scores min-max normalised per clip (the object-centric convention)")
PED2_WEAK_SPLIT = SplitDefinition(
    "weak", "the weakly supervised split of RTFM / TEVAD (10 training clips with video labels, 18 test clips); "
    "ten-crop I3D features, last snippet padded, frame AUC over 16 T frames", crops="ten", tail="pad",
    frames="snippets", normalize=False)


@dataclass
class DatasetClip:
    """One clip of a dataset split: ``name`` is what labels and ground truth call it, ``label`` 1 when anomalous."""

    name: str
    source: Path
    split: str
    label: int


@dataclass
class Dataset:
    """A dataset root read through one of its splits: what ``extract ROOT`` records in the workspace."""

    title: str  # e.g. "UCSD Ped2 (jpg layout)"
    layout: Layout
    split: SplitDefinition
    splits: tuple[str, ...]
    clips: list[DatasetClip]
    ground_truth: list[Path]
    #: per test clip frame labels read from a file that holds them all (a list root's ``gt-*.npy``), which
    #: ``record_dataset`` writes per clip into the workspace for ``report``
    frame_labels: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> str:
        """The one line ``extract`` prints: what was found."""
        train = sum(c.split == "train" for c in self.clips)
        test = sum(c.split == "test" for c in self.clips)
        truth = ["frame labels"] if self.ground_truth or self.frame_labels else []
        if self.layout.mask_folders or any("mask" in p.name for p in self.ground_truth):
            truth.append("pixel masks")
        split = f", {self.split.name} split" if len(self.splits) > 1 else ""
        return (f"{self.title}{split}: {train} training clips, {test} test clips, "
                f"{' + '.join(truth) or 'no ground truth'}")


def _dataset_name(layout: Layout) -> str:
    """The dataset a layout holds: UCSD Ped1 / Ped2 by their ground-truth file, else by layout."""
    if layout.kind in ("ped-jpg", "ucsd"):
        names = " ".join(p.name for p in layout.ground_truth) + " " + layout.root.name
        for ped in ("ped1", "ped2"):
            if ped in names.lower():
                return f"UCSD {ped.capitalize()}"
        return "UCSD pedestrian"
    return {"shanghaitech": "ShanghaiTech", "avenue": "CUHK Avenue"}.get(layout.kind, layout.kind)


_LAYOUT_WORDS = {"ped-jpg": "jpg layout", "ucsd": "original layout", "avenue": "Avenue layout",
                 "shanghaitech": "ShanghaiTech layout"}


def _clip_number(name: str) -> int | None:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else None


def _frame_count(source: Path) -> int | None:
    """Frames of a clip without decoding it: images in a folder, the header's count of a video file."""
    return len(image_files(source)) if source.is_dir() else _container_frame_count(source) or None


def split_of(root: Path, split: str | None) -> SplitDefinition | None:
    """The split ``extract ROOT --split`` reads (its extraction defaults), without reading the ground truth; None
    when ``root`` is not one of the single-scene roots (the annotated sets have no extraction defaults)."""
    layout = detect_layout(root) if Path(root).is_dir() else None
    if layout is None or not layout.clips:
        lists = open_list_root(Path(root), split, _frame_count) if Path(root).is_dir() else None
        return _list_split_definition(lists) if lists is not None else None
    return PED2_WEAK_SPLIT if split == "weak" and _dataset_name(layout) == "UCSD Ped2" else STANDARD_SPLIT


def open_dataset(root: Path, split: str | None = None, masks_archive: Path | None = None) -> Dataset | None:
    """``root`` read as a dataset through ``split`` (default: the standard one), or None when ``root`` matches no
    layout. Labels come from the ground truth (a test clip with an anomalous frame is anomalous); a ground truth
    whose length disagrees with its clip's frames is one error naming both. ``masks_archive``: where UCSD's
    ``.bmp`` masks are packed for the readers (original layout only)."""
    layout = detect_layout(root)
    if layout is None or not layout.clips:
        annotated = _annotated_dataset(Path(root), split) or _list_dataset(Path(root), split)
        if annotated is None and split:
            raise UserError(f"--split {split}: {root} is not a dataset root ({layouts_tried(root)})")
        return annotated
    name = _dataset_name(layout)
    splits = ("standard", "weak") if name == "UCSD Ped2" else ("standard",)
    chosen = split or "standard"
    if chosen not in splits:
        raise UserError(f"--split {chosen}: {name} has the split(s) {', '.join(splits)}")
    truth_files = list(layout.ground_truth)
    if masks_archive is not None and layout.mask_folders:
        truth_files.append(ucsd_mask_archive(layout, masks_archive))
    truth = load_many(truth_files) if truth_files else None
    clips: list[DatasetClip] = []
    definition = STANDARD_SPLIT
    if chosen == "standard":
        for clip in layout.clips:
            if clip.split == "train":
                clips.append(DatasetClip(f"train_{clip.name}", clip.source, "train", 0))
                continue
            video = truth.get(clip.name) if truth is not None else None
            frames = _frame_count(clip.source)
            if video is not None and video.num_frames is not None and frames and video.num_frames != frames:
                raise UserError(f"{video.source or truth_files[0]}: ground truth of clip {clip.name} has "
                                f"{video.num_frames} frames but {clip.source} has {frames}; use the ground truth "
                                "of this copy of the dataset")
            clips.append(DatasetClip(clip.name, clip.source, "test", int(video is not None and
                                                                         video.frame_labels(frames).any())))
    else:
        definition = PED2_WEAK_SPLIT
        by_name = {f"{'Train' if c.split == 'train' else 'Test'}{_clip_number(c.name) or 0:03d}": c
                   for c in layout.clips}
        missing = [n for n in PED2_WEAK_TRAIN + PED2_WEAK_TEST if n not in by_name]
        if missing:
            raise UserError(f"--split weak: {root} lacks the clip(s) {', '.join(missing[:4])} the split names")
        for wanted, split_name in [(n, "train") for n in PED2_WEAK_TRAIN] + [(n, "test") for n in PED2_WEAK_TEST]:
            clip = by_name[wanted]
            video = truth.get(clip.name) if truth is not None and clip.split == "test" else None
            anomalous = video is not None and video.frame_labels(_frame_count(clip.source)).any()
            clips.append(DatasetClip(wanted, clip.source, split_name, int(anomalous)))
    title = f"{name} ({_LAYOUT_WORDS.get(layout.kind, layout.kind)})"
    return Dataset(title, layout, definition, splits, clips, truth_files)


#: the weakly supervised sets distributed as videos plus annotation files: the convention ``report`` evaluates with
UCF_SPLIT = SplitDefinition("standard", "UCF-Crime's official split: Anomaly_Train.txt for training (video labels "
                            "from the class), the 290 annotated test videos; frame AUC over 16 T frames",
                            frames="snippets", normalize=False)
XD_SPLIT = SplitDefinition("standard", "XD-Violence's split: test videos are those annotations.txt lists or that sit "
                           "under a test* folder, the others train; video labels from the name (label_A normal); "
                           "frames counted as XD-Violence's code does", frames="xd", normalize=False)


def _find_file(root: Path, pattern: str) -> Path | None:
    """The first file matching ``pattern`` in ``root`` or up to two folders below it."""
    for depth in ("", "*/", "*/*/"):
        found = sorted(root.glob(depth + pattern))
        if found:
            return found[0]
    return None


def _annotated_dataset(root: Path, split: str | None) -> Dataset | None:
    """UCF-Crime (``Anomaly_Train.txt`` + ``Temporal_Anomaly_Annotation*.txt``) or XD-Violence (``annotations.txt``
    naming ``..._label_X`` videos) with their videos (or frame folders) anywhere under ``root``; None otherwise.
    Listed videos that are not under ``root`` are left out, with one line saying how many."""
    if not root.is_dir():
        return None
    train_list, ucf_truth = _find_file(root, "Anomaly_Train.txt"), _find_file(root, "Temporal_Anomaly_Annotation*.txt")
    xd_truth = _find_file(root, "annotations.txt")
    if train_list and ucf_truth:
        kind, title, truth_file, definition = "ucf-crime", "UCF-Crime", ucf_truth, UCF_SPLIT
    elif xd_truth and "_label_" in xd_truth.read_text(encoding="utf-8", errors="replace")[:2000]:
        kind, title, truth_file, definition = "xd-violence", "XD-Violence", xd_truth, XD_SPLIT
    else:
        return None
    if split not in (None, "standard"):
        raise UserError(f"--split {split}: {title} has the split(s) standard")
    truth = load_ground_truth(truth_file)
    videos = {video_name(p.name if p.is_dir() else p.stem): p for p in find_videos([root])}
    clips: list[DatasetClip] = []
    if kind == "ucf-crime":
        listed, tests = read_list_file(train_list), truth.videos
        for name in sorted(listed):
            if name in videos:
                label = label_from_name(name)
                clips.append(DatasetClip(name, videos[name], "train", 1 if label is None else label))
        for name in sorted(tests):
            if name in videos:
                clips.append(DatasetClip(name, videos[name], "test", int(bool(tests[name].intervals))))
        missing = len(listed) + len(tests) - len(clips)
    else:
        for name, path in sorted(videos.items()):
            relative = path.relative_to(root).parts[:-1]
            test = name in truth or any(part.lower().startswith("test") for part in relative)
            label = label_from_name(name)
            if label is None:
                continue
            clips.append(DatasetClip(name, path, "test" if test else "train", label))
        missing = sum(1 for name in truth.videos if name not in videos)
    if not clips:
        raise UserError(f"{root}: {truth_file.name} found but none of the videos it lists is under {root}; put the "
                        "videos (or their frame folders) there")
    if missing:
        log.warning("%s: %d listed video(s) are not under %s; they are left out", title, missing, root)
    layout = Layout(kind, root, [Clip(c.name, c.source, c.split) for c in clips], [truth_file])
    return Dataset(f"{title} (annotation files)", layout, definition, ("standard",), clips, [truth_file])


def _list_split_definition(lists: ListDataset) -> SplitDefinition:
    return SplitDefinition(
        lists.split.name, f"the split of {lists.split.train_list.name} / {lists.split.test_list.name} (RTFM / TEVAD "
        f"list files; training labels by the lists' convention); {lists.crops or 'centre'}-crop features, last "
        f"snippet {'padded' if lists.tail == 'pad' else 'dropped'}, frame AUC over 16 T frames", crops=lists.crops,
        tail=lists.tail,
        frames="snippets", normalize=False)


def _list_dataset(root: Path, split: str | None) -> Dataset | None:
    """A list root (:mod:`vad_pipeline.io.list_roots`) as a dataset, or None when ``root`` holds no list pair."""
    lists = open_list_root(root, split, _frame_count)
    if lists is None:
        return None
    clips = [DatasetClip(c.name, c.source, c.split, c.label) for c in lists.clips]
    layout = Layout("lists", root, [Clip(c.name, c.source, c.split) for c in clips])
    title = "RTFM / TEVAD lists" + (f" ({lists.split.name})" if len(lists.splits) == 1 else "")
    return Dataset(title, layout, _list_split_definition(lists), lists.splits,
                   clips, [], lists.frame_labels)


def record_dataset(workdir: Path, dataset: Dataset, keys: dict[str, str]) -> Path:
    """Write ``<workdir>/dataset/``: ``dataset.json`` (schema below) and ``labels.csv`` (``video,label,split``, the
    file ``score --labels`` takes), atomically. ``keys``: clip name -> video id of the clips that were read.

    ``dataset.json``: ``schema``, ``title``, ``kind`` (layout), ``root``, ``split``, ``splits`` (the dataset's
    published splits), ``description`` (the split's), ``evaluation`` (``frames``, ``normalize``: the split's
    convention, what ``report`` uses unless told otherwise), ``ground_truth`` (files ``report`` reads), ``labels``
    (the CSV), ``clips`` (``name``, ``source``, ``split``, ``label``, ``video_id``)."""
    folder = Path(workdir) / DATASET_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["video", "label", "split"])
    for clip in dataset.clips:
        writer.writerow([clip.name, "anomaly" if clip.label else "normal", clip.split])
    labels = folder / "labels.csv"
    with atomic_path(labels) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")
    ground_truth = [Path(p).resolve() for p in dataset.ground_truth]
    if dataset.frame_labels:
        save_npz_atomic(folder / "frame_labels.npz", dataset.frame_labels, compressed=True)
        ground_truth.append((folder / "frame_labels.npz").resolve())
    record = {
        "schema": DATASET_SCHEMA, "title": dataset.title, "kind": dataset.layout.kind,
        "root": str(Path(dataset.layout.root).resolve()), "split": dataset.split.name, "splits": list(dataset.splits),
        "description": dataset.split.description,
        "evaluation": {"frames": dataset.split.frames, "normalize": dataset.split.normalize},
        "ground_truth": [str(p) for p in ground_truth], "labels": str(labels),
        "clips": [{"name": c.name, "source": str(c.source), "split": c.split, "label": c.label,
                   "video_id": keys.get(c.name)} for c in dataset.clips],
    }
    target = folder / "dataset.json"
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return target


def recorded_dataset(workdir: Path) -> dict | None:
    """The dataset ``extract ROOT`` recorded in ``workdir`` (``dataset.json``), or None; an unreadable record is
    one line saying to extract again."""
    path = Path(workdir) / DATASET_FOLDER / "dataset.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({type(exc).__name__}); run `vad-pipeline extract ROOT` again") from None
    if record.get("schema") != DATASET_SCHEMA:
        raise UserError(f"{path}: not a dataset record of this version; run `vad-pipeline extract ROOT` again")
    return record
