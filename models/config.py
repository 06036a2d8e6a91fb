"""What ``vad-pipeline train`` and ``score`` may be asked for with a weakly supervised method: :class:`TrainConfig`
and :class:`ScoreConfig`, the single source of their defaults. Torch-free, so that the command line builds its
options from these fields without loading a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CROP_POOLS = ("mean", "max")  # a snippet's score over its crops
XEL_UPDATES = ("epoch", "batch")  # when xel refreshes its hard-instance bank


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``vad-pipeline train``: which features, labels and split, the method and its schedule, the
    alarm threshold's calibration."""

    method: str = "mil"
    base: str = "mil"  # the method xel is plugged into
    features: Path | None = None  # a folder of public-layout features instead of the workspace's
    features_tag: str | None = None  # which workspace features/<tag>/ folder (default: the only one there is)
    labels: Path | None = None
    train_list: Path | None = None
    test_list: Path | None = None
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    options: dict[str, str] = field(default_factory=dict)  # --set key=value method options
    xel_update: str = "epoch"
    far: float = 0.01  # false-alarm budget of the alarm threshold: fraction of normal frames above it
    holdout: float = 0.2  # fraction of the normal training videos held out to calibrate the threshold
    out: Path | None = None  # also write the bundle here
    device: str = "auto"  # where the method trains and scores: auto (CUDA when available), cpu, cuda or cuda:N
    # auto (bf16 where the device computes it natively, else fp32), fp32, bf16 or fp16 (CUDA): mixed precision
    precision: str = "auto"
    crop_pool: str = "mean"  # a snippet's score over its crops: mean or max (CROP_POOLS)
    force: bool = False
    progress: bool = True


@dataclass(frozen=True)
class ScoreConfig(TrainConfig):
    """Options of ``vad-pipeline score``. Benchmarks train on the whole training split, as the papers do
    (``holdout`` 0): the alarm threshold is then calibrated on the training normals (recorded as such)."""

    holdout: float = 0.0
