"""Executors: the default one never imports Ray; the Ray executor on a local 2-CPU instance writes the same artifacts
(bit for bit) and the same manifest records as the in-process run; the manifest survives concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vad_pipeline.core.manifest import Manifest
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.extractors.extract import ExtractConfig, extract_videos

VOLATILE_SIDECAR_KEYS = {"seconds", "created"}


def _artifacts(folder: Path) -> dict[str, object]:
    """Every artifact of a stage folder: arrays as arrays, sidecars without their timing fields."""
    found: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".npy":
            found[path.name] = np.load(path)
        elif path.suffix == ".csv":
            found[path.name] = path.read_text()
        elif path.suffix == ".json" and path.name != "config.json":
            meta = json.loads(path.read_text())
            found[path.name] = {k: v for k, v in meta.items() if k not in VOLATILE_SIDECAR_KEYS}
    return found


def _done_records(workspace: Workspace) -> dict[tuple[str, str], tuple[str, dict]]:
    return {(r.stage, r.video_id): (r.status, r.detail) for r in workspace.manifest.artifacts()}


def test_default_executor_never_imports_ray(synthetic_dataset, tmp_path: Path) -> None:
    root, _ = synthetic_dataset
    code = (
        "import sys\n"
        "from vad_pipeline.commands.cli import main\n"
        f"code = main(['extract', {str(root / 'videos' / 'normal')!r}, '--stages', 'features', '--weights', 'random', "
        f"'--workdir', {str(tmp_path / 'work')!r}, '-q'])\n"
        "assert code == 0, code\n"
        "assert 'ray' not in sys.modules, 'the local executor imported ray'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.mark.slow
def test_ray_extract_matches_in_process(synthetic_dataset, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray executor is the optional extra vad-pipeline[ray]")
    from vad_pipeline.core.ray_executor import RayExecutor

    root, videos = synthetic_dataset
    # One torch thread in both runs: float reductions split over more threads change the last bits.
    config = ExtractConfig(weights="random", threads=1, progress=False)

    local = Workspace(tmp_path / "local")
    local_summary = extract_videos(local, [root], config)
    distributed = Workspace(tmp_path / "ray")
    ray_summary = extract_videos(distributed, [root], config,
                                 executor=RayExecutor(workers=2, cpus_per_worker=1, num_cpus=2))

    assert len(local_summary.done) == len(ray_summary.done) == len(videos)
    assert not ray_summary.failed
    assert local_summary.folder.name == ray_summary.folder.name  # same configuration hash
    local_files, ray_files = _artifacts(local_summary.folder), _artifacts(ray_summary.folder)
    assert local_files.keys() == ray_files.keys() and len(local_files) == 2 * len(videos)
    for name, value in local_files.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, ray_files[name]), name
        else:
            assert value == ray_files[name], name
    assert _done_records(local) == _done_records(distributed)
    assert all(status == "done" for status, _ in _done_records(distributed).values())

    # A re-run with the Ray executor finds everything cached and starts no cluster.
    again = extract_videos(distributed, [root], config, executor=RayExecutor(workers=2, num_cpus=2))
    assert len(again.cached) == len(videos) and not again.done


def test_ray_executor_reports_bad_videos_and_keeps_the_rest(synthetic_dataset, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray executor is the optional extra vad-pipeline[ray]")
    from vad_pipeline.core.ray_executor import RayExecutor

    root, videos = synthetic_dataset
    broken = tmp_path / "videos"
    broken.mkdir()
    (broken / "corrupt.mp4").write_bytes(b"not a video at all" * 100)
    good = videos[0].path
    (broken / good.name).write_bytes(good.read_bytes())
    workspace = Workspace(tmp_path / "work")
    summary = extract_videos(workspace, [broken], ExtractConfig(weights="random", threads=1, progress=False),
                             executor=RayExecutor(workers=1, num_cpus=2))
    assert [p.name for p in summary.done] == [good.name]
    assert len(summary.failed) == 1
    path, message = summary.failed[0]
    assert path.name == "corrupt.mp4" and "corrupt.mp4" in message and "\n" not in message
    statuses = {r.video_id.split("-")[0]: r.status for r in workspace.manifest.artifacts()}
    assert statuses == {"corrupt": "failed", good.stem.replace(".", "_"): "done"}


@pytest.mark.slow
def test_ray_scoring_matches_in_process(tmp_path: Path) -> None:
    """The scores stage runs on Ray actors like any per-video stage: the same model (trained once, in the driver),
    the same score files bit for bit, the same manifest records."""
    pytest.importorskip("ray", reason="the Ray executor is the optional extra vad-pipeline[ray]")
    import torch

    from vad_pipeline.models.score import ScoreConfig, score_videos
    from vad_pipeline.core.ray_executor import RayExecutor
    from vad_pipeline.synthetic.videos import synthetic_features, write_feature_set

    folder, labels = write_feature_set(tmp_path / "data", synthetic_features(n_normal=6, n_anomalous=6, seed=2))
    config = ScoreConfig(features=folder, labels=labels, epochs=2, progress=False)
    torch.set_num_threads(1)  # as each 1-CPU actor: reductions over more threads change the last bits
    local = score_videos(Workspace(tmp_path / "local"), config)
    distributed = score_videos(Workspace(tmp_path / "ray"), config,
                               executor=RayExecutor(workers=2, cpus_per_worker=1, num_cpus=2))
    assert local.scored == distributed.scored == 12 and not distributed.failed
    assert local.folder.name == distributed.folder.name
    local_files, ray_files = _artifacts(local.folder), _artifacts(distributed.folder)
    assert local_files.keys() == ray_files.keys() and len(local_files) >= 2 * 12
    for name, value in local_files.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, ray_files[name]), name
        elif name not in ("train.json", "summary.json"):
            assert value == ray_files[name], name
    records = {k: v for k, v in _done_records(Workspace(tmp_path / "ray")).items() if k[0] == "scores"}
    assert len(records) == 12 and records == {k: v for k, v in _done_records(Workspace(tmp_path / "local")).items()
                                              if k[0] == "scores"}


@pytest.mark.slow
def test_ray_ssmtl_scoring_matches_in_process(tmp_path: Path) -> None:
    """SSMTL's scores stage runs on Ray actors too: the same bundle, the same frame scores and object tables."""
    pytest.importorskip("ray", reason="the Ray executor is the optional extra vad-pipeline[ray]")
    import torch

    from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig, score_ssmtl
    from vad_pipeline.core.ray_executor import RayExecutor
    from vad_pipeline.synthetic.objects import generate_object_dataset

    generate_object_dataset(tmp_path / "data", train=2, test_per_anomaly=1, frames=24, seed=0)
    config = SSMTLConfig(tracks=tmp_path / "data" / "tracks", labels=tmp_path / "data" / "labels.csv",
                         objects=ObjectConfig(size=32), tasks=("mbp", "knn"), epochs=1, device="cpu",
                         progress=False)
    torch.set_num_threads(1)  # as each 1-CPU actor
    local = score_ssmtl(Workspace(tmp_path / "local"), config)
    distributed = score_ssmtl(Workspace(tmp_path / "ray"), config,
                              executor=RayExecutor(workers=2, cpus_per_worker=1, num_cpus=2))
    assert local.folder.name == distributed.folder.name and not distributed.failed
    local_files, ray_files = _artifacts(local.folder), _artifacts(distributed.folder)
    assert local_files.keys() == ray_files.keys()
    assert sum(name.endswith(".objects.csv") for name in local_files) == 3
    for name, value in local_files.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, ray_files[name]), name
        elif name not in ("train.json", "summary.json"):
            assert value == ray_files[name], name


