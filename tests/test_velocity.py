"""The velocity attribute: optical flow inside an object's box as an orientation x magnitude histogram and a speed
(frame heights per frame), and its memory task ``vel`` ranking a fast object above the walkers it never saw in
training."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from vad_pipeline.detectors.flow import FlowConfig, FlowField, box_velocities, grey, speed_and_place


def _textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, size=(height // 4, width // 4, 3)).astype(np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("shift, sector", [((3, 0), 0), ((0, 3), 2), ((-3, 0), 4), ((0, -3), 6)])
def test_a_moving_patch_falls_in_its_direction_and_speed(shift: tuple[int, int], sector: int) -> None:
    """A textured patch moved by 3 px a frame inside a static scene of 120 rows: its box's histogram peaks in the
    sector of the motion (0 = +x, 2 = +y i.e. down in image coordinates), its moving pixels' mean speed and the
    box's speed are about 3 / 120 frame heights per frame, and a box on the static background does not move."""
    config = FlowConfig()
    scene = np.full((120, 160, 3), 90, np.uint8)
    patch = _textured(30, 30, seed=1)
    frames = []
    for step in range(3):
        frame = scene.copy()
        y, x = 45 + step * shift[1], 60 + step * shift[0]
        frame[y:y + 30, x:x + 30] = patch
        frames.append(grey(frame, config))
    field = FlowField()
    flows = [field(frames[0], frames[1]), field(frames[1], frames[2])]
    box = np.array([[60 + shift[0], 45 + shift[1], 90 + shift[0], 75 + shift[1]],  # the patch at the middle frame
                    [5, 5, 35, 35]], np.float32)  # background
    velocity = box_velocities(flows, box, 120, config)
    assert velocity.shape == (2, config.bins + 1) and velocity.dtype == np.float32
    histogram, speed = velocity[:, :config.bins], velocity[:, config.bins]
    assert int(np.argmax(histogram[0])) == sector, histogram[0]
    assert histogram[0].sum() == pytest.approx(3 / 120, rel=0.35)
    assert speed[0] == pytest.approx(3 / 120, rel=0.35)
    assert speed[1] < 0.2 * speed[0] and histogram[1].sum() < 0.2 * histogram[0].sum()


def test_speed_is_in_box_heights_so_resolution_drops_out() -> None:
    """The same motion at twice the resolution (twice the pixels per frame) gives the same velocity."""
    config = FlowConfig(work_height=480)
    results = []
    for scale in (1, 2):
        scene = np.full((120 * scale, 160 * scale, 3), 90, np.uint8)
        patch = _textured(30 * scale, 30 * scale, seed=2)
        frames = []
        for step in range(2):
            frame = scene.copy()
            x = (60 + 2 * step) * scale
            frame[45 * scale:75 * scale, x:x + 30 * scale] = patch
            frames.append(grey(frame, config))
        flow = FlowField()(frames[0], frames[1])
        box = np.array([[62 * scale, 45 * scale, 92 * scale, 75 * scale]], np.float32)
        results.append(box_velocities([flow], box, 120 * scale, config)[0])
    bins = config.bins
    assert results[0][bins] > 0 and results[0][bins] == pytest.approx(results[1][bins], rel=0.25)
    assert results[0][:bins].sum() == pytest.approx(results[1][:bins].sum(), rel=0.25)
    assert int(np.argmax(results[0][:bins])) == int(np.argmax(results[1][:bins])) == 0


def test_speed_and_place_is_speed_then_box_centre_in_frame_heights() -> None:
    velocity = np.array([[0.0] * 8 + [0.02]], np.float32)
    features = speed_and_place(velocity, np.array([[10, 20, 30, 60]], np.float32), 200)
    np.testing.assert_allclose(features, [[0.02, 40 / 200, 20 / 200]], rtol=1e-6)


