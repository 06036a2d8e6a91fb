"""The interface every weakly supervised method implements, and the training schedule it runs under.

A method is an ``nn.Module`` that maps snippet (or segment) features ``(B, T, D)`` to anomaly scores ``(B, T)``
in [0, 1], knows its own training loss on a batch of anomalous and normal bags, and may expose extra per-snippet
arrays (attention, T-CAM) for the report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn


@dataclass
class TrainSchedule:
    """How a method is trained; each method has its own defaults, the CLI may override them."""

    epochs: int = 100
    batch_size: int = 16  # anomalous bags per step, and as many normal ones
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"  # "adam" or "adagrad"
    lr_drop_epoch: int | None = None  # from this epoch on, lr * lr_drop_factor
    lr_drop_factor: float = 0.1
    segments: int = 32  # training bags are resampled to this many segments (mean of the snippets in each)
    # Tiny training sets make an epoch a handful of steps: train at least this many steps (more epochs) in all.
    # At UCF-Crime / XD-Violence scale every method's default epochs already exceed it.
    min_steps: int = 300

    def lr_at(self, epoch: int) -> float:
        if self.lr_drop_epoch is not None and epoch >= self.lr_drop_epoch:
            return self.lr * self.lr_drop_factor
        return self.lr


@dataclass
class MethodOptions:
    """Base class of each method's hyperparameters (a dataclass, hashed into the cache key)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class WeakMethod(nn.Module):
    """A weakly supervised scorer. Subclasses set ``name``, ``Options`` and ``schedule`` and implement
    ``snippet_scores`` and ``training_loss``."""

    name: ClassVar[str]
    Options: ClassVar[type[MethodOptions]]
    schedule: ClassVar[TrainSchedule] = TrainSchedule()

    def __init__(self, feature_dim: int, options: MethodOptions):
        super().__init__()
        self.feature_dim = feature_dim
        self.options = options

    def snippet_scores(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` -> anomaly scores ``(B, T)`` in [0, 1]."""
        raise NotImplementedError

    def training_loss(self, anomalous: torch.Tensor, normal: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss on a batch of anomalous and normal bags, both ``(B, T, D)``; returns (total, named parts)."""
        raise NotImplementedError

    def outputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything worth saving for one video ``(1, T, D)``: at least ``scores`` ``(T,)``."""
        return {"scores": self.snippet_scores(features)[0]}

    def instance_scores(self, instances: torch.Tensor) -> torch.Tensor:
        """Scores of isolated snippets ``(M, D)`` -> ``(M,)`` (each seen as a one-snippet video)."""
        return self.snippet_scores(instances[:, None, :])[:, 0]

    def default_schedule(self) -> TrainSchedule:
        """The method's own training schedule (a copy: callers may override fields)."""
        return dataclasses.replace(self.schedule)

    # Hooks for plug-ins such as XEL.
    def on_train_start(self, schedule: TrainSchedule, epochs: int | None = None) -> None:
        """Called once before training with the schedule in force and the number of epochs it will run."""

    def on_batch_end(self, normal: torch.Tensor, anomalous: torch.Tensor) -> None:
        """Called after each optimisation step with that step's bags."""

    def on_epoch_end(self, epoch: int, normal_bags: torch.Tensor) -> None:
        """Called after each epoch with every normal training bag ``(N, T, D)``."""


def mlp(sizes: list[int], dropout: float = 0.0, final: nn.Module | None = None) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU (and dropout) between them, then ``final`` if given."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)
