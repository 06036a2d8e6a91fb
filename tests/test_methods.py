"""Every weakly supervised method learns: its loss drops and its snippet scores separate anomalous from normal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import native_bf16_only
import torch
from sklearn.metrics import roc_auc_score

from vad_pipeline.core.workspace import Workspace
from vad_pipeline.models.bundle import load_bundle
from vad_pipeline.models.score import ScoreConfig, score_videos
from vad_pipeline.synthetic.videos import synthetic_features, write_feature_set


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
                                                                  progress=False, epochs=2, precision="fp32",
                                                                  options={"preset": "code"}))
    options = json.loads((summary.folder / "train.json").read_text())["config"]["options"]
    assert options["preset"] == "code" and options["kernel"] == 5 and options["alpha_sparsity"] == 0.002
    extras = np.load(summary.folder / f"{videos[0].name}.extras.npz")
    scores = np.load(summary.folder / f"{videos[0].name}.npy")
    np.testing.assert_allclose(scores, extras["attention"] * extras["tcam"], rtol=1e-5)


def _frame_scores(bundle_path: Path, videos, device: str = "cpu", dtype: torch.dtype = torch.float32) -> np.ndarray:
    """The bundle's snippet scores of every test video, concatenated, scored on ``device`` (the method's weights in
    ``dtype``: the scores stage always keeps fp32)."""
    from vad_pipeline.models.apply import score_features

    method = load_bundle(bundle_path).build().to(device)
    if dtype != torch.float32:
        method = method.to(dtype)
        return np.concatenate([method.outputs(torch.from_numpy(v.features[:, 0][None]).to(device, dtype))["scores"]
                               .float().cpu().numpy().reshape(-1) for v in videos if v.split == "test"])
    return np.concatenate([score_features(method, v.features)[0] for v in videos if v.split == "test"])


@native_bf16_only
def test_bf16_training_learns_and_scores_in_fp32(feature_set, tmp_path: Path) -> None:
    """``--precision bf16`` on the CPU: mil trains under autocast and still separates; its bundle is keyed apart
    from the fp32 one and the scores stage applies it in fp32 (bf16's 8-bit mantissa ties scores near 1), so the
    stored scores are the fp32 ones of the bf16-trained weights."""
    root, folder, labels, videos = feature_set
    bf16 = score_videos(Workspace(tmp_path / "w"), ScoreConfig(features=folder, labels=labels, progress=False,
                                                               device="cpu", precision="bf16"))
    fp32 = score_videos(Workspace(tmp_path / "w"), ScoreConfig(features=folder, labels=labels, progress=False,
                                                               device="cpu", precision="fp32"))
    bundle = load_bundle(bf16.bundle)
    assert bf16.trained and bundle.training["device"] == "cpu" and bf16.bundle != fp32.bundle
    assert bf16.history[-1]["loss"] < bf16.history[0]["loss"]
    assert _snippet_auc(bf16.folder, videos) >= 0.9
    stored = np.concatenate([np.load(bf16.folder / f"{v.name}.npy") for v in videos if v.split == "test"])
    np.testing.assert_allclose(stored, _frame_scores(bf16.bundle, videos), rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none)")
@pytest.mark.parametrize("method", ["mil", "align", "ddl", "xel"])
def test_method_trains_and_scores_on_cuda_as_on_the_cpu(method: str, feature_set, tmp_path: Path) -> None:
    """Every weak method on CUDA: it learns there (AUC >= 0.9); a CPU-trained bundle scored on CUDA equals its CPU
    scores within 1e-3 relative (fp16: cosine >= 0.999); the CUDA-trained bundle's test AUC is within 0.01 of the
    CPU-trained one's (training sums in another order, so weights differ slightly)."""
    root, folder, labels, videos = feature_set
    settings = {"method": method, **CASES.get(method, {}), "features": folder, "labels": labels, "progress": False}
    cpu = score_videos(Workspace(tmp_path / "cpu"), ScoreConfig(**settings, device="cpu"))
    cuda = score_videos(Workspace(tmp_path / "cuda"), ScoreConfig(**settings, device="cuda"))
    assert load_bundle(cuda.bundle).training["device"].startswith("cuda")
    assert cuda.history[-1]["loss"] < cuda.history[0]["loss"]
    assert abs(_snippet_auc(cuda.folder, videos) - _snippet_auc(cpu.folder, videos)) <= 0.01
    on_cpu = _frame_scores(cpu.bundle, videos)
    on_cuda = _frame_scores(cpu.bundle, videos, device="cuda")
    assert np.abs(on_cpu - on_cuda).max() <= 1e-3 * max(1.0, np.abs(on_cpu).max())
    half = _frame_scores(cpu.bundle, videos, device="cuda", dtype=torch.float16)
    assert float(on_cpu @ half / (np.linalg.norm(on_cpu) * np.linalg.norm(half))) >= 0.999


def test_crop_pool_max_scores_each_snippet_by_its_most_anomalous_crop(feature_set, tmp_path: Path) -> None:
    """``--crop-pool max``: a snippet scores its highest crop (an anomaly small in the frame fills one corner crop),
    the bundle records it, `score` applies it, and the default keeps the mean over crops."""
    from vad_pipeline.models.apply import score_features
    from vad_pipeline.models.registry import get_method

    torch.manual_seed(0)
    method = get_method("mil")(16, get_method("mil").Options()).eval()
    features = np.random.default_rng(0).normal(size=(6, 3, 16)).astype(np.float32)  # (T, crops, D)
    with torch.no_grad():
        per_crop = np.stack([method.outputs(torch.from_numpy(features[:, c][None]))["scores"].numpy().reshape(-1)
                             for c in range(3)])
    np.testing.assert_allclose(score_features(method, features, crop_pool="max")[0], per_crop.max(0), atol=1e-6)
    np.testing.assert_allclose(score_features(method, features)[0], per_crop.mean(0), atol=1e-6)
    assert not np.allclose(per_crop.max(0), per_crop.mean(0))

    root, folder, labels, videos = feature_set
    summary = score_videos(Workspace(tmp_path / "w"), ScoreConfig(method="mil", features=folder, labels=labels,
                                                                  epochs=2, crop_pool="max", progress=False))
    assert load_bundle(summary.bundle).features["crop_pool"] == "max"
    with pytest.raises(Exception, match="--crop-pool median"):
        score_videos(Workspace(tmp_path / "w"), ScoreConfig(method="mil", features=folder, labels=labels,
                                                            crop_pool="median", progress=False))
