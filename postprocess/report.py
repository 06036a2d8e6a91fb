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
import html
import io
import json
import logging
import webbrowser
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vad_pipeline import __version__
from vad_pipeline.atomic import prepare_folder, save_json_atomic, write_atomic
from vad_pipeline.decode import VIDEO_EXTENSIONS
from vad_pipeline.frames import is_frame_folder
from vad_pipeline.errors import UserError
from vad_pipeline.hashing import config_hash
from vad_pipeline.schemas import PREDICTIONS_SCHEMA
from vad_pipeline.versions import library_versions
from vad_pipeline.workspace import Workspace

from . import figures
from .evaluate import EvalConfig, RunResult, evaluate
from .ground_truth import GroundTruth
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


@dataclass(frozen=True)
class ReportConfig:
    """Options of ``vad-pipeline report``."""

    gt: tuple[Path, ...] = ()
    out: Path | None = None
    runs: str = "all"  # all scores runs, or comma-separated run folder names / method names (see load_runs)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    max_videos: int = 24  # per-video sections in the HTML
    thumbnails: int = 8
    open_browser: bool = False
    accuracy: Path | None = None  # an accuracy.json of benchmarks/accuracy.py to show (default <workdir>/accuracy.json)
    predictions: tuple[Path, ...] = ()  # `predict` output folders to show (default: every one in the workdir)


@dataclass
class ReportSummary:
    folder: Path
    html: Path
    results: list[RunResult]


