"""Loss terms of the weakly supervised methods, as plain functions on tensors (each unit-tested by hand).

Shapes: ``B`` videos (bags), ``T`` snippets or segments; scores and attentions are in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mil_ranking(scores_anomalous: torch.Tensor, scores_normal: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Sultani et al.: mean over pairs of max(0, 1 - topk_mean(s^a) + topk_mean(s^n)); inputs ``(B, T)``.

    ``k = 1`` is the paper's max; ``k > 1`` ranks the mean of the top-k scores."""
    top_a = scores_anomalous.topk(min(k, scores_anomalous.shape[1]), dim=1).values.mean(dim=1)
    top_n = scores_normal.topk(min(k, scores_normal.shape[1]), dim=1).values.mean(dim=1)
    return F.relu(1.0 - top_a + top_n).mean()


def temporal_smoothness(values: torch.Tensor) -> torch.Tensor:
    """sum_t (v_t - v_{t+1})^2 per video, averaged over videos; ``(B, T)`` -> scalar."""
    return (values[:, 1:] - values[:, :-1]).pow(2).sum(dim=1).mean()


def sparsity(values: torch.Tensor) -> torch.Tensor:
    """sum_t |v_t| per video (the L1 norm), averaged over videos; ``(B, T)`` -> scalar."""
    return values.abs().sum(dim=1).mean()


def view_consistency(attention_a: torch.Tensor, attention_b: torch.Tensor) -> torch.Tensor:
    """Panariello et al.: sum_t (lambda^A_t - lambda^B_t)^2 per video, averaged over videos; ``(B, T')``."""
    return (attention_a - attention_b).pow(2).sum(dim=1).mean()


def bce(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of probabilities ``(B,)`` (clamped to [1e-6, 1 - 1e-6]) against 0 / 1 labels ``(B,)``,
    in fp32 outside autocast (mixed precision refuses BCE on probabilities, which underflow in fp16)."""
    with torch.autocast(probabilities.device.type, enabled=False):
        return F.binary_cross_entropy(probabilities.float().clamp(1e-6, 1 - 1e-6), labels.float())


def topk_mil_bce(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """BCE between each video's mean top-k snippet score and its label; ``(B, T)``, ``(B,)`` -> scalar."""
    return bce(scores.topk(min(k, scores.shape[1]), dim=1).values.mean(dim=1), labels)


def score_dynamics_energy(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Pu & Wu: E = mean of the top-k squared score differences |s_t - s_{t+1}|^2 of each video; ``(B, T)`` -> ``(B,)``."""
    diffs = (scores[:, 1:] - scores[:, :-1]).pow(2)
    return diffs.topk(min(k, diffs.shape[1]), dim=1).values.mean(dim=1)


def dynamics_ranking(scores_anomalous: torch.Tensor, scores_normal: torch.Tensor, k: int,
                     margin: float) -> torch.Tensor:
    """L_DR = max(0, zeta - E^a + E^n), averaged over anomalous/normal pairs."""
    energy_a = score_dynamics_energy(scores_anomalous, k)
    energy_n = score_dynamics_energy(scores_normal, k)
    return F.relu(margin - energy_a + energy_n).mean()


def feature_dynamics(features: torch.Tensor) -> torch.Tensor:
    """delta^f_t = 1 - cos(x_t, x_{t+1}); ``(B, T, D)`` -> ``(B, T-1)``."""
    return 1.0 - F.cosine_similarity(features[:, 1:], features[:, :-1], dim=-1)


def dynamics_alignment(scores: torch.Tensor, features: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L_DA = mean over videos and t of -|s_t - s_{t+1}| * log(delta^f_t + eps)."""
    score_change = (scores[:, 1:] - scores[:, :-1]).abs()
    return (-score_change * torch.log(feature_dynamics(features) + eps)).mean()


def bank_validation(bank_scores: torch.Tensor) -> torch.Tensor:
    """XEL validation loss: mean |s_hat_i - 0| over the hard-instance bank's scores ``(M,)``."""
    return bank_scores.abs().mean()


def dynamic_margin(bank_scores: torch.Tensor, scores_anomalous: torch.Tensor, margin: float) -> torch.Tensor:
    """XEL margin loss: mean over bank entries of max(0, eps - max(S_a) + s_hat_i), with max(S_a) the highest
    snippet score among the batch's anomalous videos ``(B, T)``."""
    return F.relu(margin - scores_anomalous.max() + bank_scores).mean()
