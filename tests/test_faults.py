"""Faults lose nothing: a full disk stops the run with one line and no partial artifact; SIGTERM stops like Ctrl-C
(exit 130) and keeps finished work; the re-run then completes with what an uninterrupted run writes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vad_pipeline.commands.cli import main
from vad_pipeline.io.atomic import TMP_PREFIX


def _artifacts(workdir: Path) -> dict[str, bytes]:
    """The features stage's files (``.npy`` + ``.json`` per video), by name."""
    return {p.name: p.read_bytes() for p in sorted((workdir / "features").glob("*/*")) if p.suffix in (".npy", ".json")
            and p.name != "config.json"}


def test_full_disk_is_one_line_and_leaves_no_partial_artifact(tmp_path: Path, synthetic_dataset, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = synthetic_dataset
    workdir = tmp_path / "work"
    args = ["extract", "--stages", "features", "--workdir", str(workdir), "--weights", "random", "-q"]
    assert main(args + [str(root / "videos" / "normal")]) == 0
    before = _artifacts(workdir)
    assert len(before) == 4
    capsys.readouterr()

    import vad_pipeline.io.atomic as atomic

    real_fsync = os.fsync

    def fsync_on_a_full_disk(fd: int) -> None:
        # the features of a new video are renamed into place, then its sidecar finds the disk full
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".json") and "anomaly" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync_on_a_full_disk)
    assert main(args + [str(root / "videos")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "no space left on device" in errors[0] and str(workdir) in errors[0], errors
    after = _artifacts(workdir)
    assert after == before, "finished artifacts must stay as they were, and no new half-artifact may appear"
    assert not list(workdir.rglob(TMP_PREFIX + "*")), "temporary files left behind"

    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert main(args + [str(root / "videos")]) == 0
    assert len(_artifacts(workdir)) == 8


@pytest.mark.slow
def test_sigterm_stops_with_130_and_keeps_finished_work(tmp_path: Path) -> None:
    from vad_pipeline.synthetic.videos import generate_dataset

    generate_dataset(tmp_path / "data", per_class=2, frames=48, seed=3)
    command = [sys.executable, "-m", "vad_pipeline", "extract", "--stages", "features",
               str(tmp_path / "data" / "videos"), "--weights", "random", "-q", "--batch-size", "1"]
    stopped = tmp_path / "stopped"
    process = subprocess.Popen(command + ["--workdir", str(stopped)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    def finished_sidecars() -> list[Path]:  # not the temporary files atomic writes rename (their names end alike)
        return [p for p in (stopped / "features").glob("*/*-*.json") if not p.name.startswith(TMP_PREFIX)]

    while time.time() < deadline and not finished_sidecars():
        time.sleep(0.05)
    time.sleep(0.3)  # inside the next video
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted; finished work is kept" in err and "Traceback" not in err
    finished = _artifacts(stopped)
    assert 2 <= len(finished) < 8 and len(finished) % 2 == 0, "whole artifacts only (features + sidecar)"
    for name, data in finished.items():
        if name.endswith(".json"):
            assert json.loads(data)["T"] == 3
    assert not list(stopped.rglob(TMP_PREFIX + "*"))

    subprocess.run(command + ["--workdir", str(stopped)], check=True)
    subprocess.run(command + ["--workdir", str(tmp_path / "clean")], check=True)
    resumed, clean = _artifacts(stopped), _artifacts(tmp_path / "clean")
    assert sorted(resumed) == sorted(clean) and len(clean) == 8
    assert all(resumed[name] == clean[name] for name in clean if name.endswith(".npy")), "features differ"
