"""``align``: attention-weighted pooling with the view-consistency loss of Panariello et al. (ECCV Workshops 2022,
"Consistency-based Self-supervised Learning for Temporal Anomaly Localization").

- attention: a causal (masked) temporal 1-D convolution over the snippet features, then two FC layers
  (ReLU, sigmoid) giving lambda_t in [0, 1];
- video feature x = sum_t lambda_t x_t, classified by g (two FC layers, sigmoid) into p(anomalous);
- loss = BCE(g(x), y) + alpha ||lambda||_1 + beta sum_t (lambda_t - lambda_{t+1})^2
         + gamma sum_t (lambda^A_t - lambda^B_t)^2,
  where views A and B of a bag each take one random snippet from every block of L = 3 consecutive snippets;
- snippet score = the weighted T-CAM psi_t = lambda_t * g(x_t).

Two presets: ``paper`` (default: alpha = 2e-8 on sparsity, beta = 0.002 on smoothness, kernel 3, hidden sizes
512 / 512) and ``code`` (the authors' public code: the two small weights swapped, kernel 5, hidden sizes 256 / 512).
The preset in force is part of the options, so it is recorded with every checkpoint and score file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses
from .base import MethodOptions, TrainSchedule, WeakMethod, mlp
from .registry import register

PRESETS = {
    "paper": {"alpha_sparsity": 2e-8, "beta_smooth": 0.002, "kernel": 3, "attention_hidden": 512},
    "code": {"alpha_sparsity": 0.002, "beta_smooth": 2e-8, "kernel": 5, "attention_hidden": 256},
}


@dataclass
class AlignOptions(MethodOptions):
    preset: str = "paper"
    alpha_sparsity: float | None = None  # None: the preset's value
    beta_smooth: float | None = None
    gamma_consistency: float = 0.5
    kernel: int | None = None
    attention_hidden: int | None = None
    classifier_hidden: int = 512
    block: int = 3  # L: snippets per block when drawing the two views

    def resolved(self) -> "AlignOptions":
        if self.preset not in PRESETS:
            raise ValueError(f"unknown align preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        values = {k: (getattr(self, k) if getattr(self, k) is not None else v) for k, v in PRESETS[self.preset].items()}
        return AlignOptions(**{**self.__dict__, **values})


class CausalConv1d(nn.Module):
    """1-D convolution over time that sees only the current and past snippets: ``(B, T, D)`` -> ``(B, T, D)``."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(channels, channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))
        return self.conv(x).transpose(1, 2)


def sample_view(length: int, block: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random snippet index from each block of ``block`` consecutive snippets: ``(ceil(length / block),)``."""
    starts = torch.arange(0, length, block)
    sizes = torch.clamp(length - starts, max=block)
    offsets = (torch.rand(len(starts), generator=generator) * sizes).long()
    return starts + offsets


@register
class AlignAttention(WeakMethod):
    name = "align"
    Options = AlignOptions
    # Adam, lr 1e-4 for 10 epochs then 1e-5 for 40; batch 8.
    schedule = TrainSchedule(epochs=50, batch_size=4, lr=1e-4, lr_drop_epoch=10, lr_drop_factor=0.1)

    def __init__(self, feature_dim: int, options: AlignOptions):
        options = options.resolved()
        super().__init__(feature_dim, options)
        self.temporal = CausalConv1d(feature_dim, options.kernel)  # type: ignore[arg-type]
        self.attention = mlp([feature_dim, options.attention_hidden, 1], final=nn.Sigmoid())  # type: ignore[list-item]
        self.classifier = mlp([feature_dim, options.classifier_hidden, 1], final=nn.Sigmoid())
        for module in self.classifier:
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def attention_weights(self, features: torch.Tensor) -> torch.Tensor:
        """lambda: ``(B, T, D)`` -> ``(B, T)``."""
        return self.attention(self.temporal(features)).squeeze(-1)

    def video_probability(self, features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """g(sum_t lambda_t x_t): ``(B, T, D)``, ``(B, T)`` -> ``(B,)``."""
        pooled = (attention.unsqueeze(-1) * features).sum(dim=1)
        return self.classifier(pooled).squeeze(-1)

    def tcam(self, features: torch.Tensor) -> torch.Tensor:
        """g(x_t) for every snippet: ``(B, T, D)`` -> ``(B, T)``."""
        return self.classifier(features).squeeze(-1)

    def snippet_scores(self, features: torch.Tensor) -> torch.Tensor:
        return self.attention_weights(features) * self.tcam(features)

    def outputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        attention = self.attention_weights(features)
        tcam = self.tcam(features)
        return {"scores": (attention * tcam)[0], "attention": attention[0], "tcam": tcam[0]}

    def training_loss(self, anomalous: torch.Tensor, normal: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        opts: AlignOptions = self.options  # type: ignore[assignment]
        features = torch.cat([anomalous, normal])
        labels = torch.cat([torch.ones(len(anomalous)), torch.zeros(len(normal))]).to(features.device)
        length = features.shape[1]
        view_a, view_b = sample_view(length, opts.block), sample_view(length, opts.block)
        attention_a = self.attention_weights(features[:, view_a])
        attention_b = self.attention_weights(features[:, view_b])
        classification = losses.bce(torch.cat([self.video_probability(features[:, view_a], attention_a),
                                               self.video_probability(features[:, view_b], attention_b)]),
                                    torch.cat([labels, labels]))
        both = torch.cat([attention_a, attention_b])
        sparse = losses.sparsity(both)
        smooth = losses.temporal_smoothness(both)
        consistency = losses.view_consistency(attention_a, attention_b)
        total = (classification + opts.alpha_sparsity * sparse + opts.beta_smooth * smooth  # type: ignore[operator]
                 + opts.gamma_consistency * consistency)
        return total, {"bce": classification.item(), "sparsity": sparse.item(), "smooth": smooth.item(),
                       "consistency": consistency.item()}
