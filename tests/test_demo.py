"""`vad-pipeline demo` runs end to end with the real Kinetics-400 weights and leaves documented outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vad_pipeline.commands.cli import main
from vad_pipeline.postprocess.evaluate import load_run


@pytest.mark.slow
def test_demo_generates_ground_truth_and_features(tmp_path: Path, i3d_weights: Path, capsys) -> None:
    workdir = tmp_path / "work"
    assert main(["demo", "--workdir", str(workdir), "--videos-per-class", "2", "--frames", "48", "-q"]) == 0
    demo = next((workdir / "demo").iterdir())
    labels = list(csv.DictReader(open(demo / "labels.csv")))
    assert {row["label"] for row in labels} == {"normal", "anomaly"} and len(labels) == 4
    truth = list(csv.DictReader(open(demo / "ground_truth.csv")))
    assert len(truth) == 2
    for row in truth:
        assert 0 <= int(row["start_frame"]) < int(row["end_frame"]) <= 48
    features = sorted((workdir / "features").glob("i3d-center-*/*.npy"))
    assert len(features) == 4 + 4  # the demo's videos and the 4 new ones the bundles are applied to
    assert all(np.load(p).shape == (3, 1, 1024) for p in features)
    for method in ("mil", "align", "ddl", "xel"):  # each bundle applied to the new, unlabeled videos
        (predictions,) = (workdir / "predictions").glob(f"{method}-*")
        document = json.loads((predictions / "predictions.json").read_text())
        assert len(document["videos"]) == 4 and (predictions / "alerts.csv").is_file()
    assert "Predictions (no ground truth)" in (workdir / "report" / "index.html").read_text()

    assert main(["status", "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert "8 done" in out
    _check_lineage(workdir, capsys)

    # the demo ends with a report whose metrics equal scikit-learn on the same arrays
    from sklearn.metrics import roc_auc_score

    document = json.loads((workdir / "report" / "metrics.json").read_text())
    assert set(document["methods"]) == {"mil", "align", "ddl", "xel", "ssmtl"}
    assert (workdir / "report" / "index.html").is_file()
    intervals = {row["video"]: (int(row["start_frame"]), int(row["end_frame"])) for row in truth}
    for method, entry in document["methods"].items():
        folder = Path(entry["folder"])
        if method == "ssmtl":  # frame scores of its own, one per decoded frame
            assert entry["metrics"]["frame"]["frames"] == 64 * 3 and entry["metrics"]["tasks"]  # 3 test videos
            assert entry["metrics"]["region"]["rbdc"] is not None
            continue
        all_labels, all_scores = [], []
        for video in load_run(folder).videos:
            if video.split != "test":
                continue
            scores = np.repeat(video.scores, 16)  # 48 frames = 3 snippets
            labels = np.zeros(len(scores), np.uint8)
            if video.name in intervals:
                start, end = intervals[video.name]
                labels[start:end] = 1
            all_labels.append(labels)
            all_scores.append(scores)
        expected = roc_auc_score(np.concatenate(all_labels), np.concatenate(all_scores))
        assert entry["metrics"]["frame"]["auc"] == pytest.approx(expected, abs=1e-12)


def _check_lineage(workdir: Path, capsys) -> None:
    """``status --json`` lists every stage's artifacts, and each names the keys of what it was computed from: the
    links resolve to artifacts that exist (video -> features / tracks -> objects / features -> models -> scores ->
    report)."""

    from vad_pipeline.core.hashing import file_sha256

    assert main(["status", "--workdir", str(workdir), "--json"]) == 0
    artifacts = json.loads(capsys.readouterr().out)["artifacts"]
    by_stage: dict[str, list[dict]] = {}
    for artifact in artifacts:
        assert artifact["status"] == "done" and artifact["inputs"], artifact
        by_stage.setdefault(artifact["stage"], []).append(artifact)
    assert set(by_stage) == {"features", "tracks", "objects", "model", "scores", "report"}
    videos = {Path(a["path"]).name: a for a in by_stage["features"]}
    assert len(videos) == 4 + 4 and len(by_stage["tracks"]) == 2  # tracks: the 2 test videos
    for artifact in by_stage["features"] + by_stage["tracks"]:
        assert len(artifact["inputs"]["video"]) == 64  # the video file's SHA-256
    feature_hashes = {file_sha256(Path(a["path"]))[:16] for a in by_stage["features"]}
    # the demo's SSMTL reads the generated videos' oracle tracks: the files its score sidecars name
    ssmtl_sidecars = [json.loads(p.read_text()) for p in (workdir / "scores").glob("ssmtl-*/*.json")
                      if p.name not in ("train.json", "summary.json", "config.json", "labels.json")]
    tracks_hashes = {file_sha256(Path(meta["tracks"]))[:16] for meta in ssmtl_sidecars}
    objects = {a["key"]: a for a in by_stage["objects"]}
    assert {a["inputs"]["tracks"] for a in objects.values()} <= tracks_hashes | {
        file_sha256(p)[:16] for p in Path(ssmtl_sidecars[0]["tracks"]).parent.glob("*.csv")}
    models = {a["key"]: a for a in by_stage["model"]}
    assert set(models) == {"mil", "align", "ddl", "xel", "ssmtl"}
    assert set(models["ssmtl"]["inputs"]["objects"].values()) <= set(objects)
    for name in ("mil", "align", "ddl", "xel"):
        assert {h for hashes in models[name]["inputs"]["features"].values() for h in hashes} <= feature_hashes
    model_keys = {a["config_hash"] for a in models.values()}
    assert {a["inputs"]["model"] for a in by_stage["scores"]} == model_keys
    (report,) = by_stage["report"]
    assert set(report["inputs"]["scores"].values()) == {a["config_hash"] for a in by_stage["scores"]}
