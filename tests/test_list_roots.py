"""RTFM / TEVAD list roots (``*.list`` + ``gt-*.npy`` + the clips under the root) are datasets: the pair of lists
and its ground truth found, training labels by the lists' convention, the ground truth sliced per test clip under
the last-snippet convention that fits, the bad roots one line each, and the three commands end to end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.errors import UserError
from vad_pipeline.io.datasets import PED2_WEAK_TEST, PED2_WEAK_TRAIN, open_dataset, split_of
from vad_pipeline.io.list_roots import find_list_splits


def _clip(folder: Path, frames: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(frames):
        cv2.imwrite(str(folder / f"{index + 1:03d}.jpg"), rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))


def _list_root(root: Path, train: dict[str, int], test: dict[str, int], name: str = "mini",
               crop_word: str = "", truth: np.ndarray | None = None) -> np.ndarray:
    """Clips as frame folders under ``root/clips`` (``{name: frames}``), the two lists in ``root/list`` and
    ``gt-NAME.npy``: each test clip's anomaly in its second half, 16 * ceil(frames / 16) labels per clip."""
    for seed, (clip, frames) in enumerate({**train, **test}.items()):
        _clip(root / "clips" / clip, frames, seed)
    (root / "list").mkdir(parents=True, exist_ok=True)
    for suffix, clips in (("", train), ("-test", test)):
        (root / "list" / f"{name}-i3d{suffix}.list").write_text(
            "".join(f"/home/someone/RTFM/save/{name}{crop_word}/{clip}_i3d.npy\n" for clip in clips))
    if truth is None:
        parts = []
        for frames in test.values():
            labels = np.zeros(16 * -(-frames // 16), np.uint8)
            labels[frames // 2:] = 1 if frames > 20 else 0
            parts.append(labels)
        truth = np.concatenate(parts)
    np.save(root / "list" / f"gt-{name}.npy", truth)
    return truth


def test_list_root_labels_ground_truth_and_split(tmp_path: Path) -> None:
    """Labels from the names where they say it; the ground truth sliced per test clip, padded tail detected; the
    summary line; crops from the list paths."""
    truth = _list_root(tmp_path, {"A__label_B1-0-0": 20, "B__label_A": 18}, {"C__label_G-0-0": 33, "D__label_A": 17},
                       crop_word="_ten_crop_i3d")
    dataset = open_dataset(tmp_path)
    assert dataset is not None and dataset.layout.kind == "lists"
    assert [(c.name, c.split, c.label) for c in dataset.clips] == [
        ("A__label_B1-0-0", "train", 1), ("B__label_A", "train", 0), ("C__label_G-0-0", "test", 1),
        ("D__label_A", "test", 0)]
    assert dataset.summary() == "RTFM / TEVAD lists (mini): 2 training clips, 2 test clips, frame labels"
    assert (dataset.split.crops, dataset.split.tail, dataset.split.frames) == ("ten", "pad", "snippets")
    assert [len(v) for v in dataset.frame_labels.values()] == [48, 32]
    np.testing.assert_array_equal(np.concatenate(list(dataset.frame_labels.values())), truth)
    assert split_of(tmp_path, None).crops == "ten"


def test_list_root_counts_anomalous_first_and_detects_a_dropped_tail(tmp_path: Path) -> None:
    """A ped2 list: its first six training clips are anomalous (the public code's convention); a ground truth of
    16 * floor(frames / 16) per clip means the last snippet was dropped."""
    train = {f"Clip{i}": 16 for i in range(7)}
    test = {"T1": 40, "T2": 35}
    _list_root(tmp_path, train, test, name="ped2", truth=np.r_[np.zeros(16), np.ones(16), np.zeros(32)])
    dataset = open_dataset(tmp_path)
    assert [c.label for c in dataset.clips if c.split == "train"] == [1, 1, 1, 1, 1, 1, 0]
    assert dataset.split.tail == "drop" and dataset.split.crops is None
    assert [(c.name, c.label) for c in dataset.clips if c.split == "test"] == [("T1", 1), ("T2", 0)]


def test_list_root_bad_inputs_are_one_line_each(tmp_path: Path, caplog) -> None:
    # ground truth whose length fits neither convention
    _list_root(tmp_path / "a", {"A__label_B1": 16}, {"B__label_A": 20}, truth=np.zeros(40, np.uint8))
    with pytest.raises(UserError, match=r"gt-mini.npy: 40 frame labels, but the 1 test clips .* give 32 frames "
                                        r"with the last snippet padded and 16 with it dropped"):
        open_dataset(tmp_path / "a")
    # a test clip that is not under the root: the ground truth cannot be sliced
    _list_root(tmp_path / "b", {"A__label_B1": 16}, {"B__label_A": 20, "C__label_A": 20})
    for frame in (tmp_path / "b" / "clips" / "C__label_A").iterdir():
        frame.unlink()
    (tmp_path / "b" / "clips" / "C__label_A").rmdir()
    with pytest.raises(UserError, match=r"the test clip\(s\) C__label_A are not under"):
        open_dataset(tmp_path / "b")
    # a training clip that is not there is left out with one warning
    _list_root(tmp_path / "c", {"A__label_B1": 16, "Gone__label_A": 16}, {"B__label_A": 20})
    (tmp_path / "c" / "list" / "mini-i3d.list").write_text("x/A__label_B1_i3d.npy\nx/Gone__label_A_i3d.npy\n")
    for frame in (tmp_path / "c" / "clips" / "Gone__label_A").iterdir():
        frame.unlink()
    with caplog.at_level(logging.WARNING):
        dataset = open_dataset(tmp_path / "c")
    assert [c.name for c in dataset.clips] == ["A__label_B1", "B__label_A"]
    assert any("1 listed clip(s) are not under" in r.getMessage() for r in caplog.records)
    # training labels that no convention gives
    _list_root(tmp_path / "d", {"A": 16}, {"B": 20})
    with pytest.raises(UserError, match="cannot tell which training clips are anomalous"):
        open_dataset(tmp_path / "d")


def test_list_root_with_several_pairs_needs_the_split_whose_clips_are_there(tmp_path: Path) -> None:
    """The lists as the public repositories ship them (five datasets side by side): without clips, say which
    lists are there; with one dataset's clips, that one; ``--split`` names one."""
    lists = shared_path("tevad_lists", "list")
    root = tmp_path / "root"
    (root / "list").mkdir(parents=True)
    for path in lists.iterdir():
        (root / "list" / path.name).write_bytes(path.read_bytes())
    assert sorted(s.name for s in find_list_splits(root)) == ["ped2", "shanghai", "ucf", "violence"]
    assert {s.name: s.ground_truth and s.ground_truth.name for s in find_list_splits(root)} == {
        "ped2": "gt-ped2.npy", "shanghai": "gt-sh2.npy", "ucf": None, "violence": None}
    with pytest.raises(UserError, match="lists of ped2, shanghai, ucf, violence; no clip the lists name is under it"):
        open_dataset(root)
    with pytest.raises(UserError, match="--split nope: .* holds the lists of ped2, shanghai, ucf, violence"):
        open_dataset(root, "nope")
    with pytest.raises(UserError, match=r"ped2-i3d.list: none of its 10 clips is under"):
        open_dataset(root, "ped2")


def test_ped2_list_root_is_the_weak_split(tmp_path: Path) -> None:
    """TEVAD's own lists with UCSD Ped2's frame folders named as the lists name them: the clips, labels and
    extraction of the built-in weak split, the ground truth exactly ``gt-ped2.npy``."""
    ped2 = shared_path("ucsd-ped2")
    root = tmp_path / "root"
    (root / "list").mkdir(parents=True)
    for path in shared_path("tevad_lists", "list").glob("*ped2*"):
        (root / "list" / path.name).write_bytes(path.read_bytes())
    (root / "clips").mkdir()
    for split, prefix in (("training", "Train"), ("testing", "Test")):
        for folder in (ped2 / split / "frames").iterdir():
            (root / "clips" / f"{prefix}0{folder.name}").symlink_to(folder, target_is_directory=True)
    dataset = open_dataset(root)
    weak = open_dataset(ped2, "weak")
    assert [(c.name, c.split, c.label) for c in dataset.clips] == [(c.name, c.split, c.label) for c in weak.clips]
    assert [c.name for c in dataset.clips] == list(PED2_WEAK_TRAIN + PED2_WEAK_TEST)
    assert (dataset.split.crops, dataset.split.tail) == (weak.split.crops, weak.split.tail)
    np.testing.assert_array_equal(np.concatenate(list(dataset.frame_labels.values())),
                                  np.load(shared_path("tevad_lists", "list", "gt-ped2.npy")))


def test_list_root_through_extract_score_report(tmp_path: Path, capsys) -> None:
    """`extract ROOT` records the lists' split and writes the sliced ground truth; `score` takes the split's
    labels; `report` finds the ground truth and evaluates over 16 T frames."""
    _list_root(tmp_path / "root", {"A__label_B1": 24, "B__label_A": 20, "C__label_B2": 22, "D__label_A": 18},
               {"E__label_B1": 40, "F__label_A": 30})
    workdir = str(tmp_path / "work")
    assert main(["extract", str(tmp_path / "root"), "--stages", "features", "--weights", "random",
                 "--workdir", workdir]) == 0
    assert "RTFM / TEVAD lists (mini): 4 training clips, 2 test clips, frame labels" in capsys.readouterr().err
    record = json.loads((tmp_path / "work" / "dataset" / "dataset.json").read_text())
    assert record["kind"] == "lists" and record["split"] == "mini"
    assert record["evaluation"] == {"frames": "snippets", "normalize": False}
    truth = np.load(record["ground_truth"][0])
    assert sorted(truth.files) == ["E__label_B1", "F__label_A"] and len(truth["E__label_B1"]) == 48
    assert main(["score", "--method", "mil", "--epochs", "3", "--workdir", workdir, "-q"]) == 0
    run = next((tmp_path / "work" / "scores").glob("mil-*"))
    labels = json.loads((run / "labels.json").read_text())
    assert sorted((v["video"], v["split"]) for v in labels.values()) == [
        ("A__label_B1", "train"), ("B__label_A", "train"), ("C__label_B2", "train"), ("D__label_A", "train"),
        ("E__label_B1", "test"), ("F__label_A", "test")]
    capsys.readouterr()
    assert main(["report", "--workdir", workdir, "-q"]) == 0
    out = capsys.readouterr().out
    assert "frame AUC micro" in out and "frames: snippets" in out
