"""Finding the videos a user pointed the pipeline at: video files and folders of frames (:mod:`.frames`). The line
for inputs that hold none is :func:`vad_pipeline.io.datasets.nothing_found` (it names the dataset layouts tried)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import UserError
from .decode import VIDEO_EXTENSIONS
from .frames import IMAGE_EXTENSIONS, image_files, natural_key


def find_videos(inputs: Iterable[Path | str], keep_links: bool = False) -> list[Path]:
    """Expand files and folders into a de-duplicated list of videos: video files, and folders of frames (a folder
    that directly holds images is one clip, read as a video; its sub-folders are not searched).

    A file named explicitly is kept whatever its extension (so that a bad file gets its own clear error); inside
    folders only files with a common video extension are taken, hidden files and folders skipped, in natural order.
    A folder that holds images and video files side by side is kept as one clip, whose reading then fails with one
    line saying so (the other inputs go on). ``keep_links``: follow linked folders and keep each clip under the
    name it is found by (roots that name clips by their folder: a linked ``Test001/`` stays ``Test001``) instead of
    the resolved path."""
    def absolute(path: Path) -> Path:
        return path.absolute() if keep_links else path.resolve()

    found: dict[Path, None] = {}
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            if image_files(path):
                found[absolute(path)] = None
                continue
            for folder, subfolders, files in os.walk(path, followlinks=keep_links):
                subfolders[:] = sorted((d for d in subfolders if not d.startswith(".")), key=natural_key)
                here = Path(folder)
                if here != path and any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files
                                        if not f.startswith(".")):
                    found[absolute(here)] = None
                    subfolders[:] = []
                    continue
                for name in sorted(files, key=natural_key):
                    if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                        found[absolute(here / name)] = None
        elif path.is_file():
            found[absolute(path)] = None
        else:
            raise UserError(f"{path}: no such file or folder; pass video files, folders of frames or folders "
                            "holding them")
    return list(found)
