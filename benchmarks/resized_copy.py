"""A copy of a frame-folder dataset root at a lower resolution: the third development set of the single-scene rule.

UCSD Ped2 shrunk to 238 x 158 (UCSD Ped1's frame size) stands for scenes of lower resolution than the two
development scenes, without looking at any other scene's labels (docs/results-single-scene.md)::

    .venv/bin/python benchmarks/resized_copy.py ../shared/data/ucsd-ped2 /tmp/ped2-158 --size 238x158
    .venv/bin/python benchmarks/accuracy.py --suite ped2 --data /tmp/ped2-158

Every image is resized with area interpolation (jpg quality 95), pixel masks (``pixel_masks*.npz``, one
``(frames, H, W)`` array per clip) with nearest-neighbour, and every other file (frame labels, ``*.m``) is copied
as it is, so the copy is recognised as the same layout with the same ground truth.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vad_pipeline.io.frames import IMAGE_EXTENSIONS


def resized_copy(root: Path, out: Path, width: int, height: int, progress: bool = True) -> int:
    """Write ``root`` at ``width`` x ``height`` into ``out`` and return the number of images written."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    images = 0
    for path in tqdm(files, desc="resize", unit="file", disable=not progress):
        target = out / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise SystemExit(f"{path}: not a readable image")
            small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            if not cv2.imwrite(str(target), small, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise SystemExit(f"{target}: could not be written")
            images += 1
        elif path.name.startswith("pixel_masks") and path.suffix == ".npz":
            masks = dict(np.load(path))
            np.savez_compressed(target, **{clip: _resized_masks(m, width, height) for clip, m in masks.items()})
        else:
            shutil.copy2(path, target)
    return images


def _resized_masks(masks: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(frames, H, W)`` masks at ``(frames, height, width)``, nearest neighbour, in their own dtype."""
    if masks.ndim != 3:
        return masks
    return np.stack([cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
                     for m in masks]).astype(masks.dtype)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a dataset root of frame folders (e.g. ../shared/data/ucsd-ped2)")
    parser.add_argument("out", type=Path, help="where the copy goes (must not exist)")
    parser.add_argument("--size", default="238x158", help="WIDTHxHEIGHT (default 238x158, UCSD Ped1's)")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out}: already exists; choose a new folder")
    width, height = (int(v) for v in args.size.lower().split("x"))
    images = resized_copy(args.root, args.out, width, height)
    print(f"{images} images at {width}x{height} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
