"""Objects beyond the detector's classes: motion proposals, their merge with detections, the coverage diagnostic,
the two trivial baselines, and SSMTL on CUDA (skipped without a GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vad_pipeline.detectors.motion import MotionConfig, MotionProposer, box_iou, merge_detections
from vad_pipeline.detectors.tracks import TrackConfig, auto_imgsz, read_tracks
from vad_pipeline.extractors.extract import ExtractConfig, extract_videos
from vad_pipeline.postprocess.object_baselines import (coverage, frame_difference_energy, largest_object_speed,
                                                       save_frame_run)
from vad_pipeline.core.workspace import Workspace

HEIGHT, WIDTH, FRAMES = 120, 160, 48


def _cart_video(path: Path, seed: int = 0) -> np.ndarray:
    """A textured static scene with a green cart (no person) crossing it at 2.5 px a frame; returns its masks
    ``(FRAMES, H, W)``."""
    rng = np.random.default_rng(seed)
    background = np.clip(rng.normal(110, 12, (HEIGHT, WIDTH, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    background = cv2.GaussianBlur(background, (5, 5), 0)
    masks = np.zeros((FRAMES, HEIGHT, WIDTH), bool)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, (WIDTH, HEIGHT))
    for index in range(FRAMES):
        frame = background.copy()
        x = int(10 + 2.5 * index)
        cv2.rectangle(frame, (x, 60), (x + 24, 76), (40, 200, 40), -1)
        cv2.circle(frame, (x + 5, 79), 3, (20, 20, 20), -1)
        cv2.circle(frame, (x + 19, 79), 3, (20, 20, 20), -1)
        masks[index, 60:83, x:x + 25] = True
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return masks


def test_motion_proposals_find_what_the_person_detector_cannot(tmp_path: Path) -> None:
    video = tmp_path / "videos" / "cart.avi"
    video.parent.mkdir()
    masks = _cart_video(video)
    workspace = Workspace(tmp_path / "work")
    found = {}
    for objects in ("detector", "both"):
        summary = extract_videos(workspace, [video.parent], ExtractConfig(progress=False), stages=("tracks",),
                                 tracks=TrackConfig(objects=objects, progress=False))
        assert summary.ok
        table = read_tracks(next(summary.folder.glob("*.csv")))
        table = table if table.size else np.zeros((0, 11))
        found[objects] = (table, json.loads(next(p for p in summary.folder.glob("*.json")
                                                 if p.name != "config.json").read_text()))
    detector_table, _ = found["detector"]
    both_table, meta = found["both"]
    detector_cover = coverage(detector_table[:, 0], detector_table[:, 2:6], masks)
    both_cover = coverage(both_table[:, 0], both_table[:, 2:6], masks)
    assert detector_cover.covered <= 0.1 * detector_cover.regions, detector_cover
    assert both_cover.covered >= 0.8 * both_cover.regions, both_cover
    moving = len(meta["class_names"]) - 1
    assert meta["class_names"][str(moving)] == "moving object" and meta["objects"] == "both"
    assert meta["imgsz"] == 160  # follows the 160x120 frames instead of upscaling to 640
    cart_rows = both_table[both_table[:, 7] == moving]
    assert len(cart_rows) >= 0.8 * FRAMES
    assert (cart_rows[:, -1] > 0.3).all()  # the "moving object" probability: the box's foreground fraction
    assert both_table.shape[1] == 8 + len(meta["class_names"])


def test_merge_keeps_detections_and_adds_only_new_moving_objects() -> None:
    detections = np.array([[10, 10, 30, 50, 0.9, 0]], np.float32)
    probs = np.array([[0.9, 0.1]], np.float32)
    proposals = np.array([[11, 12, 31, 50], [100, 40, 140, 60]], np.float32)
    rows, vectors = merge_detections(detections, probs, proposals, np.array([0.6], np.float32),
                                     np.array([0.7, 0.5], np.float32), MotionConfig(conf=0.4, iou=0.3))
    assert rows.shape == (2, 6) and vectors.shape == (2, 3)
    assert rows[0].tolist() == detections[0].tolist()  # the detection wins the overlap
    assert rows[1, :4].tolist() == [100, 40, 140, 60] and rows[1, 4] == pytest.approx(0.4) and rows[1, 5] == 2
    assert vectors.tolist() == [pytest.approx([0.9, 0.1, 0.6]), pytest.approx([0.0, 0.0, 0.5])]
    assert box_iou(proposals[:1], detections[:, :4])[0, 0] > 0.8


def test_proposer_ignores_the_first_frame_and_static_scenes() -> None:
    proposer = MotionProposer()
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(100, 10, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    boxes, _ = proposer.propose(frame)
    assert len(boxes) == 0  # MOG2 marks the whole first frame foreground: a global change, not an object
    for _ in range(5):
        boxes, _ = proposer.propose(frame)
    assert len(boxes) == 0


def test_coverage_equals_a_hand_count() -> None:
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:7, 2:7] = True  # region A (25 px)
    masks[0, 10:15, 20:28] = True  # region B (40 px)
    masks[1, 2:4, 2:4] = True  # 4 px: below min_region, not a region
    frames = np.array([0, 0, 2])
    boxes = np.array([[2, 2, 7, 5],  # 15 of A's 25 pixels: 60 % -> covers A
                      [20, 10, 23, 15],  # 15 of B's 40 pixels: 37.5 % -> does not cover B
                      [0, 0, 30, 20]])  # frame 2 has no mask
    result = coverage(frames, boxes, masks, min_region=20, min_cover=0.5).as_dict()
    assert result["regions"] == 2 and result["covered_regions"] == 1 and result["region_coverage"] == 0.5
    # frames 0 and 1 are anomalous (any mask pixel); only frame 0 has an object
    assert result["anomalous_frames"] == 2 and result["anomalous_frames_with_object"] == 1
    assert result["objects"] == 3 and result["objects_per_frame"] == 1.0
    assert result["mean_box_fraction"] == pytest.approx((15 + 15 + 600) / 600 / 3)


def test_largest_object_speed_by_hand() -> None:
    # track 1: centre moves 10 px over 1 frame, box height 20 -> 0.5 at frame 1; track 2: 6 px over 2 frames,
    # height 10 -> 0.3 at frame 3 (it skipped frame 2)
    table = np.array([[0, 1, 0, 0, 10, 20], [1, 1, 10, 0, 20, 20], [1, 2, 50, 50, 60, 60], [3, 2, 56, 50, 66, 60]],
                     np.float64)
    speed = largest_object_speed(table, 5)
    assert speed.tolist() == pytest.approx([0.0, 0.5, 0.0, 0.3, 0.0])


def test_frame_difference_energy_rises_where_something_moves(tmp_path: Path) -> None:
    video = tmp_path / "cart.avi"
    _cart_video(video)
    energy = frame_difference_energy(video)
    assert energy.shape == (FRAMES,) and energy.dtype == np.float32
    static = tmp_path / "static.avi"
    writer = cv2.VideoWriter(str(static), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, (WIDTH, HEIGHT))
    for _ in range(10):
        writer.write(np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    writer.release()
    assert frame_difference_energy(static).max() == 0.0
    assert energy.min() > 0.1


def test_baseline_runs_are_evaluated_like_methods(tmp_path: Path) -> None:
    from vad_pipeline.postprocess.evaluate import EvalConfig, evaluate_run, load_run
    from vad_pipeline.io.ground_truth import GroundTruth, VideoTruth
    from vad_pipeline.postprocess.object_baselines import FrameScores

    labels = np.r_[np.zeros(20), np.ones(10)].astype(np.uint8)
    folder = save_frame_run(tmp_path, "baseline-test", {"k": 1},
                            [FrameScores("clip", "clip-1", 1, "test", np.r_[np.zeros(20), np.ones(10)] + 0.1)])
    truth = GroundTruth({"clip": VideoTruth("clip", labels=labels)})
    metrics = evaluate_run(load_run(folder), truth, EvalConfig(frames="video", normalize=True)).metrics
    assert metrics["frame"]["auc"] == 1.0
    # the artifact contract of every score run: the folder's config, the manifest's row
    from vad_pipeline.core.hashing import config_hash
    from vad_pipeline.core.workspace import Workspace

    assert folder.name == f"baseline-test-{config_hash({'k': 1})}"
    assert json.loads((folder / "config.json").read_text())["config"] == {"k": 1}
    record = Workspace(tmp_path).manifest.artifact("scores", "clip-1", config_hash({"k": 1}))
    assert record is not None and record.status == "done" and Path(record.path) == folder / "clip-1.npy"


def test_auto_image_size_follows_the_frames() -> None:
    assert auto_imgsz(360, 240) == 384 and auto_imgsz(160, 120) == 160 and auto_imgsz(1920, 1080) == 640


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none)")
@pytest.mark.slow
def test_ssmtl_on_cuda_matches_the_cpu(tmp_path: Path) -> None:
    """Same seed, same objects: one epoch on each device; frame scores agree (fp32, cuDNN kernels differ)."""
    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.synthetic.objects import generate_object_dataset

    generate_object_dataset(tmp_path / "data", train=3, test_per_anomaly=1, frames=48, seed=0)
    torch.backends.cudnn.deterministic = True
    scores = {}
    for device in ("cpu", "cuda"):
        summary = score_ssmtl(Workspace(tmp_path / device), SSMTLConfig(
            tracks=tmp_path / "data" / "tracks", labels=tmp_path / "data" / "labels.csv", objects=ObjectConfig(size=32),
            epochs=1, device=device, progress=False))
        assert json.loads((summary.folder / "train.json").read_text())["device"].startswith(device)
        scores[device] = np.concatenate([np.load(p) for p in sorted(summary.folder.glob("*.npy"))])
    cpu, cuda = scores["cpu"], scores["cuda"]
    assert np.abs(cpu - cuda).max() <= 1e-3 * max(1.0, np.abs(cpu).max())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none)")
def test_ssmtl_fp16_scoring_on_cuda_follows_fp32_on_the_cpu() -> None:
    """The same network scores objects in fp16 on CUDA and fp32 on the CPU: cosine >= 0.999 per task."""
    from vad_pipeline.models.ssmtl import SSMTLConfig
    from vad_pipeline.models.ssmtl.network import SSMTLNet
    from vad_pipeline.models.ssmtl.runner import object_task_scores

    torch.manual_seed(0)
    net = SSMTLNet("shallow-narrow", 3, teacher_classes=2, teacher_features=8).eval()
    batch = (torch.rand(32, 3, 13, 32, 32), torch.rand(32, 2), torch.rand(32, 8))
    cpu = object_task_scores(net, iter([batch]), SSMTLConfig())
    cuda = object_task_scores(net.cuda(), iter([tuple(t.cuda() for t in batch)]), SSMTLConfig(precision="fp16"))
    for task, values in cpu.items():
        cosine = float(values @ cuda[task] / (np.linalg.norm(values) * np.linalg.norm(cuda[task])))
        assert cosine >= 0.999, (task, cosine)
