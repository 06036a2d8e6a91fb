"""Several processes on one workspace: they finish, compute each artifact once and agree byte for byte; sweeping
never removes a live process's temporary file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vad_pipeline.io.atomic import TMP_PREFIX, atomic_path, remove_stale_temporaries

DONE = re.compile(r"features: (\d+) done, (\d+) already cached, (\d+) failed")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vad_pipeline", *args]


def _start_together(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Start every command at once; wait for all of them."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for c in commands]
    results = []
    for command, process in zip(commands, processes):
        out, err = process.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


def _artifacts(workdir: Path, stage: str) -> dict[str, bytes]:
    """Every artifact file of a stage, by path relative to its stage folder."""
    files = {}
    for path in sorted((workdir / stage).rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(workdir).parts):
            files[str(path.relative_to(workdir))] = path.read_bytes()
    return files


def test_sweep_spares_live_temporaries_and_removes_dead_ones(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    import socket

    dead = tmp_path / f"{TMP_PREFIX}{dead_pid}@{socket.gethostname()}~abc123-video.npy"
    other_host = tmp_path / f"{TMP_PREFIX}1@another-host~abc123-video.npy"
    legacy_old, legacy_new = tmp_path / f"{TMP_PREFIX}abc123-old.npy", tmp_path / f"{TMP_PREFIX}abc123-new.npy"
    for path in (dead, other_host, legacy_old, legacy_new):
        path.write_bytes(b"partial")
    an_hour_ago = time.time() - 2 * 3600
    os.utime(legacy_old, (an_hour_ago, an_hour_ago))
    with atomic_path(tmp_path / "live.npy") as live:
        live.write_bytes(b"in progress")
        assert remove_stale_temporaries(tmp_path) == 2
        assert live.exists(), "the sweep removed a file this (running) process is writing"
        assert not dead.exists() and not legacy_old.exists()
        assert other_host.exists() and legacy_new.exists()  # another machine's, or too recent to tell
    assert (tmp_path / "live.npy").read_bytes() == b"in progress"


@pytest.fixture(scope="module")
def videos_and_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """4 generated videos and the features one `extract` process writes for them alone."""
    from vad_pipeline.synthetic.videos import generate_dataset

    root = tmp_path_factory.mktemp("concurrency")
    generate_dataset(root / "data", per_class=2, frames=40, seed=11)
    folder = root / "data" / "videos"
    reference = _start_together([_cli(*EXTRACT, str(folder), "--workdir", str(root / "alone"))])[0]
    assert reference.returncode == 0, reference.stderr[-2000:]
    return folder, root / "alone", len(list(folder.rglob("*.mp4")))


EXTRACT = ("extract", "--weights", "random", "--stages", "features")


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_extracts_compute_each_artifact_once(tmp_path: Path, videos_and_reference,
                                                        processes: int) -> None:
    folder, alone, videos = videos_and_reference
    shared = tmp_path / "shared"
    runs = _start_together([_cli(*EXTRACT, str(folder), "--workdir", str(shared)) for _ in range(processes)])
    assert [r.returncode for r in runs] == [0] * processes, "\n".join(r.stderr[-1500:] for r in runs)
    counts = [DONE.search(r.stderr) for r in runs]
    assert all(counts), "every run reports what it did"
    done = [int(c.group(1)) for c in counts if c]
    reused = [int(c.group(2)) for c in counts if c]
    assert sum(done) == videos, f"each video computed once: {done} done, {reused} reused, {videos} videos"
    assert all(d + r == videos for d, r in zip(done, reused))

    single, together = _artifacts(alone, "features"), _artifacts(shared, "features")
    assert sorted(single) == sorted(together) and len(single) >= 2 * videos
    differing = [name for name in single if name.endswith(".npy") and single[name] != together[name]]
    assert not differing, f"features differ from a single run's: {differing}"
    assert not list(shared.rglob(TMP_PREFIX + "*")), "temporary files left behind"

    status = subprocess.run(_cli("status", "--workdir", str(shared), "--json"), capture_output=True, text=True)
    assert status.returncode == 0, status.stderr


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_scoring_trains_once(tmp_path: Path, videos_and_reference, processes: int) -> None:
    """``processes`` ``score`` runs at once on one workdir: all exit 0, the model is trained once, and the scores
    equal those of one ``score`` run alone."""
    import shutil

    import numpy as np
    import torch

    from vad_pipeline.models.bundle import load_bundle

    folder, alone, videos = videos_and_reference
    score = ["score", "--method", "mil", "--labels", str(folder.parent / "labels.csv"), "--epochs", "5"]
    solo, workdir = tmp_path / "solo", tmp_path / "work"
    shutil.copytree(alone, solo)  # the features, extracted once
    shutil.copytree(alone, workdir)
    assert _start_together([_cli(*score, "--workdir", str(solo))])[0].returncode == 0
    runs = _start_together([_cli(*score, "--workdir", str(workdir)) for _ in range(processes)])
    assert [r.returncode for r in runs] == [0] * processes, "\n".join(r.stderr[-1500:] for r in runs)
    trained = sum("train: mil on" in r.stderr for r in runs)
    assert trained == 1, f"the model was trained {trained} times"
    runs_written = list((workdir / "scores").glob("mil-*"))
    assert len(runs_written) == 1 and len(list(runs_written[0].glob("*.npy"))) == videos
    (expected,) = list((solo / "scores").glob("mil-*"))
    assert expected.name == runs_written[0].name
    for path in expected.glob("*.npy"):
        assert np.array_equal(np.load(path), np.load(runs_written[0] / path.name)), path.name
    (bundle,) = list((workdir / "models").glob("mil-*.pt"))
    (solo_bundle,) = list((solo / "models").glob("mil-*.pt"))
    assert bundle.name == solo_bundle.name
    for name, weights in load_bundle(solo_bundle).state_dict.items():
        assert torch.equal(weights, load_bundle(bundle).state_dict[name]), name


@pytest.mark.slow
def test_concurrent_ssmtl_scoring_cuts_and_trains_once(tmp_path: Path) -> None:
    """Three ``score --method ssmtl`` runs at once on one workdir: all exit 0, the objects of each video are cut
    once, the model is trained once, and every file equals a single run's."""
    from vad_pipeline.synthetic.objects import generate_object_dataset

    data = tmp_path / "data"
    generate_object_dataset(data, train=2, test_per_anomaly=1, frames=24, seed=0)
    score = ["score", "--method", "ssmtl", "--tracks", str(data / "tracks"), "--labels", str(data / "labels.csv"),
             "--crop-size", "32", "--epochs", "1", "--tasks", "mbp,knn", "--device", "cpu"]
    solo, workdir = tmp_path / "solo", tmp_path / "work"
    alone = _start_together([_cli(*score, "--workdir", str(solo))])[0]
    assert alone.returncode == 0, alone.stderr[-1500:]
    runs = _start_together([_cli(*score, "--workdir", str(workdir)) for _ in range(3)])
    assert [r.returncode for r in runs] == [0, 0, 0], "\n".join(r.stderr[-1500:] for r in runs)
    trained = sum("ssmtl: trained on" in r.stderr for r in runs)
    assert trained == 1, f"the model was trained {trained} times"
    cut = [int(done) for r in runs for done in re.findall(r"objects: (\d+) done, \d+ already cached", r.stderr)]
    videos = len(list((data / "tracks").glob("*.csv")))
    # training videos are cut in the training step, test videos after it: every video once in all
    assert sum(cut) == videos and len(cut) == 2 * 3, [r.stderr[-800:] for r in runs]
    for stage in ("objects", "scores", "models"):
        single, together = _artifacts(solo, stage), _artifacts(workdir, stage)
        assert sorted(single) == sorted(together), stage
        if stage != "models":  # a bundle holds its training time
            differing = [n for n in single if not n.endswith(".json") and single[n] != together[n]]
            assert not differing, differing
    assert not list(workdir.rglob(TMP_PREFIX + "*")), "temporary files left behind"
