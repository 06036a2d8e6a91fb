"""The fight accuracy suite runs unchanged on another folder of the same layout (here: generated clips in
``anomaly/`` + ``normal/``), keeps training and test clips apart, and reports every number per seed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


@pytest.mark.slow
def test_fight_suite_on_another_folder(tmp_path: Path, i3d_weights: Path) -> None:
    from fight_suite import compose, run_suite

    from vad_pipeline.synthetic import render_video

    data = tmp_path / "clips"
    for number in range(6):
        render_video(data / "normal" / f"walk_{number}.mp4", seed=number, frames=40)
        render_video(data / "anomaly" / f"fight_{number}.mp4", seed=100 + number, frames=40, event="fight",
                     interval=(0, 40))
    record = run_suite(data, tmp_path / "work", seeds=[0, 1], videos_per_class=3, test_per_class=2,
                       clips_per_video=2, methods={"mil": {"method": "mil"}}, progress=False)
    assert record["clips"] == {"anomalous": 6, "normal": 6}
    assert record["frames_extracted"] == 12 * 32  # 40 frames at 25 fps -> 2 whole snippets per clip
    assert set(record["summary"]) == {"feature-norm baseline", "mil"}
    for seed in record["per_seed"]:
        assert seed["train_videos"] == 6 and seed["test_videos"] == 4
        assert 0.0 <= seed["rows"]["mil"]["frame_auc"] <= 1.0
    assert set(record["beats_baseline_every_seed"]) == {"mil"}
    json.dumps(record)  # the record is JSON-serialisable as written by accuracy.py

    # composition: labels follow the clips, and an anomalous video holds one or two fight clips
    features = {f"n{i}": np.zeros((2, 1, 4), np.float32) for i in range(3)}
    features.update({f"a{i}": np.ones((2, 1, 4), np.float32) for i in range(2)})
    videos = compose({"normal": ["n0", "n1", "n2"], "anomalous": ["a0", "a1"]}, features, 2, 3,
                     np.random.default_rng(0), "x")
    for video in videos:
        fights = sum(c.startswith("a") for c in video["clips"])
        assert (fights == 0) == (video["label"] == 0) and fights <= 2
        assert np.array_equal(video["snippet_labels"], video["features"][:, 0, 0].astype(np.uint8))
