"""Stages and the runner that applies a stage to many videos with caching, resumption and per-video errors.

A stage turns one video (plus cached inputs) into artifacts in its folder. The runner:

- keys every artifact by (stage, video content hash, config hash), so a re-run skips finished work, ``force``
  redoes it and a changed configuration writes new artifacts beside the old ones;
- loads models only when there is work to do (a fully cached re-run does no model work);
- records status, timings and library versions in the manifest;
- turns bad inputs into one error line per video and carries on with the others;
- never leaves a half-written artifact: stages write atomically, stale temporaries (of processes no longer
  running) are swept at start;
- lets any number of processes share one workspace: each artifact is computed under a per-artifact lock
  (``<stage folder>/.locks/<video id>.lock``), and a process that finds the artifact finished by another while
  it waited reuses it instead of computing it again.

Where the pending videos run is the executor's business: ``LocalExecutor`` (default) runs them here, one after
another; ``vad_pipeline.core.ray_executor.RayExecutor`` runs them on Ray actors. Either way workers only write artifact
files (atomic renames into the shared workspace) and report a ``VideoOutcome``; the manifest is written by the
driver process alone, so it stays consistent however many workers there are and whatever filesystem holds it.
"""

from __future__ import annotations

import abc
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from tqdm.auto import tqdm

from ..io.atomic import artifact_lock, prepare_folder, save_json_atomic
from ..errors import CacheError, UserError, disk_full, disk_full_error
from .hashing import config_hash
from .workspace import VideoRef, Workspace

log = logging.getLogger(__name__)


class Stage(abc.ABC):
    """One per-video step of the pipeline. Subclasses say what determines their output and how to make it."""

    #: folder name under the workdir, and the manifest's stage column
    name: str
    #: whether the stage's summaries describe the video itself (fps, frames, size: recorded in the manifest's videos)
    describes_videos: bool = True

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

    def inputs(self, video: VideoRef) -> dict[str, Any]:
        """The keys of what the artifact of ``video`` is computed from (its lineage in the manifest)."""
        return {"video": video.sha256}

    def upcoming(self, videos: Sequence[VideoRef]) -> None:
        """The videos this process runs next, in order (empty: none): a stage may start reading them while the
        current one computes, and must let go of any it started that are no longer listed."""

    def on_worker(self) -> None:
        """Called in a worker process (another machine, perhaps) before ``prepare``: re-resolve what depends on
        the machine (the device) without changing the configuration the driver hashed. The worker has already set
        its torch thread count."""


@dataclass
class RunSummary:
    """What a run did, per video path."""

    done: list[Path] = field(default_factory=list)
    cached: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    folder: Path | None = None
    skipped: list[str] = field(default_factory=list)  # stages left out, one line each (e.g. missing weights)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


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


@dataclass
class StagePlan:
    """What a run of one stage has to do: its artifact folder and the videos not yet done there."""

    stage_name: str
    digest: str
    folder: Path
    config: dict[str, Any]
    pending: list[VideoRef]
    summary: RunSummary
    force: bool = False


@dataclass
class VideoOutcome:
    """The result of one video, as a worker reports it back: ``detail`` when done, ``error`` when failed."""

    video: VideoRef
    detail: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    output: Path | None = None
    computed: bool = True  # False: another process finished the artifact while this one waited for it


def plan_stage(workspace: Workspace, stage: Stage, videos: Sequence[Path | VideoRef], force: bool = False,
               frame_rate: float | None = None) -> StagePlan:
    """Create the stage's folder, index what is already cached (recording it in the manifest if a killed run
    finished it unrecorded) and list the videos that still need work. ``videos``: files or folders of frames (at
    ``frame_rate``, default 25), or references already made (e.g. the features standing in for a video the scores
    stage reads, a dataset's named clips). A video that cannot be identified (unreadable, an empty or mixed frame
    folder) fails alone."""
    digest, folder, config = stage_folder(workspace, stage)
    prepare_folder(folder)
    if not (folder / "config.json").is_file():
        save_json_atomic(folder / "config.json", {"stage": stage.name, "config_hash": digest, "config": config})
    manifest = workspace.manifest
    plan = StagePlan(stage.name, digest, folder, config, [], RunSummary(folder=folder), force)
    for path in videos:
        try:
            video = path if isinstance(path, VideoRef) else workspace.video_ref(path, fps=frame_rate)
        except (OSError, UserError) as exc:
            message = str(exc) if isinstance(exc, UserError) else \
                f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions"
            log.error("%s", message)
            plan.summary.failed.append((Path(path), message))
            continue
        detail = None if force else cached_detail(stage, video, folder)
        if detail is not None:
            plan.summary.cached.append(video.path)
            record = manifest.artifact(stage.name, video.video_id, digest)
            if record is None or record.status != "done":  # finished on disk but killed before the manifest knew
                manifest.record_lineage(stage.name, video.video_id, digest, config, stage.outputs(video, folder)[0],
                                        stage.inputs(video), detail=detail)
            continue
        plan.pending.append(video)
    if plan.summary.cached:
        log.info("%s: %d video(s) already done in %s", stage.name, len(plan.summary.cached), folder)
    return plan


