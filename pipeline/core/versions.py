"""Library versions recorded with every artifact, so a result can be traced to the code that made it."""

from __future__ import annotations

import functools
import importlib.metadata
import platform

_DISTRIBUTIONS = ("vad-pipeline", "torch", "torchvision", "pytorchvideo", "decord", "opencv-python", "numpy")


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the outputs (missing ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
