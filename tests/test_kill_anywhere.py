"""SIGKILL at random points of every stage (features, tracks, weak training and scoring, SSMTL objects, training and
scoring, the report), each followed by a re-run, then corrupt files in every stage, then a re-run: the finished
workspace equals an uninterrupted run's byte for byte (timings and creation times aside; ``.npz`` archives by their arrays, since zip members carry a write time).

One round kills each of the five commands once, at a random moment of its measured duration, then re-runs it;
``VAD_FAULT_ROUNDS`` rounds (default 4: 20 kill points; 1 for a quicker check), two at a time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from vad_pipeline.synthetic.objects import generate_object_dataset

VOLATILE = {"seconds", "created", "objects_per_second", "started", "finished"}  # timings, not results
COMPARED = ("features", "tracks", "models", "scores", "objects", "report")


def _commands(data: Path) -> list[tuple[str, list[str]]]:
    videos, labels = str(data / "videos"), str(data / "labels.csv")
    # weak supervision trains on anomalous videos too: the backward walker joins the training split
    weak_labels = data / "weak_labels.csv"
    weak_labels.write_text(labels_text := Path(labels).read_text().replace("anomaly,test\n", "anomaly,train\n", 1))
    assert "anomaly,train" in labels_text
    return [
        ("features", ["extract", "--stages", "features", videos, "--weights", "random", "--batch-size", "1"]),
        ("tracks", ["extract", "--stages", "tracks", videos, "--objects", "motion"]),
        ("mil", ["score", "--method", "mil", "--labels", str(weak_labels), "--epochs", "10"]),
        ("ssmtl", ["score", "--method", "ssmtl", "--labels", labels, "--crop-size", "32", "--epochs", "1",
                   "--tasks", "mi,mbp,knn"]),
        ("report", ["report", "--gt", str(data / "ground_truth.csv"), "--gt", str(data / "masks.npz")]),
    ]


def _run(args: list[str], workdir: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vad_pipeline", *args, "--workdir", str(workdir), "-q"], check=True,
                   env=_ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _kill_during(args: list[str], workdir: Path, delay: float) -> bool:
    """Start the command, SIGKILL its process group after ``delay`` s; whether it was still running then."""
    process = subprocess.Popen([sys.executable, "-m", "vad_pipeline", *args, "--workdir", str(workdir), "-q"],
                               env=_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _without_volatile(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def _snapshot(workdir: Path) -> dict[str, object]:
    """Every result file of the workspace: bytes, or JSON without timings; paths relative to the workdir (and the
    workdir's own path in file contents replaced, so two workdirs compare)."""
    files: dict[str, object] = {}
    for part in COMPARED:
        for path in sorted((workdir / part).rglob("*")):
            if not path.is_file() or path.name.startswith(".") or ".locks" in path.parts or path.suffix == ".html":
                continue
            relative = str(path.relative_to(workdir))
            if path.suffix == ".json":
                text = path.read_text().replace(str(workdir), "<workdir>")
                files[relative] = _without_volatile(json.loads(text))
            elif part == "models":  # a bundle: its metadata carries the training time
                from vad_pipeline.models.bundle import load_bundle

                bundle = load_bundle(path)
                files[relative] = {"meta": _without_volatile(bundle.meta()),
                                   "weights": {k: v.numpy().tobytes() for k, v in bundle.state_dict.items()}}
            elif path.suffix == ".npz":  # a zip: its members carry their write time, so compare the arrays
                with np.load(path) as arrays:
                    files[relative] = {key: arrays[key].tobytes() for key in arrays.files}
            else:
                files[relative] = path.read_bytes().replace(str(workdir).encode(), b"<workdir>")
    return files


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, dict[str, float], dict[str, object]]:
    """Generated object videos, the five commands, their uninterrupted run times and the finished workspace."""
    root = tmp_path_factory.mktemp("faults")
    generate_object_dataset(root / "data", train=3, test_per_anomaly=1, frames=32, seed=0)
    commands = _commands(root / "data")
    durations = {name: _run(args, root / "reference") for name, args in commands}
    expected = _snapshot(root / "reference")
    assert {k.split("/")[0] for k in expected} == set(COMPARED)
    return root, commands, durations, expected


def _assert_same(workdir: Path, expected: dict[str, object], what: str) -> None:
    got = _snapshot(workdir)
    assert sorted(got) == sorted(expected), f"{what}: different files"
    different = [k for k in expected if got[k] != expected[k]]
    assert not different, f"{what}: differ from the uninterrupted run: {different[:5]}"
    assert not list(workdir.rglob(".tmp-*")), "no temporary file may survive"


@pytest.mark.slow
def test_sigkill_anywhere_then_rerun_equals_uninterrupted(reference) -> None:
    root, commands, durations, expected = reference
    rounds = int(os.environ.get("VAD_FAULT_ROUNDS", "4"))
    rng = random.Random(0)
    # somewhere in each command's own run time (up to 80 %: a re-run can be faster than the first), start-up
    # included (imports are about half of a short command)
    moments = [[rng.uniform(0.05, 0.8) * durations[name] for name, _ in commands] for _ in range(rounds)]

    def one_round(number: int) -> tuple[Path, list[tuple[str, bool]]]:
        workdir = root / f"killed-{number}"
        interrupted = []
        for (name, args), delay in zip(commands, moments[number]):
            interrupted.append((name, _kill_during(args, workdir, delay)))
            _run(args, workdir)
        _assert_same(workdir, expected, f"round {number}")
        return workdir, interrupted

    # two rounds at a time, each on a workdir of its own: every command runs one thread (OMP_NUM_THREADS=1), so two
    # share the CI machine's two cores (a busier machine only moves the kills earlier in each command's work)
    with ThreadPoolExecutor(max_workers=2) as pool:
        finished = list(pool.map(one_round, range(rounds)))
    interrupted = [entry for _, entries in finished for entry in entries]
    # the kills must have landed while work was in progress, in every stage
    assert {name for name, running in interrupted if running} == {name for name, _ in commands}, interrupted
    _corrupt_then_rerun(finished[-1][0], commands, expected)


def _corrupt_then_rerun(workdir: Path, commands: list, expected: dict[str, object]) -> None:
    """A truncated array or model, a broken sidecar, in every stage of a finished workspace: the re-run names
    each in one line (no traceback), recomputes it, and the workspace equals the uninterrupted run again."""
    broken = [
        next((workdir / "features").glob("*/*.npy")),            # truncated features
        next((workdir / "tracks").glob("*/*.json")),              # broken tracks sidecar
        next((workdir / "objects").glob("ssmtl-*/*.crops.npy")),  # truncated object crops
        next((workdir / "models").glob("mil-*.pt")),              # truncated model bundle
        next((workdir / "scores").glob("ssmtl-*/*.npy")),         # truncated scores
        next(p for p in sorted((workdir / "scores").glob("mil-*/*.json"))  # broken score sidecar
             if p.name not in ("train.json", "summary.json", "config.json", "labels.json")),
    ]
    for path in broken:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    messages = []
    for _, args in commands:
        result = subprocess.run([sys.executable, "-m", "vad_pipeline", *args, "--workdir", str(workdir)],
                                env=_ENV, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        messages += [line for line in result.stderr.splitlines() if "corrupt" in line]
    for path in broken:
        assert any(path.name in line or path.parent.name in line for line in messages), (path, messages)
    assert all("Traceback" not in line for line in messages)
    _assert_same(workdir, expected, "after the corrupt files")
