"""Finding the videos a user pointed the pipeline at."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .decode import VIDEO_EXTENSIONS
from .errors import UserError


def find_videos(inputs: Iterable[Path | str]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted, de-duplicated list of video files.

    A file named explicitly is kept whatever its extension (so that a bad file gets its own clear error);
    inside folders only files with a common video extension are taken, hidden files and folders skipped.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                if candidate.is_file() and candidate.suffix.lower() in VIDEO_EXTENSIONS:
                    found[candidate.resolve()] = None
        elif path.is_file():
            found[path.resolve()] = None
        else:
            raise UserError(f"{path}: no such file or folder; pass video files or folders holding them")
    return list(found)