def _write_rows(path: str, writer: int, rows: int) -> None:
    manifest = Manifest(Path(path))
    for index in range(rows):
        video = f"w{writer}-v{index}"
        manifest.mark_running("features", video, "h", {"k": 1})
        manifest.mark_done("features", video, "h", {"k": 1}, Path(f"/x/{video}.npy"), 0.1, {}, {"T": index})
        manifest.record_video(video, Path(f"/v/{video}.mp4"), "0" * 64, 1, frames=index)
    manifest.close()


def test_manifest_is_consistent_under_concurrent_writer_processes(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    Manifest(path).close()
    writers, rows = 4, 50
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_rows, args=(str(path), w, rows)) for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    manifest = Manifest(path)
    records = list(manifest.artifacts("features"))
    assert len(records) == writers * rows
    assert all(r.status == "done" and r.detail["T"] == int(r.video_id.split("-v")[1]) for r in records)
    assert len(manifest.videos()) == writers * rows


def _open_at_once(path: str, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    manifest = Manifest(Path(path))
    manifest.mark_running("features", "v", "h", {"k": 1})
    manifest.close()


def test_processes_opening_a_new_workspace_at_once_all_succeed(tmp_path: Path) -> None:
    """Creating the manifest (WAL switch, tables) races when several processes start on a fresh workdir; SQLite
    answers that race with "database is locked" at once (6 of 120 processes here before the fix)."""
    context = multiprocessing.get_context("fork")
    for trial in range(6):
        barrier = context.Barrier(6)
        path = str(tmp_path / f"w{trial}" / "manifest.sqlite")
        processes = [context.Process(target=_open_at_once, args=(path, barrier)) for _ in range(6)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [p.exitcode for p in processes] == [0] * 6, f"trial {trial}"
