"""Benchmark layouts are recognised (their clips named as their ground truth names them); frames encode losslessly
as FFV1 (the benchmark's reference reading); composing clips at snippet boundaries gives
the same features as extracting the composed video (what the fight suite relies on)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.errors import UserError
from vad_pipeline.io.datasets import find_layout, frames_to_video, open_dataset, ucsd_mask_archive
from vad_pipeline.io.ground_truth import load_many


def test_ped2_jpg_layout_from_shared_data() -> None:
    layout = find_layout(shared_path("ucsd-ped2"))
    assert layout.kind == "ped-jpg"
    assert sum(c.split == "train" for c in layout.clips) == 16 and sum(c.split == "test" for c in layout.clips) == 12
    assert [p.name for p in layout.ground_truth] == ["UCSDped2.m", "pixel_masks_ped2_test.npz"]
    truth = load_many(layout.ground_truth)
    assert truth.get("04").masks is not None and truth.get("04").num_frames == 180


def test_avenue_8_gives_frame_labels_and_pixel_masks() -> None:
    """Avenue's ``avenue.mat`` (frame labels) and ``testing_label_mask/`` (pixel masks) are both read, so the region
    metrics (RBDC / TBDC) exist for Avenue as for Ped2; the masks' frames agree with the labels."""
    layout = find_layout(shared_path("avenue-8"))
    assert layout.kind == "avenue"
    assert [p.name for p in layout.ground_truth] == ["avenue.mat", "testing_label_mask"]
    truth = load_many(layout.ground_truth)
    clip = truth.get("19")
    assert clip is not None and clip.masks is not None and clip.masks.shape == (248, 360, 640)
    assert clip.frame_labels(248).sum() == 140
    assert np.array_equal(clip.masks.reshape(248, -1).any(axis=1), clip.frame_labels(248).astype(bool))


def _frames(folder: Path, count: int, suffix: str, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i + 1:03d}{suffix}"), rng.integers(0, 255, (24, 36, 3), dtype=np.uint8))


def test_original_ucsd_layout_with_bmp_masks(tmp_path: Path) -> None:
    root = tmp_path / "UCSDped2"
    _frames(root / "Train" / "Train001", 5, ".tif", 0)
    _frames(root / "Test" / "Test001", 4, ".tif", 1)
    (root / "Test" / "Test001_gt").mkdir(parents=True)
    for i in range(4):
        mask = np.zeros((24, 36), np.uint8)
        if i >= 2:
            mask[5:10, 5:10] = 255
        cv2.imwrite(str(root / "Test" / "Test001_gt" / f"{i + 1:03d}.bmp"), mask)
    (root / "Test" / "UCSDped2.m").write_text("TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [3:4];\n")
    layout = find_layout(tmp_path)
    assert layout.kind == "ucsd" and [c.name for c in layout.clips] == ["Train001", "01"]
    dataset = open_dataset(tmp_path)
    assert [(c.name, c.split, c.label) for c in dataset.clips] == [("train_Train001", "train", 0), ("01", "test", 1)]
    archive = ucsd_mask_archive(layout, tmp_path / "masks.npz")
    truth = load_many(layout.ground_truth + [archive])
    assert truth.get("01").frame_labels(4).tolist() == [0, 0, 1, 1]
    assert truth.get("01").masks.shape == (4, 24, 36)


def test_avenue_layout_names_its_clips(tmp_path: Path) -> None:
    for folder in ("training_videos", "testing_videos"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "01.avi").write_bytes(b"not decoded here")
    layout = find_layout(tmp_path)
    assert layout.kind == "avenue"
    assert [(c.name, c.source.parent.name) for c in open_dataset(tmp_path).clips] == [
        ("train_01", "training_videos"), ("01", "testing_videos")]


def test_unknown_layout_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a known dataset layout .tried UCSD"):
        find_layout(tmp_path)


def test_frames_to_video_is_lossless(tmp_path: Path) -> None:
    _frames(tmp_path / "clip", 6, ".png", 3)
    frames = sorted((tmp_path / "clip").iterdir())
    video = frames_to_video(frames, tmp_path / "clip.avi", 25.0)
    capture = cv2.VideoCapture(str(video))
    for path in frames:
        ok, decoded = capture.read()
        assert ok and np.array_equal(decoded, cv2.imread(str(path)))
    capture.release()


def test_composed_video_features_equal_concatenated_clip_features(tmp_path: Path) -> None:
    from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
    from vad_pipeline.models.data import scan_workspace_features
    from vad_pipeline.core.workspace import Workspace

    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (32, 120, 160, 3), dtype=np.uint8), rng.integers(0, 255, (16, 120, 160, 3),
                                                                                  dtype=np.uint8)]

    def write(path: Path, frames: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, (160, 120))
        for frame in frames:
            writer.write(frame)
        writer.release()

    write(tmp_path / "videos" / "a.avi", clips[0])
    write(tmp_path / "videos" / "b.avi", clips[1])
    write(tmp_path / "videos" / "ab.avi", np.concatenate(clips))
    summary = extract_videos(Workspace(tmp_path / "work"), [tmp_path / "videos"],
                             ExtractConfig(weights="random", progress=False), stages=("features",))
    features = {v.name: v.load() for v in scan_workspace_features(summary.folder)}
    assert features["ab"].shape[0] == 3
    np.testing.assert_allclose(features["ab"], np.concatenate([features["a"], features["b"]]), atol=1e-5)
