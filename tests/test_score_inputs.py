"""Feature layouts, labels and splits for `vad-pipeline score`, and the CLI end to end on extracted features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.errors import UserError
from vad_pipeline.io.naming import read_list_file, video_name
from vad_pipeline.models.data import assign_labels, read_labels_csv, scan_feature_dir


def test_public_layouts_are_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "Abuse001_x264_i3d.npy", rng.normal(size=(7, 10, 16)).astype(np.float32))  # RTFM
    for crop in range(5):  # XD-Violence: one file per crop
        np.save(tmp_path / f"Movie__#00-01_label_A__{crop}.npy", rng.normal(size=(9, 16)).astype(np.float32))
        np.save(tmp_path / f"Fight__#00-02_label_B1-0-0__{crop}.npy", rng.normal(size=(4, 16)).astype(np.float32))
    np.savetxt(tmp_path / "Normal_Videos_006_x264.txt", rng.normal(size=(32, 16)))  # Sultani's bags
    videos = {v.name: v for v in scan_feature_dir(tmp_path)}
    assert sorted(videos) == ["Abuse001_x264", "Fight__#00-02_label_B1-0-0", "Movie__#00-01_label_A",
                              "Normal_Videos_006_x264"]
    assert videos["Abuse001_x264"].load().shape == (7, 10, 16)
    assert videos["Movie__#00-01_label_A"].load().shape == (9, 5, 16)
    assert videos["Normal_Videos_006_x264"].load().shape == (32, 1, 16)
    labels, _ = assign_labels(list(videos.values()), None)
    assert labels == {"Abuse001_x264": 1, "Fight__#00-02_label_B1-0-0": 1, "Movie__#00-01_label_A": 0,
                      "Normal_Videos_006_x264": 0}


def test_rtfm_list_files_name_videos() -> None:
    names = read_list_file(shared_path("rtfm_lists", "list", "ucf-i3d.list"))
    assert "Abuse001_x264" in names and len(names) == 1610
    assert video_name(r"G:\UCF_Train_ten_crop_i3d\Abuse001_x264_i3d.npy") == "Abuse001_x264"


def test_bad_label_line_names_file_and_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,split\na,normal,train\nb,maybe,test\n")
    with pytest.raises(UserError, match=r"labels.csv:3: label 'maybe'"):
        read_labels_csv(labels)
    labels.write_text("name,kind\n")
    with pytest.raises(UserError, match=r"labels.csv:1"):
        read_labels_csv(labels)


def test_unlabeled_videos_are_one_clear_error(tmp_path: Path) -> None:
    np.save(tmp_path / "clip.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(UserError, match="no label for 1 video"):
        assign_labels(scan_feature_dir(tmp_path), None)
    with pytest.raises(UserError, match="no label for 1 video"):  # nothing labelled at all: still an error
        assign_labels(scan_feature_dir(tmp_path), None, allow_unlabeled=True)


def test_training_leaves_unlabeled_videos_out_in_one_line(tmp_path: Path, caplog) -> None:
    """New footage beside labelled videos is said once and left out of training and scoring (it is for predict)."""
    (tmp_path / "normal").mkdir()
    np.save(tmp_path / "normal" / "walk.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "clip.npy", np.zeros((3, 4), np.float32))
    with caplog.at_level("WARNING"):
        labels, _ = assign_labels(scan_feature_dir(tmp_path), None, allow_unlabeled=True)
    assert labels == {"walk": 0}
    assert [r.message for r in caplog.records if "without a label" in r.message] == [
        "1 video(s) without a label left out (clip); apply a trained model to them with `vad-pipeline predict`"]


@pytest.mark.slow
def test_sultani_c3d_features_smoke(tmp_path: Path, capsys) -> None:
    """The authors' real 32-segment C3D bags (4096-d) train and score through the same loader."""
    folder = shared_path("ucf_crime", "c3d_32seg_sample")
    code = main(["score", "--method", "mil", "--features", str(folder), "--workdir", str(tmp_path), "-q",
                 "--epochs", "20"])
    assert code == 0
    scores = sorted((tmp_path / "scores").glob("mil-*/*.npy"))
    assert len(scores) == 10 and all(np.load(p).shape == (32,) for p in scores)


@pytest.mark.slow
def test_score_every_method_after_extract_on_folders(tmp_path: Path, synthetic_dataset, i3d_weights: Path) -> None:
    """`vad-pipeline extract videos/` then `vad-pipeline score --method M`: features, labels (the normal/ and anomaly/
    folders) and split found with no further arguments (a short schedule: this checks the discovery)."""
    root, videos = synthetic_dataset
    workdir = tmp_path / "work"
    assert main(["extract", "--stages", "features", str(root / "videos"), "--workdir", str(workdir), "-q", "--tail", "pad"]) == 0
    for method in ("ddl", "mil", "align", "xel"):
        assert main(["score", "--method", method, "--workdir", str(workdir), "--epochs", "3", "-q"]) == 0
        folders = list((workdir / "scores").glob(f"{method}-*"))
        assert len(folders) == 1
        from vad_pipeline.postprocess.evaluate import load_run

        run = load_run(folders[0])
        assert len(run.videos) == 4
        assert {v.label for v in run.videos} == {0, 1}
        for video in run.videos:
            scores = video.scores
            assert scores.shape == (3,) and np.isfinite(scores).all() and (0 <= scores).all() and (scores <= 1).all()


def test_cached_scores_follow_corrected_labels(tmp_path: Path) -> None:
    from vad_pipeline.models.score import ScoreConfig, score_videos
    from vad_pipeline.synthetic.videos import synthetic_features, write_feature_set
    from vad_pipeline.core.workspace import Workspace

    videos = synthetic_features(n_normal=4, n_anomalous=4, seed=5)
    folder, labels = write_feature_set(tmp_path, videos)
    config = ScoreConfig(features=folder, labels=labels, progress=False, epochs=1)
    first = score_videos(Workspace(tmp_path / "work"), config)
    test_normal = next(v.name for v in videos if v.split == "test" and v.label == 0)
    text = labels.read_text().replace(f"{test_normal},normal,test", f"{test_normal},anomaly,test")
    labels.write_text(text)  # a corrected label of a test video: same model, same scores, new label
    second = score_videos(Workspace(tmp_path / "work"), config)
    assert second.folder == first.folder and second.cached == len(videos) and not second.trained
    from vad_pipeline.postprocess.evaluate import load_run

    assert next(v for v in load_run(second.folder).videos if v.name == test_normal).label == 1
