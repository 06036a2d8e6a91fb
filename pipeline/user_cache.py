"""The user cache folder shared by every part that stores downloaded or converted files (weights, detectors)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache: ``$VAD_PIPELINE_CACHE`` or ``$XDG_CACHE_HOME/vad-pipeline`` (default ``~/.cache``)."""
    if os.environ.get("VAD_PIPELINE_CACHE"):
        return Path(os.environ["VAD_PIPELINE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vad-pipeline"
