"""Every metric against a hand-computed value; RBDC/TBDC against an independent implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vad_pipeline.core.frame_scores import false_alarm_rate, minmax, smooth, snippet_to_frames
from vad_pipeline.postprocess import metrics as m
from vad_pipeline.postprocess.proposals import Proposal, proposal_frame_scores, runs, tcam_proposals

LABELS = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_auc_by_hand() -> None:
    # positive/negative pairs ranked right: 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert m.roc_auc(LABELS, SCORES) == pytest.approx(0.75)
    assert m.roc_auc([1, 1], [0.2, 0.3]) is None


def test_both_ap_conventions_by_hand() -> None:
    # PR points (recall, precision): (0,1) (.5,1) (.5,.5) (1,2/3) [(1,.5)]; trapezoids: .5 + 0 + .5*(.5+2/3)/2
    assert m.pr_auc(LABELS, SCORES) == pytest.approx(0.5 + 0.25 * (0.5 + 2 / 3))
    # step-wise AP: sum (R_n - R_n-1) P_n = .5*1 + .5*(2/3)
    assert m.average_precision(LABELS, SCORES) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert m.pr_auc([0, 0], [0.1, 0.2]) is None


def test_micro_and_macro_with_single_class_videos() -> None:
    videos = [
        m.VideoFrames("a", np.array([0, 1]), np.array([0.2, 0.9]), 1),
        m.VideoFrames("b", np.array([0, 0]), np.array([0.5, 0.5]), 0),
        m.VideoFrames("c", np.array([1, 1]), np.array([0.3, 0.6]), 1),
    ]
    skip = m.frame_level(videos, "skip")
    # micro: labels 0 1 0 0 1 1 / scores .2 .9 .5 .5 .3 .6 -> positives .9 .3 .6 vs negatives .2 .5 .5:
    # .9 beats 3, .6 beats 3, .3 beats 1 (.2) -> 7 / 9
    assert skip["auc"] == pytest.approx(7 / 9)
    assert skip["macro_auc"] == pytest.approx(1.0) and skip["macro_videos"] == 1
    pad = m.frame_level(videos, "pad")
    assert pad["macro_videos"] == 3
    # b padded: labels 0 0 0 1, scores .5 .5 0 1 -> 1.0; c padded: 1 1 0 1 / .3 .6 0 1 -> 1.0
    assert pad["macro_auc"] == pytest.approx(1.0)
    assert skip["frames"] == 6 and skip["anomalous_frames"] == 3


def test_video_and_segment_levels() -> None:
    assert m.video_level([0, 1, 1, 0], [0.3, 0.9, 0.2, 0.1])["auc"] == pytest.approx(0.75)
    frames = np.zeros(40, np.uint8)
    frames[17] = 1  # one anomalous frame makes its snippet anomalous
    assert m.snippet_labels(frames, 2).tolist() == [0, 1]
    assert m.snippet_labels(frames[:20], 3).tolist() == [0, 1, 0]


def test_false_alarms_and_threshold_at_recall() -> None:
    assert false_alarm_rate(np.array([0.1, 0.6, 0.5, 0.2]), 0.5, inclusive=True) == pytest.approx(0.5)
    assert false_alarm_rate(np.array([0.1, 0.6, 0.5, 0.2]), 0.5) == pytest.approx(0.25)  # alerts: strictly above
    assert false_alarm_rate([np.zeros(0)], 0.5) is None
    labels = np.array([1, 1, 1, 1, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.95])
    assert m.threshold_at_recall(labels, scores, 0.75) == pytest.approx(0.7)  # 3 of 4 positives reach 0.7
    assert m.threshold_at_recall(labels, scores, 1.0) == pytest.approx(0.3)


def test_snippet_to_frames_and_tail() -> None:
    expanded = snippet_to_frames(np.array([0.2, 0.7]), 40)
    assert expanded.tolist() == [0.2] * 16 + [0.7] * 24  # the 8 trailing frames take the last snippet's score
    assert snippet_to_frames(np.array([0.2, 0.7]), 20).tolist() == [0.2] * 16 + [0.7] * 4
    assert len(snippet_to_frames(np.array([0.2, 0.7]))) == 32
    assert minmax(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    bump = np.zeros(21)
    bump[10] = 1.0
    smoothed = smooth(bump, 2.0)
    assert smoothed.argmax() == 10 and smoothed.sum() == pytest.approx(1.0) and smoothed[10] < 0.25


def test_tcam_proposal_by_hand() -> None:
    # psi at snippet centres 7.5, 23.5, 39.5, 55.5 = 0 1 1 0; >= 0.35 from 7.5 + .35*16 = 13.1 to 55.5 - 5.6 = 49.9
    found = tcam_proposals(np.array([0.0, 1.0, 1.0, 0.0]), None, 64)
    assert len(found) == 1 and (found[0].start_frame, found[0].end_frame) == (14, 50)
    # mean psi over frames 14..49: ramps (14..23 and 40..49) sum to 110/16 each, 16 frames at 1 -> 29.75 / 36
    assert found[0].score == pytest.approx(29.75 / 36)


def test_proposals_use_attention_and_modes() -> None:
    scores = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    attention = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # psi = lambda * a: two bumps, the 2nd longer
    largest = tcam_proposals(scores, attention, 128)
    every = tcam_proposals(scores, attention, 128, mode="all")
    assert len(every) == 2 and len(largest) == 1
    assert largest[0] == max(every, key=lambda p: p.end_frame - p.start_frame)
    assert largest[0].start_frame > 48
    frames = proposal_frame_scores([Proposal(2, 5, 0.7), Proposal(4, 6, 0.9)], 8)
    assert frames.tolist() == [0, 0, 0.7, 0.7, 0.9, 0.9, 0, 0]
    assert runs(np.array([1, 1, 0, 1])) == [(0, 2), (3, 4)]


def test_rbdc_tbdc_by_hand() -> None:
    gt = np.zeros((2, 20, 20), bool)
    gt[0, 2:8, 2:8] = True  # one anomalous region in frame 0, 36 px
    boxes = np.array([[4, 2, 10, 8], [14, 14, 18, 18]])  # IoU with the GT: 24 / 48 = 0.5; a far-away box
    maps = np.stack([m.box_score_map(boxes, np.array([0.8, 0.4]), (20, 20)), np.zeros((20, 20), np.float32)])
    accumulator = m.RegionTrackAccumulator()
    accumulator.update(gt, maps)
    result = accumulator.summarize()
    # thresholds above .8: nothing (RBDR 0, FP 0); (.4, .8]: the region found, no FP; (0, .4]: one FP in 2 frames;
    # <= 0 (the grid's last two): every pixel is one region per frame, IoU 36/400 < .1 -> RBDR 0, 2 FP in 2 frames.
    # Curve (0, 0) -> (0, 1) -> (0.5, 1) -> (1, 0): 0.5 + 0.25; the single track follows its single region.
    assert result["rbdc"] == pytest.approx(0.75)
    assert result["tbdc"] == pytest.approx(0.75)
    assert result["gt_regions"] == 1 and result["gt_tracks"] == 1


def _import_py_ssvad_metrics(monkeypatch: pytest.MonkeyPatch) -> tuple:
    """py-ssvad-metrics is written against the pydantic 1 API; pydantic 2 (which Ray needs) still ships that API
    as ``pydantic.v1``, so the package is imported with ``pydantic`` pointing there (for this import only)."""
    import sys

    pydantic = pytest.importorskip("pydantic")
    if not pydantic.VERSION.startswith("1."):
        import pydantic.v1

        for name in [n for n in sys.modules if n.startswith("ssvad_metrics")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "pydantic", pydantic.v1)
    return pytest.importorskip("ssvad_metrics.criteria"), pytest.importorskip("ssvad_metrics.data_schema")


def test_rbdc_tbdc_match_py_ssvad_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssvad, schema = _import_py_ssvad_metrics(monkeypatch)
    rng = np.random.default_rng(0)
    height, width, length = 48, 64, 20
    mine, theirs = m.RegionTrackAccumulator(), ssvad.CurrentCriteriaAccumulator()
    for video in range(3):
        gt = np.zeros((length, height, width), bool)
        tracks = np.zeros(gt.shape, int)
        track_of_frame = [-1] * length
        maps = np.zeros(gt.shape, np.float32)
        for f in range(length):
            if 5 <= f < 15:  # two anomalous tracks per video: frames 5-9 and 10-14
                x = 5 + 2 * f
                gt[f, 10:25, x : x + 12] = True
                track_of_frame[f] = int(f >= 10)
                tracks[f][gt[f]] = 1 + track_of_frame[f]
            boxes, scores = [], []
            for _ in range(rng.integers(0, 4)):
                bx, by = rng.integers(0, width - 15), rng.integers(0, height - 15)
                boxes.append([bx, by, bx + rng.integers(5, 15), by + rng.integers(5, 15)])
                scores.append(rng.random())
            if gt[f].any() and rng.random() < 0.7:
                x = 5 + 2 * f + rng.integers(-3, 4)
                boxes.append([x, 11, x + 12, 24])
                scores.append(0.5 + 0.5 * rng.random())
            maps[f] = m.box_score_map(np.array(boxes).reshape(-1, 4), np.array(scores), (height, width))
        mine.update(gt, maps, tracks)
        predicted, truth = [], []
        for f in range(length):
            p, g = tmp_path / f"p{video}_{f}.npy", tmp_path / f"g{video}_{f}.npy"
            np.save(p, maps[f])
            np.save(g, gt[f].astype(np.float32))
            predicted.append({"frame_id": f + 1, "pixel_level_scores_map": str(p)})
            truth.append({"frame_id": f + 1, "pixel_level_scores_map": str(g), "anomaly_track_id": track_of_frame[f]})
        common = dict(frames_count=length, is_anomalous_regions_available=True, frame_width=width, frame_height=height)
        theirs.update(schema.VADAnnotation(is_gt=False, is_anomaly_track_id_available=False, frames=predicted, **common),
                      schema.VADAnnotation(is_gt=True, is_anomaly_track_id_available=True, frames=truth, **common))
    expected, got = theirs.summarize(), mine.summarize()
    assert got["rbdc"] == pytest.approx(expected["region_roc_auc"], abs=1e-9)
    assert got["tbdc"] == pytest.approx(expected["track_roc_auc"], abs=1e-9)
    assert 0.05 < got["rbdc"] < 0.95  # a fixture where the criteria are not trivially 0 or 1


def test_default_tracks_are_3d_components() -> None:
    masks = np.zeros((4, 10, 10), bool)
    masks[0:2, 1:3, 1:3] = True  # one object over frames 0-1
    masks[3, 6:8, 6:8] = True  # another in frame 3
    labels = m.gt_track_labels(masks)
    assert labels[0, 1, 1] == labels[1, 2, 2] != labels[3, 6, 6]
