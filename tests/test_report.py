"""`vad-pipeline report`: its metrics equal a direct scikit-learn computation, its HTML is safe and renders."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score

from vad_pipeline.commands.cli import main
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.models.score import ScoreConfig, score_videos
from vad_pipeline.synthetic.videos import synthetic_features, write_feature_ground_truth, write_feature_set

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "normal_<img src=x onerror=alert(1)>&"


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory):
    """12 + 12 synthetic feature videos scored by mil and align, with a frame ground-truth CSV (16 frames per
    snippet); one normal video has a hostile name."""
    root = tmp_path_factory.mktemp("report")
    videos = synthetic_features(n_normal=12, n_anomalous=12, seed=3, shift=1.5)
    videos[0] = type(videos[0])(HOSTILE, *(getattr(videos[0], f) for f in ("features", "snippet_labels", "label",
                                                                            "split")))
    folder, labels = write_feature_set(root, videos)
    gt = write_feature_ground_truth(root / "ground_truth.csv", videos)
    workdir = root / "work"
    for method in ("mil", "align"):
        score_videos(Workspace(workdir), ScoreConfig(method=method, features=folder, labels=labels, progress=False,
                                                     **({"epochs": 30} if method == "align" else {})))
    return workdir, gt, videos


def test_report_metrics_match_scikit_learn(scored, tmp_path: Path) -> None:
    workdir, gt, videos = scored
    out = tmp_path / "report"
    assert main(["report", "--workdir", str(workdir), "--gt", str(gt), "--out", str(out), "-q"]) == 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["schema"] == "vad-pipeline/metrics/1" and set(document["methods"]) == {"mil", "align"}
    test = [v for v in videos if v.split == "test"]
    for method, entry in document["methods"].items():
        folder = Path(entry["folder"])
        labels = np.concatenate([np.repeat(v.snippet_labels, 16) for v in test])
        scores = np.concatenate([np.repeat(np.load(folder / f"{v.name}.npy"), 16) for v in test])
        frame = entry["metrics"]["frame"]
        assert frame["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        precision, recall, _ = precision_recall_curve(labels, scores)
        assert frame["ap"] == pytest.approx(auc(recall, precision), abs=1e-12)
        assert frame["frames"] == labels.size
        maxima = [float(np.load(folder / f"{v.name}.npy").max()) for v in test]
        assert entry["metrics"]["video"]["auc"] == pytest.approx(roc_auc_score([v.label for v in test], maxima))
        normal = np.concatenate([np.repeat(np.load(folder / f"{v.name}.npy"), 16) for v in test if v.label == 0])
        assert entry["metrics"]["false_alarm"]["rate"] == pytest.approx(float(np.mean(normal >= 0.5)))
        assert frame["auc"] > 0.85, f"{method} should localise the synthetic anomalies"
        # proposals: one JSON per test video, inside the video
        for video in test:
            record = entry["videos"][video.name]
            for proposal in record["proposals"]:
                assert 0 <= proposal["start_frame"] < proposal["end_frame"] <= record["frames"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {r["method"] for r in rows} == {"mil", "align"}
    assert float(rows[0]["frame_auc"]) == pytest.approx(document["methods"][rows[0]["method"]]["metrics"]["frame"]["auc"],
                                                        abs=1e-6)
    assert len(list((out / "proposals" / "mil").glob("*.json"))) == len(test)


def test_report_html_is_self_contained_and_escaped(scored, tmp_path: Path) -> None:
    workdir, gt, _ = scored
    out = tmp_path / "report"
    assert main(["report", "--workdir", str(workdir), "--gt", str(gt), "--out", str(out), "-q"]) == 0
    page = (out / "index.html").read_text()
    assert HOSTILE not in page and "<img src=x" not in page
    assert "normal_&lt;img src=x onerror=alert(1)&gt;&amp;" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network
    assert page.count('src="data:image/png;base64,') >= 3


def test_methods_on_different_test_videos_never_share_a_table(scored, tmp_path: Path) -> None:
    """Two methods on the same videos: one table (key columns, every column behind a click). A run on other test
    videos gets a table of its own, under a warning."""
    workdir, gt, _ = scored
    out = tmp_path / "same"
    assert main(["report", "--workdir", str(workdir), "--gt", str(gt), "--out", str(out), "-q"]) == 0
    page = (out / "index.html").read_text()
    assert page.count("<summary>all metrics</summary>") == 1 and "different sets of test videos" not in page
    key_table = page.split("<h2>Metrics</h2>", 1)[1].split("<details>", 1)[0]
    assert "frame auc" in key_table and "segment auc" not in key_table  # the rest is one click away

    other = tmp_path / "other"
    shutil.copytree(workdir, other)
    (run,) = (other / "scores").glob("align-*")
    labels = json.loads((run / "labels.json").read_text())
    dropped = next(key for key, entry in labels.items() if entry["split"] == "test")
    for path in run.glob(f"{dropped}.*"):
        path.unlink()
    assert main(["report", "--workdir", str(other), "--gt", str(gt), "--out", str(tmp_path / "split"), "-q"]) == 0
    page = (tmp_path / "split" / "index.html").read_text()
    assert page.count("<summary>all metrics</summary>") == 2 and "2 different sets of test videos" in page


def test_report_without_scores_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["report", "--workdir", str(tmp_path / "none")]) == 2
    assert "no workspace here yet" in capsys.readouterr().err
    Workspace(tmp_path / "work").manifest  # an empty workspace
    assert main(["report", "--workdir", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err
    assert "no scores yet" in err and "Traceback" not in err


def test_runs_are_chosen_by_name_never_by_age(scored, tmp_path: Path, capsys) -> None:
    """A second mil run (other epochs) beside the first: the report shows both, each by its folder; `--runs` takes a
    run's folder or a method with one run, and a method name that matches two runs is one line naming them."""
    import shutil as shell

    workdir, gt, videos = scored
    copy = tmp_path / "work"
    shell.copytree(workdir, copy)
    root = Path(json.loads((next((copy / "scores").glob("mil-*")) / "train.json").read_text())["config"]
                ["features"]["dir"])
    labels = root.parent / "labels.csv"
    second = score_videos(Workspace(copy), ScoreConfig(method="mil", features=root, labels=labels, epochs=3,
                                                       progress=False))
    out = tmp_path / "report"
    assert main(["report", "--workdir", str(copy), "--gt", str(gt), "--out", str(out), "-q"]) == 0
    methods = json.loads((out / "metrics.json").read_text())["methods"]
    mil_runs = sorted(k for k in methods if k.startswith("mil"))
    assert len(mil_runs) == 2 and second.folder.name in mil_runs and "align" in methods
    assert main(["report", "--workdir", str(copy), "--gt", str(gt), "--out", str(out), "--runs", "mil"]) == 2
    err = capsys.readouterr().err
    assert "--runs mil: 2 scores run(s)" in err and second.folder.name in err and "Traceback" not in err
    assert main(["report", "--workdir", str(copy), "--gt", str(gt), "--out", str(out), "-q", "--runs",
                 f"{second.folder.name},align"]) == 0
    assert sorted(json.loads((out / "metrics.json").read_text())["methods"]) == ["align", "mil"]