def _object_scores(folder: Path, video: str) -> list[tuple[int, float]]:
    key = next(p for p in folder.glob("*.json") if p.stem.startswith(video)).stem
    with open(folder / f"{key}.objects.csv", newline="") as handle:
        return [(int(row["track_id"]), float(row["vel"])) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_velocity_task_ranks_a_fast_object_above_walkers(tmp_path: Path) -> None:
    """SSMTL with only the velocity attribute (no network: nothing to train) on generated clips: the object that
    leaps 7 px a frame scores above the walkers (1.2-2.2 px a frame, the only objects of the training clips), and
    its frames are above the other test clips' frames."""
    from sklearn.metrics import roc_auc_score

    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.synthetic.objects import generate_object_dataset
    from vad_pipeline.core.workspace import Workspace

    generate_object_dataset(tmp_path / "data", train=3, test_per_anomaly=1, frames=48, seed=0)
    summary = score_ssmtl(Workspace(tmp_path / "work"), SSMTLConfig(
        tracks=tmp_path / "data" / "tracks", labels=tmp_path / "data" / "labels.csv", tasks=("vel",),
        objects=ObjectConfig(size=16), device="cpu", progress=False))
    assert summary.history == []  # a memory task trains no network
    rows = _object_scores(summary.folder, "test_004_jump")
    fast = [score for track, score in rows if track == 99]
    walkers = [score for track, score in rows if track != 99]
    assert len(fast) > 5 and len(walkers) > 20
    assert np.median(fast) > np.percentile(walkers, 95)
    labels = [1] * len(fast) + [0] * len(walkers)
    assert roc_auc_score(labels, fast + walkers) >= 0.95


def test_excess_speed_is_local_and_leaves_the_own_video_out() -> None:
    """The ``speed`` memory: an object is compared with the training objects nearest to its place only (a slow far
    walker is normal where far walkers are slow, the same speed near the camera's fast lane is not anomalous
    either), and a training video's own objects are never its neighbours."""
    import torch

    from vad_pipeline.models.ssmtl.memory import ObjectMemory

    rng = np.random.default_rng(0)
    far = np.stack([rng.normal(0.01, 0.001, 40), np.full(40, 0.2), rng.uniform(0, 1, 40)], axis=1)  # slow, top
    near = np.stack([rng.normal(0.05, 0.005, 40), np.full(40, 0.9), rng.uniform(0, 1, 40)], axis=1)  # fast, bottom
    memory = ObjectMemory.of_videos([far, near], torch.device("cpu"), k=8, metric="excess")
    queries = torch.tensor([[0.05, 0.2, 0.5],  # a near walker's speed at the far place: anomalous
                            [0.05, 0.9, 0.5],  # the same speed where it is normal
                            [0.01, 0.2, 0.5]], dtype=torch.float32)
    excess = memory.distances(queries).numpy()
    assert excess[0] > 10 and abs(excess[1]) < 3 and abs(excess[2]) < 3
    # leaving video 0 out, the far place's neighbours are the near (fast) objects: the slow query is not fast there
    left_out = memory.distances(queries[2:], torch.tensor([0])).numpy()
    assert left_out[0] < -3


def test_frame_motion_measures_how_much_the_scene_moves(tmp_path: Path) -> None:
    """The ``motion`` attribute's input: 0 on a still scene, larger the more pixels change, frame 0 taking frame 1's
    value; the frame-difference baseline is the same measure."""
    from vad_pipeline.detectors.motion import frame_motion
    from vad_pipeline.postprocess.object_baselines import frame_difference_energy

    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = [still, still, still.copy(), still.copy()]
    frames[2][10:20, 10:20] = 255 - frames[2][10:20, 10:20]  # a small change
    frames[3] = 255 - still  # the whole frame changes
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index}.png"), frame)
    motion = frame_motion(folder)
    assert motion.shape == (4,) and motion[0] == motion[1] == 0.0
    assert 0 < motion[2] < motion[3]
    np.testing.assert_array_equal(frame_difference_energy(folder), motion)


def test_motion_alone_is_refused_in_one_line(tmp_path: Path) -> None:
    from vad_pipeline.errors import UserError
    from vad_pipeline.models.ssmtl import SSMTLConfig
    from vad_pipeline.models.ssmtl.runner import _check

    with pytest.raises(UserError, match="at least one task that scores objects"):
        _check(SSMTLConfig(tasks=("motion",)))
    with pytest.raises(UserError, match="--motion-weight 1.0: must be in"):
        _check(SSMTLConfig(tasks=("vel", "motion"), motion_weight=1.0))
