"""The benchmark entry point runs and writes its documented JSON (decode group only: a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_decode_group_writes_rows_and_ratio(tmp_path: Path) -> None:
    video = tmp_path / "input.mp4"
    from vad_pipeline.synthetic.videos import render_video

    render_video(video, seed=1, frames=64, size=(120, 160))
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "decode",
                           "--video", str(video), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert document["schema"] == "vad-pipeline/benchmark/1" and document["groups"] == ["decode"]
    rows = {row["name"]: row for row in document["rows"]}
    for name in ("decode/pipeline", "decode/decord-cpu", "decode/opencv-reader", "decode/cv2-bare"):
        assert rows[name]["frames"] == 64, name
        assert rows[name]["fps"] > 0 and rows[name]["peak_rss_mb"] >= rows[name]["run_peak_rss_mb"] > 0
    assert rows["decode/decord-gpu"].get("skipped") or rows["decode/decord-gpu"]["frames"] == 64
    ratio = document["ratios"]["decode pipeline / cv2.VideoCapture"]
    assert ratio == rows["decode/pipeline"]["fps"] / rows["decode/cv2-bare"]["fps"]
    assert "| decode/pipeline |" in done.stdout
    # a folder of frames is read as a video: as many frames as its FFV1 copy, 4x as many from the 4x folder
    frames = rows["decode/frames"]["frames"]
    assert frames > 0 and rows["decode/frames-ffv1"]["frames"] == rows["decode/frames-1-thread"]["frames"] == frames
    assert rows["decode/frames-4x"]["frames"] == 4 * frames
    assert document["ratios"]["decode frame folder / its FFV1 copy"] > 0


def test_resized_copy_keeps_the_layout_and_shrinks_frames_and_masks(tmp_path: Path) -> None:
    """``benchmarks/resized_copy.py`` (the single-scene rule's third development set): every image and pixel mask at
    the new size, every other file copied, an existing target refused."""
    import cv2
    import numpy as np

    root = tmp_path / "ped"
    clip = root / "testing" / "frames" / "01"
    clip.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(3):
        cv2.imwrite(str(clip / f"{index:03d}.jpg"), rng.integers(0, 255, (240, 360, 3), dtype=np.uint8))
    masks = np.zeros((3, 240, 360), bool)
    masks[:, 100:140, 200:260] = True
    np.savez_compressed(root / "pixel_masks_ped2_test.npz", **{"01": masks})
    (root / "UCSDped2.m").write_text("TestVideoFile = {};\n")
    out = tmp_path / "small"
    command = [sys.executable, str(REPO / "benchmarks" / "resized_copy.py"), str(root), str(out), "--size", "238x158"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 images at 238x158" in done.stdout
    assert all(cv2.imread(str(p)).shape == (158, 238, 3) for p in (out / "testing" / "frames" / "01").glob("*.jpg"))
    small = np.load(out / "pixel_masks_ped2_test.npz")["01"]
    assert small.shape == (3, 158, 238) and small.dtype == bool
    assert abs(small.mean() - masks.mean()) < 0.005  # the region keeps its share of the frame
    assert (out / "UCSDped2.m").read_text() == "TestVideoFile = {};\n"
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert again.returncode != 0 and "already exists" in again.stderr
