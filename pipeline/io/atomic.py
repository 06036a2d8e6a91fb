"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target.

A reader (or a re-run after a crash) therefore sees either the old file, or the complete new one, never a
half-written file. Temporary files are named ``.tmp-<pid>@<host>~<random>-<target name>``: a sweep removes only
those whose process is gone (another process on the same workspace may be writing the others), and
``artifact_lock`` lets concurrent runs compute each artifact once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from filelock import FileLock

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name ends with the target's name, so writers that pick a format by extension still work.
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}@{socket.gethostname()}~",
                                    suffix="-" + target.name, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(target: Path, writer: Callable[[Path], None]) -> None:
    """Run ``writer(tmp_path)`` and atomically move its output to ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)


def save_npy_atomic(target: Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` at ``target`` atomically."""

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    write_atomic(target, _write)


def save_npz_atomic(target: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
    """Save named arrays as ``.npz`` at ``target`` atomically (``compressed``: ``np.savez_compressed``)."""

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            (np.savez_compressed if compressed else np.savez)(handle, **arrays)

    write_atomic(target, _write)


def save_torch_atomic(target: Path, obj: Any) -> None:
    """``torch.save(obj)`` at ``target`` atomically, the same bytes for the same object: serialised in memory
    first, since ``torch.save`` to a path names the zip's inner folder after the file (here the temporary name,
    which holds the process id)."""
    import torch  # only the callers that save torch objects load it

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(target, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def save_csv_atomic(target: Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    """A CSV file (``header``, then ``rows``; the csv module's dialect) at ``target`` atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(header)
            out.writerows(rows)

    write_atomic(target, write)


def save_json_atomic(target: Path, payload: Any) -> None:
    """Save ``payload`` as pretty JSON at ``target`` atomically."""
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """Whether the temporary file ``path`` is left over: its writer (named in the file name) is no longer running
    on this host. Files of other hosts (a shared disk) count as left over after a day, and files without an
    owner in their name (older versions) after an hour."""
    owner = path.name[len(TMP_PREFIX):].split("~", 1)[0]
    pid, _, host = owner.partition("@")
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except OSError:
        return False  # already gone: renamed by its writer or removed by another sweep
    if pid.isdigit() and host:
        if host == socket.gethostname():
            return not _pid_alive(int(pid))
        return age > 24 * 3600
    return age > 3600


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporary files that killed runs left in ``folder`` (recursively), never one a running process
    is writing; return how many were removed."""
    removed = 0
    if not folder.exists():
        return 0
    now = time.time()
    for path in folder.rglob(TMP_PREFIX + "*"):
        if is_stale_temporary(path, now):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def prepare_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) and remove the temporary files killed runs left in it; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    swept = remove_stale_temporaries(folder)
    if swept:
        logging.getLogger(__name__).info("%s: removed %d partial file(s) left by an interrupted run", folder, swept)
    return folder


LOCKS_FOLDER = ".locks"


@contextlib.contextmanager
def artifact_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<folder>/.locks/<name>.lock`` (created when missing) for the ``with``
    block: the processes that compute one artifact of ``folder`` take turns, so the later ones find it done.
    Released when the block ends or the process dies."""
    path = Path(folder) / LOCKS_FOLDER / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield
