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

``materialize`` turns every clip into a video file under a folder of the workspace: frame folders are encoded
losslessly (FFV1 in ``.avi``, decoded bit-exactly by decord and OpenCV), video files are hard-linked (copied across
file systems). Training clips are named ``train_<name>``, test clips keep the name the ground truth uses.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_path, save_npz_atomic
from .decode import VIDEO_EXTENSIONS
from .errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


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


def _frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _frame_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _frames(p)) if folder.is_dir() else []


def _matching_m_file(candidates: list[Path], test_clips: int) -> list[Path]:
    """The ``UCSDped*.m`` whose number of ``gt_frame`` entries equals the number of test clips (Ped1 has 36,
    Ped2 12; both files may sit side by side)."""
    for path in candidates:
        if path.read_text(encoding="utf-8", errors="replace").count("gt_frame") == test_clips:
            return [path]
    return candidates[:1]


def find_layout(root: Path) -> Layout:
    """Recognise the layout of ``root`` (see the module docstring) or raise one clear error."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--data {root}: no such folder")
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
    raise UserError(f"--data {root}: not a known layout (UCSD Ped jpg or original, Avenue, ShanghaiTech); see "
                    "vad_pipeline.datasets")


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


def materialize(layout: Layout, folder: Path, fps: float = 25.0) -> dict[str, Path]:
    """Every clip of ``layout`` as a video file under ``folder/{train,test}/``; returns name -> path
    (training clips as ``train_<name>``)."""
    out: dict[str, Path] = {}
    for clip in layout.clips:
        name = f"train_{clip.name}" if clip.split == "train" else clip.name
        if clip.source.is_dir():
            target = folder / clip.split / f"{name}.avi"
            frames_to_video(_frames(clip.source), target, fps)
        else:
            target = folder / clip.split / f"{name}{clip.source.suffix.lower()}"
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(clip.source, target)
                except OSError:
                    shutil.copy2(clip.source, target)
        out[name] = target
    return out


def ucsd_mask_archive(layout: Layout, target: Path) -> Path | None:
    """Pack the original UCSD ``Test0NN_gt/*.bmp`` masks into an ``.npz`` the ground-truth readers take."""
    if not layout.mask_folders:
        return None
    if target.is_file():
        return target
    arrays = {}
    for name, folder in layout.mask_folders.items():
        masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in _frames(folder)]
        arrays[name] = np.stack([m > 0 for m in masks])
    save_npz_atomic(target, arrays, compressed=True)
    return target
