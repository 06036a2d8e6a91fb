"""``vad-pipeline status``: what the workspace holds, per video and stage configuration."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from ..core.workspace import Workspace


def _folder_tags(workspace: Workspace) -> dict[tuple[str, str], str]:
    """(stage, config hash) -> folder tag, read from the workspace's stage folders."""
    tags: dict[tuple[str, str], str] = {}
    for config_file in workspace.root.glob("*/*/config.json"):
        try:
            payload = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        tags[(payload.get("stage", config_file.parent.parent.name), payload.get("config_hash", ""))] = (
            config_file.parent.name
        )
    return tags


# artifacts that belong to a whole run rather than to one video (``video_id`` holds their name)
RUN_STAGES = ("model", "report")


def workspace_status(workspace: Workspace) -> dict[str, Any]:
    """A JSON-able summary: videos with their metadata and, per stage configuration, each artifact's status;
    ``artifacts``: every artifact of every stage (features, tracks, objects, model, scores, report) with its
    key, path and upstream keys (``inputs``, see ``manifest.py``)."""
    manifest = workspace.manifest
    tags = _folder_tags(workspace)
    videos = {video["video_id"]: video | {"artifacts": {}} for video in manifest.videos()}
    artifacts = []
    for record in manifest.artifacts():
        artifacts.append({"stage": record.stage, "key": record.video_id, "config_hash": record.config_hash,
                          "status": record.status, "path": record.path, "inputs": record.detail.get("inputs"),
                          "seconds": record.seconds, "error": record.error})
        if record.stage in RUN_STAGES or record.stage == "objects":
            continue
        column = f"{record.stage}/{tags.get((record.stage, record.config_hash), record.config_hash)}"
        entry = videos.setdefault(record.video_id, {"video_id": record.video_id, "path": None, "artifacts": {}})
        entry["artifacts"][column] = {
            "status": record.status,
            "seconds": record.seconds,
            "error": record.error,
            "T": record.detail.get("T"),
        }
    return {"workspace": str(workspace.root), "videos": sorted(videos.values(), key=lambda v: v["video_id"]),
            "artifacts": artifacts}


def format_status(status: dict[str, Any]) -> str:
    """Human-readable table of ``workspace_status``."""
    videos = status["videos"]
    lines = [f"workspace: {status['workspace']}"]
    if not videos:
        lines.append("(empty: run `vad-pipeline extract VIDEOS...` or `vad-pipeline demo`)")
        return "\n".join(lines)
    columns = sorted({column for video in videos for column in video["artifacts"]})
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    header = f"{'video':<34} {'frames':>7} {'fps':>6}  " + "  ".join(f"{c:<28}" for c in columns)
    lines.append(header)
    for video in videos:
        cells = []
        for column in columns:
            artifact = video["artifacts"].get(column)
            if artifact is None:
                cells.append(f"{'-':<28}")
                continue
            counts[column][artifact["status"]] += 1
            text = artifact["status"]
            if artifact["status"] == "done" and artifact.get("T") is not None:
                text += f" T={artifact['T']}"
            if artifact.get("seconds"):
                text += f" {artifact['seconds']:.1f}s"
            cells.append(f"{text:<28}")
        frames = video.get("frames")
        fps = video.get("fps")
        lines.append(
            f"{video['video_id'][:34]:<34} {frames if frames is not None else '?':>7} "
            f"{f'{fps:.2f}' if fps else '?':>6}  " + "  ".join(cells)
        )
    for video in videos:
        for column, artifact in video["artifacts"].items():
            if artifact["status"] == "failed" and artifact.get("error"):
                lines.append(f"failed {column}: {artifact['error']}")
    runs = [a for a in status.get("artifacts", []) if a["stage"] in RUN_STAGES]
    for artifact in runs:
        upstream = ", ".join(f"{kind} {len(v) if isinstance(v, dict) else v}" + (" inputs" if isinstance(v, dict) else "")
                             for kind, v in (artifact["inputs"] or {}).items())
        name = artifact["stage"] if artifact["key"] == artifact["stage"] else f"{artifact['stage']} {artifact['key']}"
        lines.append(f"{name} {artifact['config_hash'][:12]}: {artifact['status']}"
                     + (f" <- {upstream}" if upstream else ""))
    summary = "; ".join(
        f"{column}: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        for column, states in counts.items()
    )
    lines.append(summary)
    return "\n".join(lines)

