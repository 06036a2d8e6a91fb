"""``vad-pipeline report``: metrics.json, metrics.csv, proposals and a self-contained ``index.html``.

Outputs in ``<workdir>/report/`` (or ``--out``):

- ``metrics.json`` (schema ``vad-pipeline/metrics/1``): ``conventions`` (the :class:`EvalConfig`), ``ground_truth``
  (the files read), and per method ``folder``, ``metrics`` (``frame``: ``auc``, ``ap`` (= ``auc(recall,
  precision)``), ``ap_sklearn``, ``macro_auc``, ``macro_ap``, ``frames``...; ``video``; ``segment``; ``proposal``;
  ``false_alarm``) and ``videos`` (per video ``label``, ``split``, ``auc``, ``ap``, ``max_score``, ``proposals``);
- ``metrics.csv``: one row per method, the headline numbers (columns documented by their names);
- ``proposals/<method>/<video>.json``: temporal proposals (schema ``vad-pipeline/proposals/1``);
- ``index.html``: one file, no network access needed (figures are inline PNGs); every user string is escaped.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import functools
import io
import json
import logging
import webbrowser
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from vad_pipeline import __version__
from vad_pipeline.core.hashing import config_hash
from vad_pipeline.core.schemas import PREDICTIONS_SCHEMA
from vad_pipeline.core.versions import library_versions
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError
from vad_pipeline.io.atomic import prepare_folder, save_json_atomic, write_atomic
from vad_pipeline.io.decode import VIDEO_EXTENSIONS
from vad_pipeline.io.frames import is_frame_folder
from vad_pipeline.io.ground_truth import GroundTruth

from . import figures
from .config import EvalConfig, ReportConfig
from .evaluate import RunResult, evaluate
from .proposals import PROPOSALS_SCHEMA

log = logging.getLogger(__name__)

METRICS_SCHEMA = "vad-pipeline/metrics/1"
CSV_COLUMNS = [
    ("frame_auc", ("frame", "auc")), ("frame_ap", ("frame", "ap")), ("frame_ap_sklearn", ("frame", "ap_sklearn")),
    ("frame_macro_auc", ("frame", "macro_auc")), ("frame_macro_ap", ("frame", "macro_ap")),
    ("video_auc", ("video", "auc")), ("video_ap", ("video", "ap")),
    ("segment_auc", ("segment", "auc")), ("segment_ap", ("segment", "ap")),
    ("proposal_auc", ("proposal", "auc")), ("proposal_ap", ("proposal", "ap")),
    ("false_alarm_rate", ("false_alarm", "rate")), ("false_alarm_rate_at_recall", ("false_alarm", "rate_at_recall")),
    ("threshold_at_recall", ("false_alarm", "threshold_at_recall")),
    ("rbdc", ("region", "rbdc")), ("tbdc", ("region", "tbdc")),
]


@dataclass
class ReportSummary:
    folder: Path
    html: Path
    results: list[RunResult]


def _get(metrics: dict[str, Any], path: tuple[str, str]) -> float | None:
    group = metrics.get(path[0])
    return None if not group else group.get(path[1])


def _fmt(value: Any) -> str:
    """A metric as the report prints it: 4 decimals, ``–`` when missing."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _data_uri(png: bytes | None) -> str | None:
    """An inline PNG for an ``<img src>`` (None: no picture)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None


def write_report(workspace: Workspace, config: ReportConfig) -> ReportSummary:
    """Evaluate every run of the workspace and write the report (see the module docstring)."""
    out = Path(config.out) if config.out else workspace.root / "report"
    predictions = _predictions(workspace, config)
    if predictions and not any((p / "summary.json").is_file() for p in (workspace.root / "scores").glob("*")):
        results, truth = [], GroundTruth()  # applied models only: nothing to evaluate
    else:
        results, truth = evaluate(workspace.root, list(config.gt), config.evaluation, config.runs)
    prepare_folder(out)
    document = _metrics_document(results, truth, config)
    save_json_atomic(out / "metrics.json", document)
    _write_csv(out / "metrics.csv", results)
    _write_proposals(out / "proposals", results, config.evaluation)
    page = _html(workspace, results, truth, config, document, predictions)
    write_atomic(out / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    report_config = {"evaluation": asdict(config.evaluation), "gt": [str(p) for p in config.gt], "out": str(out)}
    workspace.manifest.record_lineage(
        "report", "report", config_hash(report_config), report_config, out / "index.html",
        {"scores": {r.run.label: r.run.folder.name.rsplit("-", 1)[-1] for r in results},
         "ground_truth": {str(p): workspace.manifest.sha256_of(p)[:16] for p in config.gt if Path(p).is_file()},
         "predictions": {d["folder"]: d["model_key"] for d in predictions}})
    for result in results:
        frame = result.metrics.get("frame") or {}
        log.info("report: %-6s frame AUC %s  AP %s  video AUC %s", result.run.label, _fmt(frame.get("auc")),
                 _fmt(frame.get("ap")), _fmt(_get(result.metrics, ("video", "auc"))))
    log.info("report: %s", out / "index.html")
    if config.open_browser:
        webbrowser.open((out / "index.html").resolve().as_uri())
    return ReportSummary(out, out / "index.html", results)


def _metrics_document(results: list[RunResult], truth: GroundTruth, config: ReportConfig) -> dict[str, Any]:
    methods = {}
    for result in results:
        videos = {}
        for video in result.videos:
            videos[video.video.name] = {
                "label": video.video.label, "split": video.video.split, **video.metrics,
                "frames": int(len(video.scores)),
                "proposals": [p.to_json() for p in video.proposals],
            }
        methods[result.run.label] = {"method": result.run.method, "folder": str(result.run.folder),
                                     "metrics": result.metrics, "videos": videos}
    return {"schema": METRICS_SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "vad_pipeline": __version__, "conventions": asdict(config.evaluation),
            "ground_truth": truth.sources, "methods": methods}


def _write_csv(path: Path, results: list[RunResult]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "test_videos", "frames"] + [name for name, _ in CSV_COLUMNS])
    for result in results:
        frame = result.metrics.get("frame") or {}
        writer.writerow([result.run.label, result.metrics["test_videos"], frame.get("frames", "")]
                        + ["" if (v := _get(result.metrics, key)) is None else f"{v:.6f}" for _, key in CSV_COLUMNS])
    write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))


def _write_proposals(folder: Path, results: list[RunResult], evaluation: EvalConfig) -> None:
    for result in results:
        for video in result.videos:
            save_json_atomic(folder / result.run.label / f"{video.video.key}.json", {
                "schema": PROPOSALS_SCHEMA, "video": video.video.name, "method": result.run.label,
                "threshold": evaluation.proposal_threshold, "mode": evaluation.proposals,
                "proposals": [p.to_json() for p in video.proposals],
            })


# -- HTML ----------------------------------------------------------------------------------------------------------
# The pages are Jinja2 templates (postprocess/templates/, autoescaped): the functions below only gather the data.
TEMPLATES = Path(__file__).with_name("templates")
#: the report's stylesheet (the accuracy page of benchmarks/accuracy.py shares it)
STYLE = (TEMPLATES / "report.css").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["metric"] = _fmt
    environment.filters["cell"] = format_cell
    return environment


def _render(template: str, **context: Any) -> str:
    return _templates().get_template(template).render(style=STYLE, **context)


#: the columns the page shows first; the rest are one click away
KEY_COLUMNS = ("frame_auc", "frame_ap", "frame_macro_auc", "video_auc", "false_alarm_rate_at_recall", "rbdc", "tbdc")


def _metric_table(results: list[RunResult], columns: list[tuple[str, tuple[str, str]]]) -> dict[str, Any]:
    """One table of ``columns`` for ``results``: headers, and rows of cells marked ``best`` (the best value of its
    column, when several methods share the table)."""
    best: dict[str, float] = {}
    for name, key in columns:
        values = [v for r in results if (v := _get(r.metrics, key)) is not None]
        if values and not name.startswith(("false_alarm", "threshold")):
            best[name] = max(values)
    rows = []
    for result in results:
        frame = result.metrics.get("frame") or {}
        cells = [{"value": result.run.label, "best": False}, {"value": result.metrics["test_videos"], "best": False},
                 {"value": frame.get("frames"), "best": False}]
        for name, key in columns:
            value = _get(result.metrics, key)
            cells.append({"value": value, "best": value is not None and best.get(name) == value and len(results) > 1})
        rows.append(cells)
    return {"headers": ["method", "test videos", "frames"] + [name.replace("_", " ") for name, _ in columns],
            "rows": rows}


def _metric_groups(results: list[RunResult]) -> list[dict[str, Any]]:
    """The metrics, one group per set of evaluated test videos (methods scored on different videos are not
    comparable, so they never share a table): the key columns, then every column behind a click."""
    groups: dict[tuple[str, ...], list[RunResult]] = {}
    for result in results:
        groups.setdefault(tuple(sorted(v.video.name for v in result.videos)), []).append(result)
    out = []
    for names, members in groups.items():
        key = [(n, k) for n, k in CSV_COLUMNS
               if n in KEY_COLUMNS and any(_get(r.metrics, k) is not None for r in members)]
        out.append({"count": len(names), "shown": ", ".join(names[:4]) + (", …" if len(names) > 4 else ""),
                    "key": _metric_table(members, key), "all": _metric_table(members, CSV_COLUMNS)})
    return out


def _warnings(results: list[RunResult], truth: GroundTruth) -> list[str]:
    notes = []
    for result in results:
        features = (result.run.train or {}).get("config", {}).get("features", {})
        tag = str(features.get("tag", ""))
        if "-random-" in tag:
            notes.append(f"{result.run.label}: trained on features of a randomly initialised backbone ({tag}); "
                         "its numbers say nothing about real accuracy.")
    if not truth.videos:
        notes.append("No frame-level ground truth was given (--gt): frame, segment and proposal metrics are missing.")
    return notes


def _drawable(source: str | Path | None) -> bool:
    """Whether ``source`` is a video file or a folder of frames the report can draw thumbnails of."""
    if not source:
        return False
    path = Path(source)
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file() or is_frame_folder(path)


def _videos(workspace: Workspace, results: list[RunResult], config: ReportConfig) -> tuple[list[dict[str, Any]], int]:
    """Per test video (anomalous first, at most ``config.max_videos``): its score curves with ground truth and
    proposals, per-method metrics, thumbnails and tracklets; and how many more there are."""
    by_video: dict[str, dict[str, Any]] = {}
    for result in results:
        for video in result.videos:
            entry = by_video.setdefault(video.video.name, {"video": video.video, "labels": video.labels,
                                                            "curves": {}, "proposals": {}, "metrics": {}})
            entry["curves"][result.run.label] = video.scores
            entry["proposals"][result.run.label] = [(p.start_frame, p.end_frame) for p in video.proposals]
            entry["metrics"][result.run.label] = video.metrics
            if entry["labels"] is None and video.labels is not None:
                entry["labels"] = video.labels
    ordered = sorted(by_video.values(), key=lambda e: (-e["video"].label, e["video"].name))
    shown = []
    for entry in ordered[: config.max_videos]:
        video = entry["video"]
        title = f"{video.name} ({'anomalous' if video.label else 'normal'}, {video.split})"
        item = {"name": video.name, "title": title, "metrics": list(entry["metrics"].items()),
                "curves": _data_uri(figures.score_curves(entry["labels"], entry["curves"], entry["proposals"],
                                                         video.fps, title)),
                "thumbnails": None, "tracklets": None}
        if _drawable(video.source):
            item["thumbnails"] = _data_uri(figures.thumbnails(Path(video.source), config.thumbnails))
            tracks = sorted((workspace.root / "tracks").glob(f"*/{video.key}.csv"))
            if tracks:
                from vad_pipeline.detectors.visualize import annotated_frames

                try:
                    picture = annotated_frames(Path(video.source), tracks[-1], count=4)
                    item["tracklets"] = _data_uri(figures.image_png(picture))
                except Exception as exc:  # a picture must never stop the report
                    log.debug("tracklet picture of %s failed: %s", video.name, exc)
        shown.append(item)
    return shown, max(0, len(ordered) - config.max_videos)


def _tasks(results: list[RunResult]) -> list[dict[str, Any]]:
    """Per-task contributions of methods that report them (``metrics["tasks"]``: {task: frame AUC})."""
    out = []
    for result in results:
        tasks = result.metrics.get("tasks")
        if not tasks:
            continue
        frame = result.metrics.get("frame") or {}
        out.append({"label": result.run.label, "micro": frame.get("auc"), "macro": frame.get("macro_auc"),
                    "rows": [(task, v.get("auc"), v.get("macro_auc")) for task, v in tasks.items()],
                    "figure": _data_uri(figures.bar_table({k: {"micro AUC": v.get("auc"), "macro AUC": v.get("macro_auc")}
                                                           for k, v in tasks.items()}, "per-task contribution"))})
    return out


def _predictions(workspace: Workspace, config: ReportConfig) -> list[dict[str, Any]]:
    """The ``predictions.json`` documents of ``vad-pipeline predict`` to show: ``config.predictions`` folders, else
    every one under ``<workdir>/predictions/``."""
    folders = list(config.predictions) or sorted((workspace.root / "predictions").glob("*"))
    documents = []
    for folder in folders:
        path = Path(folder) / "predictions.json"
        if not path.is_file():
            if config.predictions:
                raise UserError(f"--predictions {folder}: no predictions.json there; run `vad-pipeline predict` first")
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            log.warning("%s: unreadable (%s); run `vad-pipeline predict` again", path, exc)
            continue
        if document.get("schema") == PREDICTIONS_SCHEMA:
            documents.append(document | {"folder": str(folder)})
    return documents


def _applied_models(documents: list[dict[str, Any]], config: ReportConfig) -> list[dict[str, Any]]:
    """Applied models without ground truth: per model its alerts, and per video the score curve against the
    alarm threshold (alerts as bars beneath) and thumbnails."""
    out = []
    for document in documents:
        threshold = float(document["threshold"])
        videos = document.get("videos", [])
        model = {"method": document["method"], "model": Path(document["model"]).name, "threshold": threshold,
                 "source": (f"calibrated at {document['far']:.3g} false alarms"
                            if document.get("threshold_source") == "calibrated" else "given with --threshold"),
                 "video_count": len(videos), "alerts": [a for v in videos for a in v.get("alerts", [])], "videos": []}
        for video in videos[: config.max_videos]:
            name = Path(str(video["video"])).name
            try:
                scores = np.load(video["frame_scores"], allow_pickle=False)
            except (OSError, ValueError):
                model["videos"].append({"name": name, "unreadable": True})
                continue
            spans = [(a["start_frame"], a["end_frame"] + 1) for a in video.get("alerts", [])]
            curves = figures.score_curves(None, {document["method"]: scores}, {document["method"]: spans},
                                          video.get("fps"), name, threshold=threshold)
            source = Path(str(video["video"]))
            model["videos"].append({"name": name, "unreadable": False, "curves": _data_uri(curves),
                                    "thumbnails": _data_uri(figures.thumbnails(source, config.thumbnails))
                                    if _drawable(source) else None})
        out.append(model)
    return out


def _html(workspace: Workspace, results: list[RunResult], truth: GroundTruth, config: ReportConfig,
          document: dict[str, Any], predictions: list[dict[str, Any]]) -> str:
    curves = {r.run.label: r.curves for r in results if r.curves is not None}
    aucs = {r.run.label: (_get(r.metrics, ("frame", "auc")), _get(r.metrics, ("frame", "ap"))) for r in results}
    videos, videos_left = _videos(workspace, results, config) if results else ([], 0)
    accuracy = Path(config.accuracy or workspace.root / "accuracy.json")
    return _render(
        "report.html.j2", title="vad-pipeline report", created=document["created"], workspace=str(workspace.root),
        version=__version__, warnings=_warnings(results, truth), metric_groups=_metric_groups(results),
        alarm_threshold=config.evaluation.alarm_threshold, target_recall=config.evaluation.target_recall,
        roc_pr=_data_uri(figures.roc_pr(curves, aucs)) if curves and results else None, tasks=_tasks(results),
        videos=videos, videos_left=videos_left, predictions=_applied_models(predictions, config),
        accuracy=accuracy_suites(json.loads(accuracy.read_text(encoding="utf-8")))
        if results and accuracy.is_file() else None,
        ground_truth=", ".join(truth.sources) or "none", conventions=json.dumps(asdict(config.evaluation)),
        libraries=json.dumps(library_versions()),
        runs=[{"label": r.run.label, "folder": str(r.run.folder),
               "config": json.dumps((r.run.train or {}).get("config", {}), indent=1)} for r in results])


def over_seeds(values: list[float | None]) -> dict[str, Any] | None:
    """``{"mean", "std", "values"}`` of one metric over seeds (population std; missing values left out), or None."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return {"mean": float(np.mean(present)), "std": float(np.std(present)), "values": present}


