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

    from vad_pipeline.synthetic.videos import render_video

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
        # fight clips vs walking clips are easy for mil on real I3D features (measured 1.0 on both seeds; the
        # feature-norm baseline 0.83 and 0.96): a broken trainer or scorer falls below this
        assert seed["rows"]["mil"]["frame_auc"] >= 0.95, seed["rows"]
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


def _ucsd_layout(root: Path) -> None:
    """A tiny dataset in the original UCSD layout: ``Train/Train00k/*.tif`` (walkers), ``Test/Test00k/*.tif`` with
    ``Test00k_gt/*.bmp`` masks (a fast cart crosses test clip 1 from frame 12 on) and ``Test/UCSDped2.m``."""
    import cv2

    from vad_pipeline.synthetic.videos import _draw_person

    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(np.clip(rng.normal(120, 10, (120, 160, 1)), 0, 255).astype(np.uint8), (5, 5), 0)
    frames = 36

    def clip(folder: Path, seed: int, cart: bool) -> None:
        folder.mkdir(parents=True)
        local = np.random.default_rng(seed)
        starts = local.uniform(0, 40, 2)
        for index in range(frames):
            frame = np.repeat(background[..., None], 3, axis=2)
            for k, start in enumerate(starts):
                _draw_person(frame, start + 1.5 * index, 60 + 25 * k, (90, 90, 90), index * 0.6, 1.0)
            mask = np.zeros((120, 160), np.uint8)
            if cart and index >= 12:
                x = int(5 * (index - 12))
                cv2.rectangle(frame, (x, 95), (x + 22, 110), (200, 200, 200), -1)
                mask[95:111, x:x + 23] = 255
            cv2.imwrite(str(folder / f"{index + 1:03d}.tif"), frame[..., 0])
            if folder.name.startswith("Test"):
                gt = folder.parent / f"{folder.name}_gt"
                gt.mkdir(exist_ok=True)
                cv2.imwrite(str(gt / f"{index + 1:03d}.bmp"), mask)

    for k in range(3):
        clip(root / "Train" / f"Train{k + 1:03d}", k, cart=False)
    clip(root / "Test" / "Test001", 10, cart=True)
    clip(root / "Test" / "Test002", 11, cart=False)
    (root / "Test" / "UCSDped2.m").write_text("TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [13:36];\n"
                                              "TestVideoFile{end+1}.gt_frame = [];\n")


@pytest.mark.slow
def test_ped2_suite_runs_unchanged_on_the_original_ucsd_layout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import accuracy

    data = tmp_path / "UCSDped2"
    _ucsd_layout(data)
    assert accuracy.main(["--suite", "ped2", "--data", str(data), "--workdir", str(tmp_path / "work"), "--quick",
                          "-q"]) == 0
    printed = capsys.readouterr().out
    assert "baseline: frame-difference energy" in printed and "baseline: largest object speed" in printed
    assert "coverage:" in printed
    # another scene than ../shared's Ped2 is kept apart, under its folder's name
    record = json.loads((tmp_path / "work" / "accuracy.json").read_text())["ped2-UCSDped2"]
    assert (tmp_path / "work" / "ped2-UCSDped2" / "tracks").is_dir()
    assert record["dataset"] == "ucsd" and record["clips"] == {"train": 3, "test": 2}
    # the precision auto chose, and the CPU flags it was measured with
    assert record["precision"] in ("fp32", "bf16") and "flags" in record["machine"] and "flags" in record["cpu"]
    # the cart is found by motion (no detector class covers it) in most of its frames
    assert record["coverage"]["overall"]["region_coverage"] >= 0.8
    # one two-class clip: the fast cart makes frame differences rise, so the baseline ranks it above chance
    assert record["baselines"]["frame-difference energy"]["micro_auc"] > 0.7
    ssmtl = record["results"]["all"]
    assert ssmtl["tasks"] == list(accuracy.PED2_SETTINGS["tasks"]) and len(ssmtl["seeds"]) == 1
    assert ssmtl["summary"]["micro_auc"]["mean"] is not None
    page = (tmp_path / "work" / "accuracy.html").read_text()
    assert "baseline: frame-difference energy" in page and "Object coverage" in page


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_quick_start_commands_are_the_single_scene_settings(page: str) -> None:
    """The three commands a page teaches on UCSD Ped2 set exactly ``accuracy.py``'s single-scene settings, so the
    figure beside them is the one ``accuracy.py --suite ped2`` measures."""
    import shlex

    import accuracy

    from vad_pipeline.commands.cli import build_parser

    lines = [line for line in (REPO / page).read_text(encoding="utf-8").splitlines()
             if line.lstrip().startswith(("vad-pipeline ", ".venv/bin/vad-pipeline "))]
    argv = {}
    for line in lines:
        if "ucsd-ped2" in line or "--method ssmtl" in line:
            words = shlex.split(line.split("#")[0])
            argv[words[1]] = words[1:]
    extract = build_parser().parse_args(argv["extract"])
    score = build_parser().parse_args(argv["score"])
    for key, value in accuracy.PED2_SETTINGS.items():
        given = getattr(extract if key == "objects" else score, key)
        assert given == (",".join(value) if isinstance(value, tuple) else value), f"{page}: --{key} {given}"
    assert score.method == "ssmtl" and extract.stages == "tracks"
