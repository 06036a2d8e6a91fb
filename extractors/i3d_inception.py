"""Inception-v1 I3D (Carreira & Zisserman, CVPR 2017), RGB stream, in PyTorch.

A faithful port of DeepMind's TensorFlow/Sonnet model: TensorFlow "SAME" padding (asymmetric where the stride
requires it, max-pools padded with -inf), BatchNorm with epsilon 1e-3 and no learned scale, a 1x1x1 logits
convolution with bias after a (2, 7, 7) VALID average pool, logits averaged over time.

The state-dict layout is that of the widely used PyTorch port (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.bias``, ...), so its ``rgb_imagenet.pt`` loads directly.

Input: ``(N, 3, T, H, W)`` float RGB in [-1, 1]. ``features`` returns Mixed_5c average-pooled over time and space,
``(N, 1024)``: for a 16x224x224 clip this equals the (2, 7, 7) average pool the XD-Violence features use.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURE_DIM = 1024

# (b0, b1a, b1b, b2a, b2b, b3b) output channels of each Inception block, as in the original network.
_INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one dimension: output = ceil(size / stride)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float) -> torch.Tensor:
    pads: list[int] = []
    for dim in (2, 1, 0):  # F.pad wants the last dimension first: (W, H, T)
        pads.extend(_same_padding(x.shape[2 + dim], kernel[dim], stride[dim]))
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> BatchNorm (eps 1e-3) -> ReLU, as Sonnet's Unit3D."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        batch_norm: bool = True,
        bias: bool = False,
        activation: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        # Stride 1 with odd kernels: SAME padding is symmetric, so the convolution pads itself (no copy).
        self._symmetric = all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride))
        padding = tuple(k // 2 for k in kernel) if self._symmetric else 0
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=padding, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._symmetric:
            x = _pad_same(x, self.kernel, self.stride, 0.0)
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.activation else x


class MaxPool3dSame(nn.Module):
    """Max pool with TensorFlow SAME padding (padded positions never win: -inf)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if all(s == 1 and k % 2 == 1 for k, s in zip(self.kernel, self.stride)):
            # stride 1, odd kernel: SAME is k // 2 on each side, which max_pool3d pads itself (implicitly -inf),
            # without a padded copy of the input
            return F.max_pool3d(x, self.kernel, self.stride, padding=tuple(k // 2 for k in self.kernel))
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride, float("-inf")), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->3x3; maxpool->1x1), concatenated on channels."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, kernel=(3, 3, 3))
        self.b3b = Unit3D(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Stride-1 3x3x3 max pool: SAME padding is symmetric and max_pool3d pads with -inf itself.
        pooled = F.max_pool3d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], dim=1)


class InceptionI3d(nn.Module):
    """The Kinetics-400 I3D RGB network up to its logits; see the module docstring for shapes."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionBlock(192, _INCEPTION_CHANNELS["Mixed_3b"])
        self.Mixed_3c = InceptionBlock(256, _INCEPTION_CHANNELS["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionBlock(480, _INCEPTION_CHANNELS["Mixed_4b"])
        self.Mixed_4c = InceptionBlock(512, _INCEPTION_CHANNELS["Mixed_4c"])
        self.Mixed_4d = InceptionBlock(512, _INCEPTION_CHANNELS["Mixed_4d"])
        self.Mixed_4e = InceptionBlock(512, _INCEPTION_CHANNELS["Mixed_4e"])
        self.Mixed_4f = InceptionBlock(528, _INCEPTION_CHANNELS["Mixed_4f"])
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionBlock(832, _INCEPTION_CHANNELS["Mixed_5b"])
        self.Mixed_5c = InceptionBlock(832, _INCEPTION_CHANNELS["Mixed_5c"])
        self.logits = Unit3D(FEATURE_DIM, num_classes, batch_norm=False, bias=True, activation=False)
        self._trunk = [
            self.Conv3d_1a_7x7, self.MaxPool3d_2a_3x3, self.Conv3d_2b_1x1, self.Conv3d_2c_3x3,
            self.MaxPool3d_3a_3x3, self.Mixed_3b, self.Mixed_3c, self.MaxPool3d_4a_3x3, self.Mixed_4b,
            self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f, self.MaxPool3d_5a_2x2, self.Mixed_5b,
            self.Mixed_5c,
        ]

    def mixed_5c(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, H, W)`` -> Mixed_5c activations ``(N, 1024, ceil(T/8), ceil(H/32), ceil(W/32))``."""
        for layer in self._trunk:
            x = layer(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, H, W)`` in [-1, 1] -> ``(N, 1024)``: Mixed_5c averaged over time and space."""
        return self.mixed_5c(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, H, W)`` in [-1, 1] -> class logits ``(N, num_classes)``, averaged over time."""
        x = self.mixed_5c(x)
        x = F.avg_pool3d(x, kernel_size=(min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4])), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))