def _get(metrics: dict[str, Any], path: tuple[str, str]) -> float | None:
    group = metrics.get(path[0])
    return None if not group else group.get(path[1])


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


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
#: the report's stylesheet (benchmarks/accuracy.py styles its page with it too)
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f5f5f5} .muted{color:#777;font-size:13px}
.warn{background:#fff4e5;border-left:4px solid #f0a000;padding:8px 12px;margin:8px 0}
.video{margin:18px 0;padding:8px 0;border-top:1px dashed #ddd} img{max-width:100%} code{background:#f5f5f5;padding:1px 4px}
details{margin:6px 0} .best{font-weight:bold}
"""


#: the columns the page shows first; the rest are one click away
KEY_COLUMNS = ("frame_auc", "frame_ap", "frame_macro_auc", "video_auc", "false_alarm_rate_at_recall", "rbdc", "tbdc")


def _metric_table(results: list[RunResult], columns: list[tuple[str, tuple[str, str]]]) -> str:
    """One table of ``columns`` for ``results``; bold marks the best value of each column."""
    headers = ["method", "test videos", "frames"] + [name.replace("_", " ") for name, _ in columns]
    best: dict[str, float] = {}
    for name, key in columns:
        values = [v for r in results if (v := _get(r.metrics, key)) is not None]
        if values and not name.startswith(("false_alarm", "threshold")):
            best[name] = max(values)
    rows = []
    for result in results:
        frame = result.metrics.get("frame") or {}
        cells = [f"<td>{html.escape(result.run.label)}</td>", f"<td>{result.metrics['test_videos']}</td>",
                 f"<td>{_fmt(frame.get('frames'))}</td>"]
        for name, key in columns:
            value = _get(result.metrics, key)
            css = ' class="best"' if value is not None and best.get(name) == value and len(results) > 1 else ""
            cells.append(f"<td{css}>{_fmt(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f'<div style="overflow-x:auto"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _metric_tables(results: list[RunResult]) -> str:
    """The metrics, one table per set of evaluated test videos (methods scored on different videos are not
    comparable, so they never share a table): the key columns, then every column behind a click."""
    groups: dict[tuple[str, ...], list[RunResult]] = {}
    for result in results:
        groups.setdefault(tuple(sorted(v.video.name for v in result.videos)), []).append(result)
    parts = []
    if len(groups) > 1:
        parts.append(f'<div class="warn">These methods were evaluated on {len(groups)} different sets of test '
                     "videos: compare numbers within one table only.</div>")
    for index, (names, members) in enumerate(groups.items(), 1):
        if len(groups) > 1:
            shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
            parts.append(f"<h3>Test set {index}: {len(names)} videos ({html.escape(shown)})</h3>")
        key = [(n, k) for n, k in CSV_COLUMNS
               if n in KEY_COLUMNS and any(_get(r.metrics, k) is not None for r in members)]
        parts.append(_metric_table(members, key))
        parts.append(f"<details><summary>all metrics</summary>{_metric_table(members, CSV_COLUMNS)}</details>")
    return "".join(parts)


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


def _video_sections(workspace: Workspace, results: list[RunResult], config: ReportConfig) -> str:
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
    sections = []
    for entry in ordered[: config.max_videos]:
        video = entry["video"]
        title = f"{video.name} ({'anomalous' if video.label else 'normal'}, {video.split})"
        parts = [f'<div class="video"><h3>{html.escape(title)}</h3>']
        parts.append(_img(figures.score_curves(entry["labels"], entry["curves"], entry["proposals"], video.fps,
                                               title), f"scores of {video.name}"))
        rows = "".join(f"<tr><td>{html.escape(method)}</td><td>{_fmt(vals.get('auc'))}</td><td>{_fmt(vals.get('ap'))}"
                       f"</td><td>{_fmt(vals.get('max_score'))}</td></tr>" for method, vals in entry["metrics"].items())
        parts.append(f"<table><tr><th>method</th><th>frame AUC</th><th>frame AP</th><th>max score</th></tr>{rows}</table>")
        if video.source and (Path(video.source).suffix.lower() in VIDEO_EXTENSIONS and Path(video.source).is_file()
                             or is_frame_folder(Path(video.source))):
            parts.append(_img(figures.thumbnails(Path(video.source), config.thumbnails), f"frames of {video.name}"))
            tracks = sorted((workspace.root / "tracks").glob(f"*/{video.key}.csv"))
            if tracks:
                from vad_pipeline.detectors.visualize import annotated_frames

                try:
                    picture = annotated_frames(Path(video.source), tracks[-1], count=4)
                    parts.append("<details><summary>tracklets</summary>"
                                 + _img(figures.image_png(picture), f"tracklets of {video.name}") + "</details>")
                except Exception as exc:  # a picture must never stop the report
                    log.debug("tracklet picture of %s failed: %s", video.name, exc)
        parts.append("</div>")
        sections.append("".join(parts))
    if len(ordered) > config.max_videos:
        sections.append(f'<p class="muted">{len(ordered) - config.max_videos} more videos are in metrics.json '
                        f"(raise --max-videos to draw them).</p>")
    return "".join(sections)


def _task_section(results: list[RunResult]) -> str:
    """Per-task contributions of methods that report them (``metrics["tasks"]``: {task: frame AUC})."""
    parts = []
    for result in results:
        tasks = result.metrics.get("tasks")
        if not tasks:
            continue
        frame = result.metrics.get("frame") or {}
        rows = "".join(f"<tr><td>{html.escape(task)}</td><td>{_fmt(v.get('auc'))}</td><td>{_fmt(v.get('macro_auc'))}"
                       f"</td></tr>" for task, v in tasks.items())
        rows += (f"<tr><td><b>all tasks (the method's score)</b></td><td>{_fmt(frame.get('auc'))}</td>"
                 f"<td>{_fmt(frame.get('macro_auc'))}</td></tr>")
        parts.append(f"<h3>{html.escape(result.run.label)}: per-task frame AUC</h3><table><tr><th>task score alone"
                     f"</th><th>micro AUC</th><th>macro AUC</th></tr>{rows}</table>")
        parts.append(_img(figures.bar_table({k: {"micro AUC": v.get("auc"), "macro AUC": v.get("macro_auc")}
                                             for k, v in tasks.items()}, "per-task contribution"), "tasks"))
    return "<h2>Per-task contributions</h2>" + "".join(parts) if parts else ""


def _metadata(results: list[RunResult], truth: GroundTruth, config: ReportConfig) -> str:
    items = [f"<li>ground truth: {html.escape(', '.join(truth.sources) or 'none')}</li>",
             f"<li>conventions: <code>{html.escape(json.dumps(asdict(config.evaluation)))}</code></li>",
             f"<li>libraries: <code>{html.escape(json.dumps(library_versions()))}</code></li>"]
    for result in results:
        train = result.run.train or {}
        items.append(f"<li><b>{html.escape(result.run.label)}</b>: <code>{html.escape(str(result.run.folder))}</code>"
                     f"<details><summary>training config</summary><pre>"
                     f"{html.escape(json.dumps(train.get('config', {}), indent=1))}</pre></details></li>")
    return "<h2>Run metadata</h2><ul>" + "".join(items) + "</ul>"


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


def _prediction_sections(documents: list[dict[str, Any]], config: ReportConfig) -> str:
    """Applied models without ground truth: per model its alerts, and per video the score curve against the
    alarm threshold (alerts as bars beneath) and thumbnails."""
    if not documents:
        return ""
    parts = ["<h2>Predictions (no ground truth)</h2><p class=\"muted\">Models applied with <code>vad-pipeline "
             "predict</code>: frame scores against each model's alarm threshold; bars under the axis: alerts.</p>"]
    for document in documents:
        threshold = float(document["threshold"])
        source = (f"calibrated at {document['far']:.3g} false alarms" if document.get("threshold_source") == "calibrated"
                  else "given with --threshold")
        videos = document.get("videos", [])
        alerts = [a for v in videos for a in v.get("alerts", [])]
        parts.append(f"<h3>{html.escape(document['method'])}: {html.escape(Path(document['model']).name)} on "
                     f"{len(videos)} video(s), {len(alerts)} alert(s); threshold {threshold:.4g} ({source})</h3>")
        if alerts:
            rows = "".join(f"<tr><td>{html.escape(str(a['video']))}</td><td>{a['start_frame']}</td>"
                           f"<td>{a['end_frame']}</td><td>{a['start_s']}</td><td>{a['end_s']}</td>"
                           f"<td>{_fmt(a['peak_score'])}</td></tr>" for a in alerts)
            parts.append("<details open><summary>alerts</summary><table><tr><th>video</th><th>start frame</th>"
                         f"<th>end frame</th><th>start s</th><th>end s</th><th>peak score</th></tr>{rows}</table>"
                         "</details>")
        for video in videos[: config.max_videos]:
            name = Path(str(video["video"])).name
            try:
                scores = np.load(video["frame_scores"], allow_pickle=False)
            except (OSError, ValueError):
                parts.append(f'<p class="muted">{html.escape(name)}: frame scores unreadable; run predict again</p>')
                continue
            spans = [(a["start_frame"], a["end_frame"] + 1) for a in video.get("alerts", [])]
            parts.append(f'<div class="video"><h3>{html.escape(name)}</h3>')
            parts.append(_img(figures.score_curves(None, {document["method"]: scores}, {document["method"]: spans},
                                                   video.get("fps"), name, threshold=threshold),
                              f"scores of {name}"))
            source = Path(str(video["video"]))
            if source.suffix.lower() in VIDEO_EXTENSIONS and source.is_file() or is_frame_folder(source):
                parts.append(_img(figures.thumbnails(source, config.thumbnails), f"frames of {name}"))
            parts.append("</div>")
    return "".join(parts)


def _html(workspace: Workspace, results: list[RunResult], truth: GroundTruth, config: ReportConfig,
          document: dict[str, Any], predictions: list[dict[str, Any]]) -> str:
    curves = {r.run.label: r.curves for r in results if r.curves is not None}
    aucs = {r.run.label: (_get(r.metrics, ("frame", "auc")), _get(r.metrics, ("frame", "ap"))) for r in results}
    warnings = "".join(f'<div class="warn">{html.escape(w)}</div>' for w in _warnings(results, truth))
    body = [
        f"<h1>vad-pipeline report</h1><p class=\"muted\">{html.escape(document['created'])} · workspace "
        f"<code>{html.escape(str(workspace.root))}</code> · vad-pipeline {html.escape(__version__)}</p>",
        warnings,
    ]
    if not results:  # predictions only
        body.append(_prediction_sections(predictions, config))
        body.append(_metadata(results, truth, config))
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vad-pipeline report</title>"
                f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    body += [
        "<h2>Metrics</h2>",
        '<p class="muted">Frame AP is the public code\'s auc(recall, precision); "ap sklearn" is scikit-learn\'s '
        "average_precision_score. Macro values average per test video. False alarms: fraction of normal-video frames "
        f"scoring ≥ {config.evaluation.alarm_threshold}, and at the threshold reaching "
        f"{config.evaluation.target_recall:.0%} frame recall. Bold: best per column.</p>",
        _metric_tables(results),
    ]
    if curves:
        body.append("<h2>ROC and precision-recall curves</h2>" + _img(figures.roc_pr(curves, aucs), "ROC and PR"))
    body.append(_task_section(results))
    body.append("<h2>Videos</h2><p class=\"muted\">Scores per frame (shaded: ground truth; bars under the axis: "
                "each method's temporal proposals).</p>")
    body.append(_video_sections(workspace, results, config))
    body.append(_prediction_sections(predictions, config))
    accuracy = config.accuracy or workspace.root / "accuracy.json"
    if Path(accuracy).is_file():
        body.append(accuracy_section(json.loads(Path(accuracy).read_text(encoding="utf-8"))))
    body.append(_metadata(results, truth, config))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vad-pipeline report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


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
    return f"{value:.4f}" if isinstance(value, float) else missing if value is None else html.escape(str(value))


def _protocol_tables(record: dict[str, Any]) -> str:
    """The single-scene protocol: trivial baselines and SSMTL runs (mean ± std over seeds) in one table, per-task
    rows, then the object coverage diagnostics per test clip."""
    keys = ("micro_auc", "macro_auc", "rbdc", "tbdc")
    rows = ""
    for label, row in (record.get("baselines") or {}).items():
        rows += f"<tr><td>baseline: {html.escape(label)}</td>" + "".join(f"<td>{format_cell(row.get(k))}</td>"
                                                                         for k in keys) + "</tr>"
    for label, row in record["results"].items():
        summary = row.get("summary") or row  # older records: one seed, metrics at the top level
        seeds = row.get("seeds") or [row]
        tasks = row.get("tasks") or []
        rows += (f"<tr><td>ssmtl {html.escape(label)} ({html.escape(' + '.join(tasks))}; {len(seeds)} "
                 f"seed{'s' if len(seeds) > 1 else ''})</td>"
                 + "".join(f"<td>{format_cell(summary.get(k))}</td>" for k in keys) + "</tr>")
        for task in seeds[0].get("per_task_of_joint_model", {}) if len(tasks) > 1 else ():
            cells = [format_cell(over_seeds([s["per_task_of_joint_model"][task][metric] for s in seeds]))
                     for metric in ("micro_auc", "macro_auc")]
            rows += (f"<tr><td>ssmtl {html.escape(label)}: its {html.escape(task)} score alone</td>"
                     f"<td>{cells[0]}</td><td>{cells[1]}</td><td>–</td><td>–</td></tr>")
    out = ("<table><tr><th>run</th><th>micro AUC</th><th>macro AUC</th><th>RBDC</th><th>TBDC</th></tr>"
           f"{rows}</table>")
    coverage = record.get("coverage")
    if coverage:
        columns = ("regions", "covered_regions", "region_coverage", "anomalous_frames", "anomalous_frame_coverage",
                   "objects_per_frame", "mean_box_fraction")
        body = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(
            f"<td>{_fmt(values.get(c)) if isinstance(values.get(c), float) else values.get(c)}</td>" for c in columns)
            + "</tr>" for name, values in [*coverage["per_clip"].items(), ("all", coverage["overall"])])
        out += ("<h4>Object coverage of the anomalous regions (a box holds >= 50 % of a ground-truth region)</h4>"
                "<table><tr><th>clip</th>" + "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
                + f"</tr>{body}</table>")
    return out


def accuracy_section(records: dict[str, Any]) -> str:
    """The "Accuracy on real data" section from ``benchmarks/accuracy.py``'s ``accuracy.json``: per suite the
    command, date, machine, wall time, a table and a figure."""
    parts = ["<h2>Accuracy on real data</h2>"]
    for suite, record in records.items():
        parts.append(f"<h3>{html.escape(suite)}</h3><p class=\"muted\">{html.escape(str(record.get('date', '')))} · "
                     f"{html.escape(str(record.get('machine', '')))} · wall time {record.get('wall_s', 0):.0f} s · "
                     f"<code>{html.escape(str(record.get('command', '')))}</code></p>")
        if "summary" in record:  # the weakly supervised suite: mean ± std over seeds
            keys = ("frame_auc", "frame_ap", "frame_ap_sklearn", "video_auc", "false_alarm_rate")
            rows = "".join(
                f"<tr><td>{html.escape(label)}</td>" + "".join(
                    f"<td>{row[k]['mean']:.4f} ± {row[k]['std']:.4f}</td>" if row.get(k) else "<td>–</td>"
                    for k in keys) + "</tr>" for label, row in record["summary"].items())
            parts.append("<table><tr><th>method</th>" + "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>"
                                                                for k in keys) + f"</tr>{rows}</table>")
            parts.append(_img(figures.bar_table({label: {"frame AUC": (row.get("frame_auc") or {}).get("mean"),
                                                         "video AUC": (row.get("video_auc") or {}).get("mean")}
                                                 for label, row in record["summary"].items()},
                                                f"{suite}: mean over seeds {record.get('seeds')}"), suite))
        elif "results" in record:  # the single-scene protocol
            parts.append(_protocol_tables(record))
    return "".join(parts)