def format_cell(value: Any, missing: str = "–") -> str:
    """A metric to 4 decimals, or ``mean ± std`` of an :func:`over_seeds` summary (its mean alone for one seed)."""
    if isinstance(value, dict):
        if len(value["values"]) > 1:
            return f"{value['mean']:.4f} ± {value['std']:.4f}"
        value = value["mean"]
    return f"{value:.4f}" if isinstance(value, float) else missing if value is None else str(value)


def _protocol(record: dict[str, Any]) -> dict[str, Any]:
    """The single-scene protocol: trivial baselines and SSMTL runs (mean ± std over seeds) in one table, per-task
    rows, then the object coverage diagnostics per test clip."""
    keys = ("micro_auc", "macro_auc", "rbdc", "tbdc")
    rows = [(f"baseline: {label}", [row.get(k) for k in keys]) for label, row in (record.get("baselines") or {}).items()]
    for label, row in record["results"].items():
        summary = row.get("summary") or row  # older records: one seed, metrics at the top level
        seeds = row.get("seeds") or [row]
        tasks = row.get("tasks") or []
        rows.append((f"ssmtl {label} ({' + '.join(tasks)}; {len(seeds)} seed{'s' if len(seeds) > 1 else ''})",
                     [summary.get(k) for k in keys]))
        for task in seeds[0].get("per_task_of_joint_model", {}) if len(tasks) > 1 else ():
            rows.append((f"ssmtl {label}: its {task} score alone",
                         [over_seeds([s["per_task_of_joint_model"][task][metric] for s in seeds])
                          for metric in ("micro_auc", "macro_auc")] + [None, None]))
    coverage = record.get("coverage")
    table = None
    if coverage:
        columns = ("regions", "covered_regions", "region_coverage", "anomalous_frames", "anomalous_frame_coverage",
                   "objects_per_frame", "mean_box_fraction")
        table = {"columns": columns, "rows": [(name, [values.get(c) for c in columns]) for name, values in
                                              [*coverage["per_clip"].items(), ("all", coverage["overall"])]]}
    return {"rows": rows, "coverage": table}