def run_video(stage: Stage, video: VideoRef, folder: Path, force: bool = False) -> VideoOutcome:
    """Run ``stage`` on one video under its artifact lock, turning a bad input into an error line (the same
    in-process and on a worker). Unless ``force``, an artifact another process finished meanwhile is reused."""
    started = time.perf_counter()
    try:
        with artifact_lock(folder, video.video_id):
            detail = None if force else cached_detail(stage, video, folder)
            if detail is not None:
                return VideoOutcome(video, detail=detail, output=stage.outputs(video, folder)[0], computed=False)
            before = _file_states(stage.outputs(video, folder))
            try:
                detail = stage.run(video, folder)
            except BaseException:
                _remove_written(stage.outputs(video, folder), before)
                raise
    except UserError as exc:
        return VideoOutcome(video, error=str(exc))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # an unexpected failure of one video must not lose the others
        if disk_full(exc):  # every other video would fail the same way: stop the run with one line
            raise disk_full_error(folder) from None
        log.debug("traceback for %s:\n%s", video.path, traceback.format_exc())
        return VideoOutcome(
            video, error=f"{video.path}: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)"
        )
    return VideoOutcome(video, detail=detail, seconds=time.perf_counter() - started,
                        output=stage.outputs(video, folder)[0])


def _file_states(paths: list[Path]) -> dict[Path, tuple[int, int] | None]:
    """(mtime, size) of each path, None where it does not exist."""
    states: dict[Path, tuple[int, int] | None] = {}
    for path in paths:
        try:
            info = path.stat()
            states[path] = (info.st_mtime_ns, info.st_size)
        except OSError:
            states[path] = None
    return states


def _remove_written(paths: list[Path], before: dict[Path, tuple[int, int] | None]) -> None:
    """Remove the outputs a failed stage run renamed into place before failing (e.g. the features without their
    sidecar): an artifact is all its files or none. Files the run did not touch (an earlier artifact, under
    ``--force``) stay."""
    for path, state in _file_states(paths).items():
        if state is not None and state != before.get(path):
            try:
                path.unlink()
            except OSError:
                pass


def record_outcome(workspace: Workspace, stage: Stage, plan: StagePlan, outcome: VideoOutcome) -> None:
    """Write one video's outcome into the manifest and the run summary (only the driver process does this)."""
    manifest, video = workspace.manifest, outcome.video
    if outcome.detail is None:
        message = outcome.error or f"{video.path}: failed without a message"
        log.error("%s", message)
        manifest.mark_failed(plan.stage_name, video.video_id, plan.digest, plan.config, message)
        plan.summary.failed.append((video.path, message))
        return
    manifest.record_lineage(plan.stage_name, video.video_id, plan.digest, plan.config, outcome.output,
                            stage.inputs(video), outcome.seconds, outcome.detail)
    if stage.describes_videos:
        meta = {key: outcome.detail.get(key) for key in ("fps", "frames", "width", "height")}
        manifest.record_video(video.video_id, video.path, video.sha256, video.size, **meta)
    (plan.summary.done if outcome.computed else plan.summary.cached).append(video.path)


class Executor(Protocol):
    """Where the pending videos of a stage run. ``execute`` calls ``record_outcome`` for every pending video."""

    def execute(self, workspace: Workspace, stage: Stage, plan: StagePlan, progress: bool) -> None: ...


class LocalExecutor:
    """In this process, one video after another, the model loaded once (the default)."""

    def execute(self, workspace: Workspace, stage: Stage, plan: StagePlan, progress: bool) -> None:
        stage.prepare()
        bar = tqdm(plan.pending, desc=f"{stage.name}", unit="video", disable=not progress, dynamic_ncols=True)
        try:
            for index, video in enumerate(bar):
                bar.set_postfix_str(video.path.name[-40:])
                stage.upcoming(plan.pending[index + 1 :])
                workspace.manifest.mark_running(plan.stage_name, video.video_id, plan.digest, plan.config)
                try:
                    outcome = run_video(stage, video, plan.folder, plan.force)
                except BaseException as exc:  # interrupted, or a fault that stops the run (a full disk)
                    reason = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else str(exc)
                    workspace.manifest.mark_failed(plan.stage_name, video.video_id, plan.digest, plan.config, reason)
                    raise
                record_outcome(workspace, stage, plan, outcome)
        finally:
            stage.upcoming([])


def run_stage(
    workspace: Workspace,
    stage: Stage,
    videos: Sequence[Path | VideoRef],
    force: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
    frame_rate: float | None = None,
) -> RunSummary:
    """Apply ``stage`` to every video, reusing cached artifacts; see the module docstring. ``executor`` decides
    where the work runs (default: this process); ``frame_rate``: that of frame folders given as paths."""
    plan = plan_stage(workspace, stage, videos, force, frame_rate)
    if plan.pending:
        (executor or LocalExecutor()).execute(workspace, stage, plan, progress)
    return plan.summary
