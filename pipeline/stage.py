"""Stages and the runner that applies a stage to many videos with caching, resumption and per-video errors.

A stage turns one video (plus cached inputs) into artifacts in its folder. The runner:

- keys every artifact by (stage, video content hash, config hash), so a re-run skips finished work, ``force``
  redoes it and a changed configuration writes new artifacts beside the old ones;
- loads models only when there is work to do (a fully cached re-run does no model work);
- records status, timings and library versions in the manifest;
- turns bad inputs into one error line per video and carries on with the others;
- never leaves a half-written artifact: stages write atomically, stale temporaries are swept at start.
"""

from __future__ import annotations

import abc
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from .atomic import remove_stale_temporaries, save_json_atomic
from .errors import CacheError, UserError
from .hashing import config_hash
from .versions import library_versions
from .workspace import VideoRef, Workspace

log = logging.getLogger(__name__)


class Stage(abc.ABC):
    """One per-video step of the pipeline. Subclasses say what determines their output and how to make it."""

    #: folder name under the workdir, and the manifest's stage column
    name: str

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that determines the artifact's content (hashed into the cache key)."""

    def tag(self, digest: str) -> str:
        """Folder name for this configuration; override to prefix a human-readable name."""
        return digest

    def prepare(self) -> None:
        """Load models once, before the first video that needs work. Raise UserError to abort the run."""

    @abc.abstractmethod
    def outputs(self, video: VideoRef, folder: Path) -> list[Path]:
        """The files that exist once ``video`` is done (the last one is written last)."""

    @abc.abstractmethod
    def run(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        """Make the artifacts of ``video`` in ``folder`` (atomically); return a JSON-able summary."""

    def verify(self, video: VideoRef, folder: Path) -> dict[str, Any]:
        """Cheaply check a finished artifact; raise CacheError if it is unreadable. Returns its summary."""
        return {}


@dataclass
class RunSummary:
    """What a run did, per video path."""

    done: list[Path] = field(default_factory=list)
    cached: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    folder: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def stage_folder(workspace: Workspace, stage: Stage) -> tuple[str, Path, dict[str, Any]]:
    """The config hash, artifact folder and config of ``stage`` in ``workspace``."""
    config = stage.config()
    digest = config_hash(config)
    return digest, workspace.stage_folder(stage.name, stage.tag(digest)), config


def cached_detail(stage: Stage, video: VideoRef, folder: Path) -> dict[str, Any] | None:
    """The summary of a finished, readable artifact of ``video``, or None when it must be (re)computed."""
    if not all(path.is_file() for path in stage.outputs(video, folder)):
        return None
    try:
        return stage.verify(video, folder)
    except CacheError as exc:
        log.warning("%s; recomputing it", exc)
        return None


def run_stage(
    workspace: Workspace,
    stage: Stage,
    videos: Sequence[Path],
    force: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Apply ``stage`` to every video, reusing cached artifacts; see the module docstring."""
    digest, folder, config = stage_folder(workspace, stage)
    folder.mkdir(parents=True, exist_ok=True)
    swept = remove_stale_temporaries(folder)
    if swept:
        log.info("%s: removed %d partial file(s) left by an interrupted run", folder, swept)
    if not (folder / "config.json").is_file():
        save_json_atomic(folder / "config.json", {"stage": stage.name, "config_hash": digest, "config": config})
    manifest = workspace.manifest
    summary = RunSummary(folder=folder)

    pending: list[VideoRef] = []
    for path in videos:
        try:
            video = workspace.video_ref(path)
        except OSError as exc:
            message = f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions"
            log.error("%s", message)
            summary.failed.append((Path(path), message))
            continue
        detail = None if force else cached_detail(stage, video, folder)
        if detail is not None:
            summary.cached.append(video.path)
            record = manifest.artifact(stage.name, video.video_id, digest)
            if record is None or record.status != "done":  # finished on disk but killed before the manifest knew
                manifest.mark_done(stage.name, video.video_id, digest, config, stage.outputs(video, folder)[0],
                                   None, library_versions(), detail)
            continue
        pending.append(video)

    if summary.cached:
        log.info("%s: %d video(s) already done in %s", stage.name, len(summary.cached), folder)
    if not pending:
        return summary

    stage.prepare()
    bar = tqdm(pending, desc=f"{stage.name}", unit="video", disable=not progress, dynamic_ncols=True)
    for video in bar:
        bar.set_postfix_str(video.path.name[-40:])
        manifest.mark_running(stage.name, video.video_id, digest, config)
        started = time.perf_counter()
        try:
            detail = stage.run(video, folder)
        except UserError as exc:
            message = str(exc)
        except (KeyboardInterrupt, SystemExit):
            manifest.mark_failed(stage.name, video.video_id, digest, config, "interrupted")
            raise
        except Exception as exc:  # an unexpected failure of one video must not lose the others
            message = f"{video.path}: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)"
            log.debug("traceback for %s:\n%s", video.path, traceback.format_exc())
        else:
            seconds = time.perf_counter() - started
            manifest.mark_done(stage.name, video.video_id, digest, config, stage.outputs(video, folder)[0],
                               seconds, library_versions(), detail)
            meta = {key: detail.get(key) for key in ("fps", "frames", "width", "height")}
            manifest.record_video(video.video_id, video.path, video.sha256, video.size, **meta)
            summary.done.append(video.path)
            continue
        log.error("%s", message)
        manifest.mark_failed(stage.name, video.video_id, digest, config, message)
        summary.failed.append((video.path, message))
    return summary
