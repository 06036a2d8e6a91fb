"""Every weakly supervised method learns: its loss drops and its snippet scores separate anomalous from normal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vad_pipeline.models.bundle import load_bundle
from vad_pipeline.models.score import ScoreConfig, score_videos
from vad_pipeline.synthetic import synthetic_features, write_feature_set
from vad_pipeline.workspace import Workspace


@pytest.fixture(scope="module")
def feature_set(tmp_path_factory: pytest.TempPathFactory):
    """40 normal + 40 anomalous videos (T 24-48, D 64): anomalous snippets shifted by 1.5 along one of two
    directions inside one interval of each anomalous video; half of each class is the test split."""
    root = tmp_path_factory.mktemp("features")
    videos = synthetic_features(seed=1, shift=1.5)
    folder, labels = write_feature_set(root, videos)
    return root, folder, labels, videos


def _snippet_auc(folder: Path, videos) -> float:
    truth, scores = [], []
    for video in videos:
        if video.split == "test":
            truth.append(video.snippet_labels)
            scores.append(np.load(folder / f"{video.name}.npy"))
    return roc_auc_score(np.concatenate(truth), np.concatenate(scores))


# The fixture has 40 training videos, so an epoch is only a few steps; align's paper schedule (50 epochs at
# lr 1e-4 / 1e-5, sized for UCF-Crime's 1610 videos) gets 100 epochs here.
CASES = {
    "mil": {},
    "align": {"epochs": 100},
    "ddl": {},
    "xel": {},
    "xel-batch": {"method": "xel", "xel_update": "batch"},
    "xel-over-ddl": {"method": "xel", "base": "ddl"},
}


SLOW_CASES = {"ddl", "xel-over-ddl"}  # over 10 s each on 2 cores


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in CASES])
def test_method_learns(case: str, feature_set, tmp_path: Path) -> None:
    root, folder, labels, videos = feature_set
    settings = {"method": case, **CASES[case]}
    config = ScoreConfig(features=folder, labels=labels, progress=False, **settings)
    summary = score_videos(Workspace(tmp_path / "work"), config)
    # Compare with the first epoch whose objective has every final term (xel adds its bank terms after warm-up).
    start = next(i for i, epoch in enumerate(summary.history) if set(epoch) == set(summary.history[-1]))
    losses = [epoch["loss"] for epoch in summary.history[start:]]
    assert losses[-1] < losses[0], f"{case}: loss did not drop ({losses[0]:.4f} -> {losses[-1]:.4f})"
    auc = _snippet_auc(summary.folder, videos)
    assert auc >= 0.9, f"{case}: snippet ROC-AUC {auc:.3f}"
    assert summary.video_auc is not None and summary.video_auc >= 0.8
    if settings["method"] == "xel":
        state = load_bundle(summary.bundle).state_dict
        assert state["bank"].shape[0] > 0  # the hard-instance bank was filled


@pytest.mark.slow
def test_scores_are_cached_and_seeded(feature_set, tmp_path: Path) -> None:
    root, folder, labels, videos = feature_set
    config = ScoreConfig(method="mil", features=folder, labels=labels, progress=False, epochs=5)
    first = score_videos(Workspace(tmp_path / "a"), config)
    again = score_videos(Workspace(tmp_path / "a"), config)
    assert first.trained and not again.trained and again.cached == len(videos) and again.scored == 0
    other = score_videos(Workspace(tmp_path / "b"), config)  # same seed, fresh workspace: same numbers
    for video in videos[:5]:
        np.testing.assert_allclose(np.load(first.folder / f"{video.name}.npy"),
                                   np.load(other.folder / f"{video.name}.npy"), atol=1e-6)
    changed = score_videos(Workspace(tmp_path / "a"), ScoreConfig(method="mil", features=folder, labels=labels,
                                                                  progress=False, epochs=5, seed=1))
    assert changed.folder != first.folder


def test_align_records_its_preset_and_extras(feature_set, tmp_path: Path) -> None:
    root, folder, labels, videos = feature_set
    summary = score_videos(Workspace(tmp_path / "w"), ScoreConfig(method="align", features=folder, labels=labels,
                                                                  progress=False, epochs=2,
                                                                  options={"preset": "code"}))
    options = json.loads((summary.folder / "train.json").read_text())["config"]["options"]
    assert options["preset"] == "code" and options["kernel"] == 5 and options["alpha_sparsity"] == 0.002
    extras = np.load(summary.folder / f"{videos[0].name}.extras.npz")
    scores = np.load(summary.folder / f"{videos[0].name}.npy")
    np.testing.assert_allclose(scores, extras["attention"] * extras["tcam"], rtol=1e-5)
