"""Teachers for SSMTL's knowledge-distillation task: an appearance feature per object crop.

- ``--teacher-weights PATH``: a torchvision ResNet (18/34/50/101/152, the architecture read from the state dict)
  pretrained image classifier; the feature is its L2-normalised global-average-pooled last stage (the paper
  distils a ResNet-50).
- otherwise the project's detector: the crop goes through the detector's backbone (the YOLO layers before the
  neck) and the pooled feature map, L2-normalised, is the feature. Which teacher ran is recorded in ``train.json``.

Class probabilities come from the detector itself (the tracks' ``prob_k`` columns), not from here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vad_pipeline.errors import WeightsError

log = logging.getLogger(__name__)

_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclass
class Teacher:
    """``features(crops)``: ``(B, S, S, 3)`` uint8 RGB -> ``(B, dim)`` float32 L2-normalised; ``name`` says which."""

    name: str
    identity: str  # hashed into the cache key
    dim: int
    features: Callable[[np.ndarray], np.ndarray]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _resnet_from_state(path: Path) -> nn.Module:
    import torchvision

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"--teacher-weights {path}: cannot read it as a torch state dict ({type(exc).__name__}); "
                           "pass a torchvision ResNet checkpoint (e.g. resnet50-0676ba61.pth)") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("layer3.")})
    bottleneck = any(k.endswith("conv3.weight") for k in state)
    depth = {(6, True): 50, (23, True): 101, (36, True): 152, (6, False): 34, (2, False): 18}.get(
        (len(blocks), bottleneck))
    if depth is None:
        raise WeightsError(f"--teacher-weights {path}: not a torchvision ResNet state dict")
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if [k for k in missing if not k.startswith("fc.")] or unexpected:
        raise WeightsError(f"--teacher-weights {path}: keys do not match torchvision resnet{depth}")
    model.fc = nn.Identity()
    return model.eval()


def resnet_teacher(path: Path, input_size: int = 112) -> Teacher:
    """A torchvision ResNet teacher from ``path`` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"--teacher-weights {path}: no such file; pass a torchvision ResNet state dict or leave "
                           "the option out to distil the detector's own features")
    model = _resnet_from_state(path)

    @torch.inference_mode()
    def features(crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
        return F.normalize(model((x - _IMAGENET_MEAN) / _IMAGENET_STD), dim=1).numpy()

    dim = int(features(np.zeros((1, 32, 32, 3), np.uint8)).shape[1])
    return Teacher(f"resnet ({path.name})", f"resnet:{_file_digest(path)}", dim, features)


def detector_teacher(detector_path: Path, input_size: int = 128) -> Teacher:
    """The detector's backbone as teacher (see the module docstring): the crop, resized to ``input_size``, through
    the layers before the neck; the feature is the concatenation of the L2-normalised global-average-pooled outputs
    the neck reads (YOLOv8: the strides 8, 16 and 32 stages, P3 / P4 / P5), L2-normalised. On UCSD Ped2 the
    appearance memory (``knn``) of these features reaches 0.784 frame micro AUC alone, the last stage alone at
    64 px 0.705."""
    from vad_pipeline.detectors.yolo import load_detector

    yolo = load_detector(Path(detector_path))
    layers = yolo.model.model  # DetectionModel.model: nn.Sequential of the layers
    backbone = []
    for layer in layers:
        if getattr(layer, "f", -1) != -1 or isinstance(layer, nn.Upsample):  # the neck starts here
            break
        backbone.append(layer)
    read_by_neck = {i for layer in layers[len(backbone):] for i in np.atleast_1d(getattr(layer, "f", -1)).tolist()
                    if 0 <= i < len(backbone)}
    taps = sorted(read_by_neck | {len(backbone) - 1})
    trunk = nn.Sequential(*backbone).float().eval()

    @torch.inference_mode()
    def features(crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
        pooled = []
        for index, layer in enumerate(trunk):
            x = layer(x)
            if index in taps:
                pooled.append(F.normalize(x.mean(dim=(2, 3)), dim=1))
        return F.normalize(torch.cat(pooled, dim=1), dim=1).numpy()

    dim = int(features(np.zeros((1, 32, 32, 3), np.uint8)).shape[1])
    stages = "+".join(str(t) for t in taps)
    return Teacher(f"detector backbone ({Path(detector_path).name}, layers {stages} pooled at {input_size} px)",
                   f"detector:{_file_digest(Path(detector_path))}:{stages}@{input_size}", dim, features)


def choose_teacher(teacher_weights: Path | None, detector_path: Path | None) -> Teacher:
    """``--teacher-weights`` when given, else the detector (see the module docstring)."""
    if teacher_weights:
        return resnet_teacher(teacher_weights)
    if detector_path is None:
        from vad_pipeline.detectors.yolo import resolve_detector

        detector_path = resolve_detector(None)
    teacher = detector_teacher(detector_path)
    log.info("ssmtl: no --teacher-weights; distilling the detector's own features: %s", teacher.name)
    return teacher
