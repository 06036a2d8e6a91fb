"""``ddl``: locality-aware attention network with discriminative dynamics learning (Pu & Wu, ICME 2022).

The paper gives no code and leaves several choices open; this implementation makes them explicit (and exposes all):

- **LA-Net**: features are projected (D -> 512, ReLU, dropout), then one locality-aware self-attention layer whose
  logits are q_i . k_j / sqrt(d) - |i - j| / tau, a location prior (tau learnable, initialised to 4 snippets) that
  favours temporal neighbours; residual + LayerNorm; a classifier (512 -> 128 ReLU -> 1 sigmoid) scores snippets.
- **L_MIL**: BCE between each video's mean top-k snippet score and its label, k = max(1, T // 8) (4 of 32
  segments: the anomalous part of a weakly labelled video is usually short but rarely a single segment).
- **L_DR** = max(0, zeta - E^a + E^n), E = mean of the top-k squared score differences |s_t - s_{t+1}|^2:
  anomalous videos should contain sharp score changes, normal ones should not. Scores lie in [0, 1], so E does
  too; zeta = 0.5 asks for at least a few half-range jumps.
- **L_DA** = mean_t -|s_t - s_{t+1}| log(delta^f_t + eps), delta^f_t = 1 - cos(x_t, x_{t+1}): scores may change
  only where the features change. It is unbounded above, hence the small default weight.
- L = L_MIL + lambda1 L_DR + lambda2 L_DA with lambda1 = 1, lambda2 = 0.1. ``lambda1 = 0`` / ``lambda2 = 0`` give the
  ablations (MIL only, +DR, +DA, both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from . import losses
from .base import MethodOptions, TrainSchedule, WeakMethod, mlp
from .registry import register


@dataclass
class DdlOptions(MethodOptions):
    hidden: int = 512
    dropout: float = 0.3
    tau: float = 4.0
    k_divisor: int = 8  # k = max(1, T // k_divisor)
    lambda_dr: float = 1.0
    lambda_da: float = 0.1
    zeta: float = 0.5


class LocalityAwareAttention(nn.Module):
    """Self-attention over time with a learnable distance penalty: ``(B, T, H)`` -> ``(B, T, H)``."""

    def __init__(self, width: int, tau: float):
        super().__init__()
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        positions = torch.arange(length, device=x.device, dtype=x.dtype)
        distance = (positions[:, None] - positions[None, :]).abs()
        logits = self.query(x) @ self.key(x).transpose(1, 2) / math.sqrt(x.shape[-1])
        logits = logits - distance / self.log_tau.exp()
        return self.norm(x + torch.softmax(logits, dim=-1) @ self.value(x))


@register
class DynamicsLearning(WeakMethod):
    name = "ddl"
    Options = DdlOptions
    schedule = TrainSchedule(epochs=50, batch_size=16, lr=1e-4, weight_decay=5e-4)

    def __init__(self, feature_dim: int, options: DdlOptions):
        super().__init__(feature_dim, options)
        self.embed = nn.Sequential(nn.Linear(feature_dim, options.hidden), nn.ReLU(), nn.Dropout(options.dropout))
        self.attention = LocalityAwareAttention(options.hidden, options.tau)
        self.classifier = mlp([options.hidden, 128, 1], dropout=options.dropout, final=nn.Sigmoid())

    def snippet_scores(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.attention(self.embed(features))).squeeze(-1)

    def training_loss(self, anomalous: torch.Tensor, normal: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        opts: DdlOptions = self.options  # type: ignore[assignment]
        scores_a, scores_n = self.snippet_scores(anomalous), self.snippet_scores(normal)
        k = max(1, anomalous.shape[1] // opts.k_divisor)
        labels = torch.cat([torch.ones(len(scores_a)), torch.zeros(len(scores_n))]).to(scores_a.device)
        mil = losses.topk_mil_bce(torch.cat([scores_a, scores_n]), labels, k)
        total = mil
        parts = {"mil": mil.item()}
        if opts.lambda_dr:
            ranking = losses.dynamics_ranking(scores_a, scores_n, k, opts.zeta)
            total = total + opts.lambda_dr * ranking
            parts["dynamics_ranking"] = ranking.item()
        if opts.lambda_da:
            alignment = losses.dynamics_alignment(torch.cat([scores_a, scores_n]), torch.cat([anomalous, normal]))
            total = total + opts.lambda_da * alignment
            parts["dynamics_alignment"] = alignment.item()
        return total, parts
