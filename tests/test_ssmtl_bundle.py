"""SSMTL, trained once into a model bundle, applied to new unlabeled footage: `train --method ssmtl` then `predict`
runs the tracks, objects and scores stages with the bundle's own spec, never retrains, and caches."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vad_pipeline.commands.cli import main
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError
from vad_pipeline.models.bundle import load_bundle
from vad_pipeline.models.ssmtl import SSMTLConfig
from vad_pipeline.models.ssmtl.apply import SSMTLModel
from vad_pipeline.models.ssmtl.objects import load_objects
from vad_pipeline.synthetic.objects import generate_object_dataset

pytestmark = pytest.mark.slow  # the module's fixture tracks, trains and predicts (tens of seconds on 2 cores)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """Object videos tracked by motion in the workspace, SSMTL trained on the 4 normal ones (1 held out to
    calibrate), and 4 new unlabeled videos (another seed) in a folder of their own."""
    root = tmp_path_factory.mktemp("ssmtl-bundle")
    generate_object_dataset(root / "data", train=4, test_per_anomaly=1, frames=32, seed=0)
    generate_object_dataset(root / "other", train=1, test_per_anomaly=1, frames=32, seed=7)
    new = root / "new"
    new.mkdir()
    for video in sorted((root / "other" / "videos").rglob("*.mp4")):
        shutil.copy(video, new / f"clip_{video.stem}.mp4")
    workdir = root / "work"
    assert main(["extract", str(root / "data" / "videos"), "--stages", "tracks", "--objects", "motion",
                 "--workdir", str(workdir), "-q"]) == 0
    assert main(["train", "--method", "ssmtl", "--labels", str(root / "data" / "labels.csv"), "--crop-size", "32",
                 "--epochs", "1", "--tasks", "aot,mbp,knn,speed,motion", "--far", "0.05", "--workdir", str(workdir), "-q"]) == 0
    (bundle_path,) = (workdir / "models").glob("ssmtl-*.pt")
    return root, workdir, new, bundle_path


def test_ssmtl_bundle_holds_what_applying_it_needs(trained) -> None:
    root, workdir, new, bundle_path = trained
    bundle = load_bundle(bundle_path)
    assert bundle.method == "ssmtl" and bundle.options["tasks"] == ["aot", "mbp", "knn", "speed", "motion"]
    assert bundle.options["motion_weight"] == SSMTLConfig().motion_weight  # the frame attribute's share (the default)
    assert bundle.features["source"] == "tracks" and bundle.features["tracks"]["objects"] == "motion"
    assert bundle.features["teacher"].startswith("detector:")
    assert set(bundle.scales) == {"aot", "mbp", "knn", "speed", "floor", "motion"}
    assert bundle.scales["motion"]["std"] > 0  # the training frames' motion energies
    assert bundle.calibration["on"] == "held-out" and len(bundle.calibration["videos"]) == 1
    assert set(bundle.calibration["videos"]).isdisjoint(bundle.training["videos"])
    assert bundle.state_dict["memory.bank"].shape[0] == bundle.training["objects"] > 0
    # the speed memory: (speed, row, column) of every training object, as the bundle keeps it
    assert tuple(bundle.state_dict["speed_memory.bank"].shape) == (bundle.training["objects"], 3)
    assert bundle.calibration["measured_far"] <= 0.05


def test_ssmtl_predict_on_new_videos_never_retrains_and_caches(trained, capsys) -> None:
    root, workdir, new, bundle_path = trained
    models_before = sorted((workdir / "models").iterdir())
    assert main(["predict", "--model", str(bundle_path), str(new), "--workdir", str(workdir), "-q"]) == 0
    out = Path(capsys.readouterr().out.strip())
    document = json.loads((out / "predictions.json").read_text())
    assert document["method"] == "ssmtl" and len(document["videos"]) == 4 and not document["failed"]
    for record in document["videos"]:
        frames = np.load(record["frame_scores"])
        assert frames.shape == (record["frames"],) == (32,) and record["snippets"] is None
        assert record["video"].startswith(str(new))
    with open(out / "alerts.csv", newline="") as handle:
        alerts = list(csv.DictReader(handle))
    assert alerts and all(row["attribute"] in ("aot", "mbp", "knn", "speed", "motion") for row in alerts), alerts
    assert sorted((workdir / "models").iterdir()) == models_before  # nothing trained

    # the bundle, loaded again, gives the scores predict wrote (a round trip through the file)
    bundle = load_bundle(bundle_path)
    model = SSMTLModel.from_bundle(bundle, torch.device("cpu"))
    scores_folder = Path(document["scores"])
    record = document["videos"][0]
    sidecar = json.loads((scores_folder / f"{record['key']}.json").read_text())
    objects_folder = next((workdir / "objects").glob("ssmtl-*"))
    objects = load_objects(objects_folder, sidecar["objects_key"])
    np.testing.assert_allclose(np.load(scores_folder / f"{record['key']}.npy"),
                               model.video_scores(objects, 32).frames, rtol=0, atol=1e-6)

    # a second run is served from the caches: every stage reuses what it made
    from vad_pipeline.commands.predict import PredictConfig, predict

    again = predict(Workspace(workdir), [new], PredictConfig(model=bundle_path, progress=False))
    assert again.scored == 0 and again.cached == 4 and again.ok


def test_ssmtl_watch_scores_every_frame_as_predict_does(trained, tmp_path: Path) -> None:
    """`watch` with an SSMTL bundle tracks online (motion objects: the first 50 frames seed the background, as
    offline) and scores each frame once its object windows and smoothing are complete: on a 96-frame video the live
    frame scores equal `predict`'s, frame for frame; the alert falls inside the injected anomaly."""
    from vad_pipeline.commands.predict import PredictConfig, predict
    from vad_pipeline.commands.watch import WatchConfig, watch

    root, workdir, new, bundle_path = trained
    videos = generate_object_dataset(tmp_path / "long", train=1, test_per_anomaly=1, frames=96, seed=11)
    backward = next(v for v in videos if v.anomaly == "backward")
    done = predict(Workspace(workdir), [backward.path], PredictConfig(model=bundle_path, out=tmp_path / "p",
                                                                      progress=False))
    record = json.loads((done.out / "predictions.json").read_text())["videos"][0]
    offline = np.load(record["frame_scores"])
    events: list[dict] = []
    summary = watch(Workspace(workdir), str(backward.path), WatchConfig(model=bundle_path), emit=events.append)
    scores = [e for e in events if e["event"] == "score"]
    assert summary.unit == "frame" and summary.frames == summary.scores == 96
    assert [e["frame"] for e in scores] == list(range(96))
    np.testing.assert_allclose([e["score"] for e in scores], offline, rtol=0, atol=1e-4)
    assert summary.latency_p50_ms > 0
    alerts = [e for e in events if e["event"] == "alert_end"]
    start, end = backward.interval
    assert any(a["start_frame"] < end and a["end_frame"] >= start for a in alerts), (alerts, backward.interval)


def test_ssmtl_bundle_is_refused_where_it_does_not_apply(trained, capsys) -> None:
    root, workdir, new, bundle_path = trained
    assert main(["export", "--model", str(bundle_path), "--workdir", str(workdir)]) == 2
    assert "apply SSMTL with `vad-pipeline predict`" in capsys.readouterr().err
    with pytest.raises(UserError, match="method, ssmtl, does not score snippet features"):
        load_bundle(bundle_path).build()
    assert main(["predict", "--model", str(bundle_path), "--features", str(new), "--workdir", str(workdir)]) == 2
    assert "--tracks DIR" in capsys.readouterr().err