_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var shown = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', images.length + '/' + shown);
});
window.addEventListener('error', function (e) { document.body.setAttribute('data-error', String(e.message)); });
</script></body>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian package chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(scored, tmp_path: Path) -> None:
    workdir, gt, _ = scored
    out = tmp_path / "report"
    assert main(["report", "--workdir", str(workdir), "--gt", str(gt), "--out", str(out), "-q"]) == 0
    probe = out / "probe.html"
    probe.write_text((out / "index.html").read_text().replace("</body>", _CHECK_SCRIPT))
    flags = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--allow-file-access-from-files"]
    dom = subprocess.run(flags + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-error="' not in dom.stdout
    counted = dom.stdout.split('data-images="', 1)[1].split('"', 1)[0]
    total, shown = (int(x) for x in counted.split("/"))
    assert total >= 3 and shown == total, f"{shown} of {total} figures rendered"
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report.png"
    taken = subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,2000", (out / "index.html").as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] >= 1000 and image.std() > 10  # a real page, not a blank one


def test_accuracy_page_shows_both_suite_kinds_escaped() -> None:
    """``accuracy.html`` (benchmarks/accuracy.py) from a weak suite and a single-scene record: every figure in its
    table, user strings escaped by the template."""
    from vad_pipeline.postprocess.report import accuracy_page, over_seeds

    records = {
        "fight<b>": {"date": "2026-12-07", "machine": "test", "wall_s": 12.0, "command": "accuracy.py --suite fight",
                     "seeds": [0, 1], "summary": {"mil": {"frame_auc": over_seeds([0.8, 0.9]),
                                                           "video_auc": over_seeds([0.7, 0.7])}}},
        "ped2": {"date": "2026-12-07", "machine": "test", "wall_s": 5.0, "command": "accuracy.py --suite ped2",
                 "baselines": {"frame-difference energy": {"micro_auc": 0.88, "macro_auc": 0.92}},
                 "results": {"all": {"tasks": ["vel", "speed"], "summary": {"micro_auc": over_seeds([0.95, 0.96])},
                                     "seeds": [{"per_task_of_joint_model": {"vel": {"micro_auc": 0.9,
                                                                                    "macro_auc": 0.91}}}]}}},
    }
    page = accuracy_page(records)
    assert "<h3>fight&lt;b&gt;</h3>" in page and "fight<b>" not in page
    assert "<td>mil</td><td>0.8500 ± 0.0500</td><td>–</td><td>–</td><td>0.7000 ± 0.0000</td>" in page
    assert "<td>baseline: frame-difference energy</td><td>0.8800</td><td>0.9200</td>" in page
    assert "ssmtl all (vel + speed; 1 seed)</td><td>0.9550 ± 0.0050</td>" in page
    assert "its vel score alone</td><td>0.9000</td><td>0.9100</td>" in page
    assert page.count("data:image/png;base64,") == 1  # the weak suite's figure
