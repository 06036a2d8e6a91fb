"""Train once, apply anywhere: model bundles, the calibrated alarm threshold and `predict` on unlabeled footage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.commands.predict import PredictConfig, predict
from vad_pipeline.core.frame_scores import false_alarm_rate
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError
from vad_pipeline.models.apply import score_features
from vad_pipeline.models.bundle import load_bundle
from vad_pipeline.models.score import ScoreConfig, TrainConfig, score_videos, train_model
from vad_pipeline.synthetic.videos import synthetic_features, write_feature_set


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory):
    """80 normal + 20 anomalous generated feature videos (T 24-48, D 64), half of each class in the test split."""
    root = tmp_path_factory.mktemp("bundle")
    videos = synthetic_features(n_normal=80, n_anomalous=20, seed=3, shift=1.5)
    folder, labels = write_feature_set(root, videos)
    return root, folder, labels, videos


def test_bundle_round_trip_gives_the_same_scores(features, tmp_path: Path) -> None:
    root, folder, labels, videos = features
    workspace = Workspace(tmp_path / "work")
    model = train_model(workspace, TrainConfig(features=folder, labels=labels, epochs=3, progress=False))
    assert model.trained and model.path.parent == workspace.root / "models"
    bundle = load_bundle(model.path)
    assert bundle.method == "mil" and bundle.feature_dim == 64 and bundle.features["source"] == "files"
    assert set(bundle.training["videos"]).isdisjoint(bundle.calibration["videos"])
    assert all(v.split == "train" for v in videos if v.name in bundle.training["videos"])
    method = bundle.build()
    # the bundle's scores equal those `predict` writes through the scores stage
    summary = predict(workspace, [], PredictConfig(model=model.path, features=folder, progress=False))
    assert summary.scored == len(videos) and summary.ok
    document = json.loads((summary.out / "predictions.json").read_text())
    record = document["videos"][0]
    # predict scores as `score` does: in fp32, whatever precision the bundle trained in
    expected = score_features(method, np.load(folder / f"{record['key']}.npy"))[0]
    written = np.load(Path(document["scores"]) / f"{record['key']}.npy")
    np.testing.assert_array_equal(written, expected)
    assert np.load(record["frame_scores"]).shape == (16 * len(expected),)
    # training again with the same inputs loads the bundle; a new video to score never enters the key
    again = train_model(workspace, TrainConfig(features=folder, labels=labels, epochs=3, progress=False))
    assert not again.trained and again.path == model.path
    for key, value in bundle.state_dict.items():
        torch.testing.assert_close(load_bundle(again.path).state_dict[key], value, rtol=0, atol=0)


def test_a_bad_bundle_is_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "model.pt"
    broken.write_bytes(b"not a bundle")
    with pytest.raises(UserError, match="not a readable model bundle"):
        load_bundle(broken)
    torch.save({"schema": "vad-pipeline/bundle/0", "meta": "{}", "state_dict": {}}, broken)
    with pytest.raises(UserError, match="bundle schema"):
        load_bundle(broken)
    with pytest.raises(UserError, match="no such file"):
        load_bundle(tmp_path / "missing.pt")


def test_threshold_keeps_the_false_alarm_budget_on_unseen_normal_videos(features, tmp_path: Path) -> None:
    """Calibrated on held-out normal training videos at 5 %, the threshold's false-alarm rate on the test split's
    normal videos (never seen in training or calibration) is within +-50 % of the budget."""
    root, folder, labels, videos = features
    far = 0.05
    model = train_model(Workspace(tmp_path / "work"), TrainConfig(features=folder, labels=labels, far=far,
                                                                  holdout=0.5, epochs=5, progress=False))
    bundle = load_bundle(model.path)
    assert bundle.calibration["on"] == "held-out" and len(bundle.calibration["videos"]) == 20
    assert bundle.calibration["measured_far"] <= far
    method = bundle.build()
    unseen = [np.repeat(score_features(method, v.features)[0], 16)
              for v in videos if v.split == "test" and v.label == 0]
    measured = false_alarm_rate(unseen, bundle.threshold)
    print(f"measured false-alarm rate {measured:.4f}, budget {far}, threshold {bundle.threshold:.4f}")
    assert 0.5 * far <= measured <= 1.5 * far, f"false-alarm rate {measured:.4f} for a budget of {far}"
    # the threshold is a real cut: anomalous test snippets exceed it far more often
    anomalous = [score_features(method, v.features)[0][v.snippet_labels == 1]
                 for v in videos if v.split == "test" and v.label == 1]
    assert false_alarm_rate(anomalous, bundle.threshold) > 5 * measured


def test_score_keeps_test_videos_out_of_the_model_key(features, tmp_path: Path) -> None:
    """Scoring more videos with the same training split reuses the model: only the training videos are its key."""
    root, folder, labels, videos = features
    workspace = Workspace(tmp_path / "work")
    first = score_videos(workspace, ScoreConfig(features=folder, labels=labels, epochs=2, progress=False))
    extra = folder / "new_unlabeled_video.npy"
    np.save(extra, np.random.default_rng(0).standard_normal((20, 64)).astype(np.float32))
    with_label = labels.read_text() + "new_unlabeled_video,normal,test\n"
    labels_more = tmp_path / "labels_more.csv"
    labels_more.write_text(with_label)
    try:
        second = score_videos(workspace, ScoreConfig(features=folder, labels=labels_more, epochs=2, progress=False))
    finally:
        extra.unlink()
    assert first.trained and not second.trained and second.bundle == first.bundle
    assert second.scored == 1 and second.cached == len(videos)


@pytest.mark.slow
def test_train_then_predict_on_unlabeled_real_clips(tmp_path: Path, i3d_weights: Path) -> None:
    """`vad-pipeline train --method mil` on real surveillance clips (fights anomalous), then `vad-pipeline predict`
    on two real clips that have no label: frame scores, proposals and alerts written, nothing trained; the second
    run is all cached."""
    fights = shared_path("surveillance-fight")
    clips = tmp_path / "clips"
    rows = []
    for kind, label in (("fight", "anomaly"), ("noFight", "normal")):
        (clips / kind).mkdir(parents=True)
        for clip in sorted((fights / kind).glob("*.mp4"))[:6]:
            (clips / kind / clip.name).symlink_to(clip)
            rows.append(f"{clip.stem},{label},train")
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,split\n" + "\n".join(rows) + "\n")
    workdir = str(tmp_path / "work")
    assert main(["extract", "--stages", "features", str(clips), "--workdir", workdir, "-q"]) == 0
    bundle_file = tmp_path / "fight-mil.pt"
    assert main(["train", "--method", "mil", "--labels", str(labels), "--out", str(bundle_file),
                 "--workdir", workdir, "-q"]) == 0
    bundle = load_bundle(bundle_file)
    assert bundle.features["source"] == "workspace" and bundle.features["config"]["backbone"] == "i3d"
    assert bundle.calibration["on"] == "held-out" and len(bundle.calibration["videos"]) == 1

    workspace = Workspace(workdir)
    models_before = [a for a in workspace.manifest.artifacts("model")]
    new_folder = shared_path("real-clips")
    out = tmp_path / "predictions"
    first = predict(workspace, [new_folder], PredictConfig(model=bundle_file, out=out, progress=False))
    assert first.ok and first.scored == 2 and first.cached == 0
    document = json.loads((out / "predictions.json").read_text())
    assert document["threshold"] == bundle.threshold and document["threshold_source"] == "calibrated"
    frames = {Path(v["video"]).name: np.load(v["frame_scores"]) for v in document["videos"]}
    assert {name: len(f) for name, f in frames.items()} == {"bikes.mp4": 250, "carphone_pristine.mp4": 120}
    assert all(np.isfinite(f).all() and (0 <= f).all() and (f <= 1).all() for f in frames.values())
    with open(out / "alerts.csv", newline="") as handle:
        alerts = list(csv.DictReader(handle))
    assert len(alerts) == first.alerts == sum(len(v["alerts"]) for v in document["videos"])
    for alert in alerts:  # every alert lies above the threshold, in its video's frames
        scores = frames[Path(next(v["video"] for v in document["videos"] if v["key"] == alert["video_id"])).name]
        start, end = int(alert["start_frame"]), int(alert["end_frame"])
        assert (scores[start : end + 1] > bundle.threshold).all()
    assert [a for a in workspace.manifest.artifacts("model")] == models_before  # nothing trained
    again = predict(workspace, [new_folder], PredictConfig(model=bundle_file, out=out, progress=False))
    assert again.scored == 0 and again.cached == 2
    # a lower threshold given at prediction time raises at least as many alerts
    lower = predict(workspace, [new_folder], PredictConfig(model=bundle_file, out=tmp_path / "low", threshold=0.0,
                                                          progress=False))
    assert lower.alerts >= 1 and lower.alerts >= first.alerts


def test_predict_says_when_the_features_do_not_fit(features, tmp_path: Path) -> None:
    root, folder, labels, videos = features
    workspace = Workspace(tmp_path / "work")
    model = train_model(workspace, TrainConfig(features=folder, labels=labels, epochs=1, progress=False))
    with pytest.raises(UserError, match="trained on feature files"):
        predict(workspace, [tmp_path], PredictConfig(model=model.path, progress=False))
    other = tmp_path / "other"
    other.mkdir()
    np.save(other / "wide.npy", np.zeros((4, 32), np.float32))
    with pytest.raises(UserError, match="features of size 32, the model takes 64"):
        predict(workspace, [], PredictConfig(model=model.path, features=other, progress=False))


def _untrained_bundle(method: str, path: Path) -> Path:
    """A bundle of ``method`` with seeded, untrained weights (export parity does not depend on training)."""
    from vad_pipeline.models.bundle import ModelBundle, save_bundle
    from vad_pipeline.models.registry import get_method

    torch.manual_seed(0)
    method_cls = get_method(method)
    options = method_cls.Options()
    network = method_cls(64, options).eval()
    bundle = ModelBundle(key=f"untrained-{method}", method=method, options=options.to_dict(), schedule={}, seed=0,
                         feature_dim=64, features={"source": "files", "dir": "generated"}, threshold=0.5,
                         calibration={}, training={}, state_dict=network.state_dict())
    return save_bundle(path, bundle)


@pytest.mark.parametrize("method", ["mil", "align", "ddl", "xel"])
def test_onnx_export_matches_torch(method: str, features, tmp_path: Path) -> None:
    """`vad-pipeline export --format onnx`: ONNX Runtime gives the bundle's scores within 1e-4 at any length and
    number of crops, and the file carries the bundle's key and threshold."""
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    root, folder, labels, videos = features
    if method == "mil":  # a trained bundle, through the whole path
        model = train_model(Workspace(tmp_path / "work"), TrainConfig(features=folder, labels=labels, epochs=1,
                                                                      progress=False)).path
    else:
        model = _untrained_bundle(method, tmp_path / f"{method}.pt")
    out = tmp_path / f"{method}.onnx"
    assert main(["export", "--model", str(model), "--out", str(out), "--workdir", str(tmp_path / "work"), "-q"]) == 0
    bundle = load_bundle(model)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["model_key"] == bundle.key and float(meta["threshold"]) == bundle.threshold
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    method_net = bundle.build()
    for video in videos[:3]:  # real lengths, one crop, and the same video as three crops
        for crops in (video.features, np.repeat(video.features, 3, axis=1)):
            per_crop = np.ascontiguousarray(crops.transpose(1, 0, 2))  # (crops, T, D)
            got = session.run(["scores"], {"features": per_crop})[0].mean(axis=0)
            expected = score_features(method_net, crops)[0]
            assert np.abs(got - expected).max() <= 1e-4


def test_report_shows_predictions_without_ground_truth(features, tmp_path: Path) -> None:
    """`vad-pipeline report` on a workspace where a model was only applied: score curves against the threshold and
    the alerts, no metrics section."""
    root, folder, labels, videos = features
    workdir = tmp_path / "work"
    workspace = Workspace(workdir)
    model = train_model(workspace, TrainConfig(features=folder, labels=labels, epochs=1, progress=False))
    result = predict(workspace, [], PredictConfig(model=model.path, features=folder, threshold=0.5, progress=False))
    assert result.alerts > 0
    assert main(["report", "--workdir", str(workdir), "--max-videos", "3", "-q"]) == 0
    page = (workdir / "report" / "index.html").read_text()
    assert "Predictions (no ground truth)" in page and "<h2>Metrics</h2>" not in page
    assert f"{result.alerts} alert(s); threshold 0.5 (given with --threshold)" in page
    assert page.count('src="data:image/png;base64,') == 3  # one score curve per drawn video
    assert json.loads((workdir / "report" / "metrics.json").read_text())["methods"] == {}
