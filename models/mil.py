"""``mil``: the MIL ranking baseline of Sultani, Chen & Shah (CVPR 2018).

Each training video is a bag of 32 segments (mean-pooled snippets). A 3-layer MLP (D -> 512 ReLU -> 32 -> 1
sigmoid, dropout 0.6 between layers) scores segments; the loss for an anomalous bag a and a normal bag n is

    max(0, 1 - max_i s^a_i + max_i s^n_i) + lambda_smooth * sum_i (s^a_i - s^a_{i+1})^2 + lambda_sparse * sum_i s^a_i

with lambda_smooth = lambda_sparse = 8e-5 (the widely used PyTorch port's constants), ``k > 1`` ranks top-k means.
Training follows the paper: Adagrad, lr 1e-3, weight decay 1e-3, 30 anomalous + 30 normal bags per step.
At test time every snippet is scored directly (the model is per instance), which keeps the snippet resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from . import losses
from .base import MethodOptions, TrainSchedule, WeakMethod
from .registry import register


@dataclass
class MilOptions(MethodOptions):
    hidden: int = 512
    hidden2: int = 32
    dropout: float = 0.6
    k: int = 1  # 1: the paper's max ranking; >1: top-k mean ranking
    lambda_smooth: float = 8e-5
    lambda_sparse: float = 8e-5


@register
class MilRanking(WeakMethod):
    name = "mil"
    Options = MilOptions
    schedule = TrainSchedule(epochs=100, batch_size=30, lr=1e-3, weight_decay=1e-3, optimizer="adagrad")

    def __init__(self, feature_dim: int, options: MilOptions):
        super().__init__(feature_dim, options)
        self.net = nn.Sequential(
            nn.Linear(feature_dim, options.hidden), nn.ReLU(), nn.Dropout(options.dropout),
            nn.Linear(options.hidden, options.hidden2), nn.Dropout(options.dropout),
            nn.Linear(options.hidden2, 1), nn.Sigmoid(),
        )
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def snippet_scores(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)

    def training_loss(self, anomalous: torch.Tensor, normal: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        opts: MilOptions = self.options  # type: ignore[assignment]
        scores_a, scores_n = self.snippet_scores(anomalous), self.snippet_scores(normal)
        ranking = losses.mil_ranking(scores_a, scores_n, opts.k)
        smooth = losses.temporal_smoothness(scores_a)
        sparse = losses.sparsity(scores_a)
        total = ranking + opts.lambda_smooth * smooth + opts.lambda_sparse * sparse
        return total, {"ranking": ranking.item(), "smooth": smooth.item(), "sparsity": sparse.item()}


__all__ = ["MilRanking", "MilOptions"]
