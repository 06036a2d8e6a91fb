"""Ground-truth readers parse every real annotation file in ../shared/data, and bad lines are one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.errors import UserError
from vad_pipeline.io.ground_truth import evaluation_length, load_ground_truth, load_many


def test_ucf_crime_annotation() -> None:
    truth = load_ground_truth(shared_path("ucf_crime", "Temporal_Anomaly_Annotation.txt"))
    assert len(truth) == 290
    normal = [v for k, v in truth.videos.items() if k.startswith("Normal_")]
    assert len(normal) == 150 and all(not v.intervals for v in normal)
    assert truth.get("Abuse028_x264_i3d.npy").intervals == [(165, 240)]  # feature names find their truth
    labels = truth.get("Abuse028_x264").frame_labels(300)
    assert labels.sum() == 75 and labels[165] == 1 and labels[240] == 0
    assert len(truth.get("Arson011_x264").intervals) == 2


def test_ucf_matlab_files_agree_with_the_text_annotation() -> None:
    text = load_ground_truth(shared_path("ucf_crime", "Temporal_Anomaly_Annotation.txt"))
    mats = load_ground_truth(shared_path("rtfm_lists", "list", "Matlab_formate"))
    assert len(mats) == 290
    for key, video in mats.videos.items():
        assert video.intervals == text.videos[key].intervals, key


def test_xd_violence_plain_and_multiclass_agree() -> None:
    plain = load_ground_truth(shared_path("xd_violence", "annotations.txt"))
    multi = load_ground_truth(shared_path("xd_violence", "annotations_multiclasses.txt"))
    assert len(plain) == len(multi) == 500
    mismatched = annotated = 0
    for key, video in plain.videos.items():  # the multi-class file splits intervals by class: the same frames,
        length = max(end for _, end in video.intervals + multi.videos[key].intervals)  # up to 1-frame seams
        mismatched += int((multi.videos[key].frame_labels(length) != video.frame_labels(length)).sum())
        annotated += int(video.frame_labels(length).sum())
        assert video.cut == "xd"
    assert mismatched < 0.001 * annotated
    first = plain.get("v=S-7rRLrxnVQ__#1_label_B4-0-0")
    assert first.intervals == [(0, 1517), (1970, 3038)]
    # XD-Violence truth is cut to 16 * floor((n - 1) / 16) frames under the xd convention
    assert evaluation_length(first, num_frames=3200, snippets=200, convention="xd") == 16 * (3199 // 16)
    assert evaluation_length(first, num_frames=3200, snippets=200, convention="snippets") == 3200


def test_shanghaitech_frame_masks() -> None:
    truth = load_ground_truth(shared_path("rtfm_lists", "list", "test_frame_mask"))
    assert len(truth) == 107
    total = sum(v.num_frames for v in truth.videos.values())
    anomalous = sum(int(v.frame_labels().sum()) for v in truth.videos.values())
    assert (total, anomalous) == (40791, 17326)


def test_ucsd_ped2_matlab_file_matches_the_frames_and_the_packed_labels() -> None:
    truth = load_ground_truth(shared_path("ucsd-ped2", "UCSDped2.m"))
    packed = load_ground_truth(shared_path("ucsd-ped2", "frame_labels_ped2.npz"))
    frames_root = shared_path("ucsd-ped2", "testing", "frames")
    assert len(packed) == 12
    for clip in sorted(p.name for p in frames_root.iterdir()):
        frames = len(list((frames_root / clip).glob("*.jpg")))
        video = truth.get(clip)
        assert video.num_frames == frames, clip  # frame counts agree with the frames on disk
        assert np.array_equal(video.frame_labels(), packed.get(clip).frame_labels()), clip
        assert truth.get(f"Test{int(clip):03d}") is video
    assert sum(int(v.frame_labels().sum()) for v in packed.videos.values()) == 1648


def test_ucsd_ped1_ranges_with_several_intervals() -> None:
    truth = load_ground_truth(shared_path("ucsd-ped2", "UCSDped1.m"))
    assert truth.get("05").intervals == [(4, 90), (139, 200)]  # [5:90, 140:200], 1-based inclusive


def test_ped2_pixel_masks_join_frame_labels() -> None:
    truth = load_many([shared_path("ucsd-ped2", "UCSDped2.m"), shared_path("ucsd-ped2", "pixel_masks_ped2_test.npz")])
    video = truth.get("04")
    assert video.masks is not None and video.masks.shape == (180, 240, 360)
    from_masks = video.masks.reshape(180, -1).any(axis=1)
    assert np.array_equal(from_masks.astype(np.uint8), video.frame_labels())


def test_ped2_per_frame_csv() -> None:
    truth = load_ground_truth(shared_path("ucsd-ped2", "test_frame_labels.csv"))
    assert len(truth) == 12 and sum(int(v.frame_labels().sum()) for v in truth.videos.values()) == 1648


def test_avenue_mat() -> None:
    truth = load_ground_truth(shared_path("avenue", "avenue.mat"))
    assert len(truth) == 21
    assert sum(v.num_frames for v in truth.videos.values()) == 15324
    assert sum(int(v.frame_labels().sum()) for v in truth.videos.values()) == 3712
    assert truth.get("08").frame_labels().tolist() == [1] * 36


def test_avenue_volume_label_masks(tmp_path: Path) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    masks = np.empty((1, 3), dtype=object)
    for i in range(3):
        mask = np.zeros((6, 8), np.uint8)
        if i == 1:
            mask[2:4, 3:5] = 1
        masks[0, i] = mask
    folder = tmp_path / "testing_label_mask"
    folder.mkdir()
    scipy_io.savemat(folder / "1_label.mat", {"volLabel": masks})
    truth = load_ground_truth(folder)
    assert truth.get("01").frame_labels().tolist() == [0, 1, 0]
    assert truth.get("01").masks.shape == (3, 6, 8)


def test_csv_intervals_and_normal_rows(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text("video,start_frame,end_frame\nclip_a,4,8\nclip_a,10,12\nclip_b,,\n")
    truth = load_ground_truth(path)
    assert truth.get("clip_a.mp4").frame_labels(14).tolist() == [0] * 4 + [1] * 4 + [0, 0, 1, 1, 0, 0]
    assert truth.get("clip_b").frame_labels(5).sum() == 0


@pytest.mark.parametrize("name, text, where", [
    ("ucf.txt", "Abuse001_x264.mp4  Abuse  10  20  -1  -1\nAbuse002_x264.mp4  Abuse  ten  20  -1  -1\n", ":2:"),
    ("xd.txt", "v=a_label_B1-0-0 0 10\nv=b_label_B1-0-0 5\n", ":2:"),
    ("gt.csv", "video,start_frame,end_frame\na,1,5\nb,9,3\n", ":3:"),
    ("gt.csv", "name,start,end\n", ":1:"),
    ("ped.m", "TestVideoFile{end+1}.gt_frame = [1:5, 7];\n", ":1:"),
])
def test_malformed_line_is_one_error_naming_file_and_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_ground_truth(path)
    message = str(error.value)
    assert str(path) in message and where in message and "\n" not in message
