"""Each loss term against a value computed by hand on a tiny input."""

import math

import pytest
import torch

from vad_pipeline.models import losses

T = torch.tensor


def test_mil_ranking_top1_and_topk() -> None:
    a, n = T([[0.2, 0.9, 0.1]]), T([[0.3, 0.4, 0.2]])
    assert losses.mil_ranking(a, n, k=1).item() == pytest.approx(1 - 0.9 + 0.4)
    assert losses.mil_ranking(a, n, k=2).item() == pytest.approx(1 - 0.55 + 0.35)
    assert losses.mil_ranking(T([[1.0]]), T([[0.0]])).item() == 0.0  # hinge


def test_smoothness_and_sparsity() -> None:
    s = T([[0.2, 0.9, 0.1], [0.0, 0.0, 0.5]])
    assert losses.temporal_smoothness(s).item() == pytest.approx(((0.49 + 0.64) + (0.0 + 0.25)) / 2)
    assert losses.sparsity(s).item() == pytest.approx((1.2 + 0.5) / 2)


def test_view_consistency() -> None:
    assert losses.view_consistency(T([[0.1, 0.5]]), T([[0.3, 0.2]])).item() == pytest.approx(0.04 + 0.09)


def test_topk_mil_bce() -> None:
    scores = T([[0.9, 0.1, 0.8], [0.2, 0.3, 0.1]])
    value = losses.topk_mil_bce(scores, T([1, 0]), k=2).item()
    assert value == pytest.approx(-(math.log(0.85) + math.log(0.75)) / 2, rel=1e-5)


def test_dynamics_energy_and_ranking() -> None:
    a, n = T([[0.0, 1.0, 0.5, 0.5]]), T([[0.5, 0.5, 0.5, 0.6]])
    assert losses.score_dynamics_energy(a, k=2).item() == pytest.approx((1 + 0.25) / 2)
    assert losses.score_dynamics_energy(n, k=2).item() == pytest.approx((0.01 + 0) / 2)
    assert losses.dynamics_ranking(a, n, k=2, margin=0.5).item() == pytest.approx(0.0)
    assert losses.dynamics_ranking(a, n, k=2, margin=1.0).item() == pytest.approx(1 - 0.625 + 0.005)


def test_feature_dynamics_alignment() -> None:
    features = T([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    torch.testing.assert_close(losses.feature_dynamics(features), T([[1.0, 0.0]]))
    scores = T([[0.2, 0.7, 0.4]])
    expected = (-0.5 * math.log(1 + 1e-6) - 0.3 * math.log(1e-6)) / 2
    assert losses.dynamics_alignment(scores, features, eps=1e-6).item() == pytest.approx(expected, rel=1e-5)


def test_xel_bank_losses() -> None:
    bank = T([0.2, 0.6])
    assert losses.bank_validation(bank).item() == pytest.approx(0.4)
    assert losses.dynamic_margin(bank, T([[0.1, 0.9]]), margin=0.5).item() == pytest.approx((0 + 0.2) / 2)