def accuracy_suites(records: dict[str, Any]) -> list[dict[str, Any]]:
    """The "Accuracy on real data" section's data from ``benchmarks/accuracy.py``'s ``accuracy.json``: per suite the
    command, date, machine, wall time, a table and a figure."""
    suites = []
    for suite, record in records.items():
        item = {"name": suite, "date": str(record.get("date", "")), "machine": str(record.get("machine", "")),
                "wall_s": float(record.get("wall_s", 0)), "command": str(record.get("command", "")),
                "weak": None, "protocol": None}
        if "summary" in record:  # the weakly supervised suite: mean ± std over seeds
            keys = ("frame_auc", "frame_ap", "frame_ap_sklearn", "video_auc", "false_alarm_rate")
            item["weak"] = {
                "columns": keys,
                "rows": [(label, [_seed_summary(row.get(k)) for k in keys]) for label, row in record["summary"].items()],
                "figure": _data_uri(figures.bar_table({label: {"frame AUC": (row.get("frame_auc") or {}).get("mean"),
                                                               "video AUC": (row.get("video_auc") or {}).get("mean")}
                                                       for label, row in record["summary"].items()},
                                                      f"{suite}: mean over seeds {record.get('seeds')}"))}
        elif "results" in record:  # the single-scene protocol
            item["protocol"] = _protocol(record)
        suites.append(item)
    return suites


def _seed_summary(value: dict[str, Any] | None) -> str | None:
    """``mean ± std`` of a weak suite's summary cell, whatever the number of seeds."""
    return f"{value['mean']:.4f} ± {value['std']:.4f}" if value else None


def accuracy_page(records: dict[str, Any]) -> str:
    """``benchmarks/accuracy.py``'s ``accuracy.html``: the accuracy section as a page of its own."""
    return _render("accuracy.html.j2", title="vad-pipeline accuracy", suites=accuracy_suites(records))
