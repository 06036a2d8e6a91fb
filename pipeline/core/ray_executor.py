"""Run a stage's per-video work on a Ray cluster (``vad-pipeline extract --executor ray``; extra
``vad-pipeline[ray]``).

Each worker is a long-lived Ray actor that receives the driver's (unprepared) stage once, loads its model once and
then processes one video per call, writing the artifacts into the same workspace folder (a path every node sees:
a shared filesystem). One actor per GPU when the cluster has GPUs, else one per ``cpus_per_worker`` CPUs. Every
actor keeps two calls queued so that it never waits for the driver between videos.

Workers never touch the manifest: each call returns a ``VideoOutcome`` and the driver records it, updates the
progress bar and logs failures as they arrive. An actor that dies fails its in-flight videos (one error line each)
and the others carry on. This module is imported only when the Ray executor is asked for.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ..errors import UserError, check_at_least_one
from .stage import Stage, StagePlan, VideoOutcome, record_outcome, run_video
from .workspace import VideoRef, Workspace

log = logging.getLogger(__name__)

CALLS_PER_ACTOR = 2  # one running, one queued behind it
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'vad-pipeline[ray]' (or pip install ray)") from None
    return ray


class _StageWorker:
    """The actor body: one prepared stage, one video per ``run`` call."""

    def __init__(self, stage: Stage, threads: int):
        import torch

        torch.set_num_threads(threads)  # the CPUs Ray reserved for this actor
        stage.on_worker()
        stage.prepare()
        self.stage = stage

    def run(self, video: VideoRef, folder: str, force: bool = False) -> VideoOutcome:
        from pathlib import Path

        return run_video(self.stage, video, Path(folder), force)

    def host(self) -> str:
        import socket

        return socket.gethostname()


@dataclass
class RayExecutor:
    """Per-video work as Ray actor calls. ``address`` None starts a local Ray instance (``num_cpus`` CPUs, default
    all) for the duration of the run; ``"auto"`` or ``ray://host:port`` joins a running cluster.

    ``workers``: number of actors (default: one per GPU, else cluster CPUs // ``cpus_per_worker``).
    ``cpus_per_worker``: CPUs reserved by each actor, also its torch thread count."""

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: int = 1
    num_cpus: int | None = None
    #: filled by each run: ``connect_seconds`` (reaching or starting Ray), ``startup_seconds`` (actors created and
    #: models loaded), ``work_seconds`` (first call to last result), ``actors``, ``hosts``
    timings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_at_least_one("--workers", self.workers)
        check_at_least_one("--cpus-per-worker", self.cpus_per_worker)

    def _connect(self) -> tuple[Any, bool]:
        ray = _import_ray()
        if ray.is_initialized():
            return ray, False
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "logging_level": logging.WARNING}
        if self.address is None:
            # Only small objects travel through Ray (the stage, video references, outcomes): frames and features
            # go through the shared workspace. A small object store keeps a local instance light on /dev/shm.
            options.update(num_cpus=self.num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        try:
            ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local instance"
            raise UserError(f"--executor ray: cannot start or reach Ray at {where} ({exc}); check --address") from None
        return ray, True

    def _actor_count(self, ray: Any, pending: int) -> tuple[int, float]:
        """(actors, GPUs per actor) for this cluster and this many videos."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        if self.workers is not None:
            count = self.workers
        elif gpus:
            count = gpus
        else:
            count = max(1, cpus // self.cpus_per_worker)
        return max(1, min(count, pending)), (1.0 if gpus else 0.0)

    def execute(self, workspace: Workspace, stage: Stage, plan: StagePlan, progress: bool) -> None:
        started = time.perf_counter()
        ray, started_here = self._connect()
        self.timings = {"connect_seconds": time.perf_counter() - started}
        try:
            self._execute(ray, workspace, stage, plan, progress)
        finally:
            if started_here:
                ray.shutdown()

    def _execute(self, ray: Any, workspace: Workspace, stage: Stage, plan: StagePlan, progress: bool) -> None:
        count, gpus = self._actor_count(ray, len(plan.pending))
        actor_class = ray.remote(_StageWorker).options(num_cpus=self.cpus_per_worker, num_gpus=gpus,
                                                       max_concurrency=1)
        stage_ref = ray.put(stage)
        started = time.perf_counter()
        actors = [actor_class.remote(stage_ref, self.cpus_per_worker) for _ in range(count)]
        actors, hosts, reason = _started_actors(ray, actors)
        self.timings.update(startup_seconds=time.perf_counter() - started, actors=len(actors), hosts=hosts)
        if not actors:
            for video in plan.pending:
                record_outcome(workspace, stage, plan, VideoOutcome(
                    video, error=f"{video.path}: not processed: no Ray worker could start ({reason})"))
            return
        log.info("%s: %d video(s) on %d Ray actor(s) (%d CPU(s)%s each) on %s", stage.name, len(plan.pending),
                 len(actors), self.cpus_per_worker, ", 1 GPU" if gpus else "", ", ".join(sorted(set(hosts))))
        started = time.perf_counter()
        queue = deque(plan.pending)
        in_flight: dict[Any, tuple[Any, VideoRef]] = {}
        folder = str(plan.folder)

        def submit(actor: Any) -> None:
            video = queue.popleft()
            workspace.manifest.mark_running(plan.stage_name, video.video_id, plan.digest, plan.config)
            in_flight[actor.run.remote(video, folder, plan.force)] = (actor, video)

        for actor in actors:
            for _ in range(CALLS_PER_ACTOR):
                if queue:
                    submit(actor)
        bar = tqdm(total=len(plan.pending), desc=f"{stage.name} (ray)", unit="video", disable=not progress,
                   dynamic_ncols=True)
        dead: set[Any] = set()
        try:
            with bar:
                while in_flight:
                    ready, _ = ray.wait(list(in_flight), num_returns=1)
                    actor, video = in_flight.pop(ready[0])
                    try:
                        outcome = ray.get(ready[0])
                    except ray.exceptions.RayError as exc:  # the actor died (or could not start: missing weights)
                        dead.add(actor)
                        outcome = VideoOutcome(video, error=f"{video.path}: Ray worker failed ({_reason(exc)})")
                    record_outcome(workspace, stage, plan, outcome)
                    bar.set_postfix_str(video.path.name[-40:])
                    bar.update(1)
                    if queue:
                        alive = [a for a in actors if a not in dead]
                        if not alive:
                            while queue:
                                lost = queue.popleft()
                                record_outcome(workspace, stage, plan, VideoOutcome(
                                    lost, error=f"{lost.path}: not processed: every Ray worker failed"))
                                bar.update(1)
                            continue
                        submit(actor if actor not in dead else alive[0])
        except KeyboardInterrupt:
            for video in [v for _, v in in_flight.values()] + list(queue):
                workspace.manifest.mark_failed(plan.stage_name, video.video_id, plan.digest, plan.config,
                                               "interrupted")
            raise
        finally:
            self.timings["work_seconds"] = time.perf_counter() - started
            for actor in actors:
                ray.kill(actor)


def _reason(exc: BaseException) -> str:
    """The last line of a Ray error (the worker's own exception), short."""
    text = str(exc).strip()
    return text.splitlines()[-1][:300] if text else type(exc).__name__


def _started_actors(ray: Any, actors: list[Any]) -> tuple[list[Any], list[str], str]:
    """Wait until every actor has loaded its model; returns the live ones, their hosts and why others failed."""
    alive, hosts, reason = [], [], ""
    for actor in actors:
        try:
            hosts.append(ray.get(actor.host.remote()))
            alive.append(actor)
        except ray.exceptions.RayError as exc:
            reason = _reason(exc)
            log.error("a Ray worker failed to start: %s", reason)
    return alive, hosts, reason
