"""Snippet preprocessing: shorter side to 256, then 224x224 crops (center, 5-crop or 10-crop), as uint8.

Crop order (crop index = position in the feature file's second axis):

- ``center``: ``[center]``
- ``five``:   ``[center, top-left, top-right, bottom-left, bottom-right]``
- ``ten``:    the five above, then the same five mirrored left-right (crop 5 = mirrored center)

Normalisation (float conversion, mean/std) happens on the model's device, so that uint8 travels to it. On a GPU
the resize and crops happen there too (``device_snippet_crops``): raw uint8 frames travel, and the CPU only
decodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .config import CROP_MODES

if TYPE_CHECKING:
    import torch

CROP_NAMES = {
    "center": ["center"],
    "five": ["center", "top_left", "top_right", "bottom_left", "bottom_right"],
}
CROP_NAMES["ten"] = CROP_NAMES["five"] + [f"{name}_flipped" for name in CROP_NAMES["five"]]


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) after scaling so the shorter side is ``short_side`` (aspect ratio kept, rounded)."""
    scale = short_side / min(height, width)
    return max(short_side, round(height * scale)), max(short_side, round(width * scale))


def resize_frames(frames: np.ndarray, short_side: int) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> ``(N, H', W', 3)`` uint8 with min(H', W') = ``short_side`` (bilinear)."""
    height, width = frames.shape[1:3]
    new_h, new_w = resized_shape(height, width, short_side)
    if (new_h, new_w) == (height, width):
        return frames
    out = np.empty((frames.shape[0], new_h, new_w, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        cv2.resize(frame, (new_w, new_h), dst=out[index], interpolation=cv2.INTER_LINEAR)
    return out


def crop_offsets(height: int, width: int, size: int, mode: str) -> list[tuple[int, int]]:
    """Top-left corners of the unflipped crops of ``mode`` (center first)."""
    if height < size or width < size:
        raise ValueError(f"frame {height}x{width} is smaller than the {size}x{size} crop")
    center = ((height - size) // 2, (width - size) // 2)
    if mode == "center":
        return [center]
    return [center, (0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]


def snippet_crops(frames: np.ndarray, size: int, mode: str) -> np.ndarray:
    """``(T, H, W, 3)`` resized frames -> ``(crops, T, size, size, 3)`` uint8 in the documented crop order."""
    if mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {mode!r}; choose one of {', '.join(CROP_MODES)}")
    height, width = frames.shape[1:3]
    crops = [frames[:, y : y + size, x : x + size] for y, x in crop_offsets(height, width, size, mode)]
    if mode == "ten":
        crops += [crop[:, :, ::-1] for crop in crops]
    return np.stack(crops)


def device_snippet_crops(frames: "torch.Tensor", short_side: int, size: int, mode: str) -> "torch.Tensor":
    """The same preprocessing on the frames' own device (a GPU): ``(N, L, H, W, 3)`` uint8 frames of ``N``
    snippets -> ``(N, crops, 3, L, size, size)`` float32 pixel values 0..255, shorter side resized to
    ``short_side`` (bilinear without antialiasing, as OpenCV's INTER_LINEAR, rounded to whole values as the uint8
    path stores them) and cropped in the documented order."""
    import torch
    import torch.nn.functional as F

    if mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {mode!r}; choose one of {', '.join(CROP_MODES)}")
    count, length, height, width, _ = frames.shape
    x = frames.reshape(count * length, height, width, 3).permute(0, 3, 1, 2).float()  # (N L, 3, H, W)
    new_h, new_w = resized_shape(height, width, short_side)
    if (new_h, new_w) != (height, width):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False)
        x = x.round_().clamp_(0, 255)
    crops = [x[:, :, y : y + size, left : left + size] for y, left in crop_offsets(new_h, new_w, size, mode)]
    if mode == "ten":
        crops += [crop.flip(-1) for crop in crops]
    stacked = torch.stack(crops, dim=1)  # (N L, crops, 3, S, S)
    return stacked.reshape(count, length, len(crops), 3, size, size).permute(0, 2, 3, 1, 4, 5)
