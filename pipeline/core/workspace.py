"""The on-disk workspace: where every stage's artifacts, the manifest and the reports live.

Layout (also in docs/workspace.md)::

    <workdir>/
      manifest.sqlite              # index and history of every video and artifact (SQLite, WAL)
      <stage>/<tag>/               # one folder per stage and configuration, tag = "<name>-<config hash>"
        config.json                # the full configuration the hash was computed from
        <video_id>.npy / .json     # the artifact and its JSON sidecar, written atomically
      demo/                        # videos and ground truth written by `vad-pipeline demo`

``video_id`` is ``<clip name>-<first 10 hex digits of the content's SHA-256>`` (the clip name: a file's stem, a
frame folder's name, or the name a dataset gives it): a changed file gets a new id, two copies of one file share
one id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..io.frames import DEFAULT_FRAME_RATE
from .manifest import Manifest

DEFAULT_WORKDIR = Path("vad-work")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class VideoRef:
    """A video identified by content: ``video_id`` changes when the file's bytes change. ``path`` is a video file
    or a folder of frames; ``clip`` the name outputs, labels and ground truth know it by (default: the file's stem,
    the folder's name; a dataset names its clips, e.g. ``train_01``); ``frame_rate`` a frame folder's (None: 25)."""

    path: Path
    sha256: str
    size: int
    clip: str = ""
    frame_rate: float | None = None

    @property
    def clip_name(self) -> str:
        return self.clip or self.path.stem

    @property
    def video_id(self) -> str:
        stem = _UNSAFE.sub("_", self.clip_name).strip("_") or "video"
        return f"{stem}-{self.sha256[:10]}"


@dataclass(frozen=True)
class NamedRef(VideoRef):
    """An input named by a key of its own instead of ``<stem>-<hash>``: public-layout feature files, which stand in
    for a video the workspace never saw, keep their labels key (``name``) as their id."""

    name: str = ""

    @property
    def video_id(self) -> str:
        return self.name


class Workspace:
    """A workdir: the manifest plus one folder per stage configuration."""

    def __init__(self, root: Path | str = DEFAULT_WORKDIR):
        self.root = Path(root).expanduser().resolve()
        self._manifest: Manifest | None = None

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._manifest = Manifest(self.root / "manifest.sqlite")
        return self._manifest

    def exists(self) -> bool:
        return (self.root / "manifest.sqlite").is_file()

    def stage_folder(self, stage: str, tag: str) -> Path:
        return self.root / stage / tag

    def configured_folder(self, stage: str, tag: str | None, option: str, hint: str) -> Path:
        """The one ``<stage>/<tag>/`` folder a command reads: ``tag`` when given, else the only configuration there
        is (one made with real weights is preferred to ``-random-`` test ones). Never "the newest": with several,
        one clear line lists them and names ``option`` to choose. ``hint`` says how to make one."""
        root = self.root / stage
        folders = sorted(p for p in root.glob("*") if (p / "config.json").is_file())
        if tag:
            chosen = [p for p in folders if p.name == tag]
            if not chosen:
                known = ", ".join(p.name for p in folders) or "none"
                raise UserError(f"{option} {tag}: no such folder in {root} (there: {known})")
            return chosen[0]
        if not folders:
            raise UserError(f"{root}: nothing there yet; {hint}")
        candidates = [p for p in folders if "-random-" not in p.name] or folders
        if len(candidates) > 1:
            raise UserError(f"{root}: {len(candidates)} configurations ({', '.join(p.name for p in candidates)}); "
                            f"choose one with {option} TAG")
        return candidates[0]

    def video_ref(self, path: Path, clip: str = "", fps: float | None = None) -> VideoRef:
        """Identify ``path`` (a video file or a folder of frames) by content; the hash is cached in the manifest
        while sizes and mtimes are unchanged. A frame folder's frame rate ``fps`` is part of its identity (the
        outputs record it); ``clip`` names it (default: the folder's name, the file's stem)."""
        path = Path(path).resolve()
        sha256 = self.manifest.sha256_of(path)
        if not path.is_dir():
            return VideoRef(path=path, sha256=sha256, size=path.stat().st_size, clip=clip)

        rate = float(fps or DEFAULT_FRAME_RATE)
        if rate != DEFAULT_FRAME_RATE:
            sha256 = hashlib.sha256(f"{sha256} fps={rate:g}".encode()).hexdigest()
        size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return VideoRef(path=path, sha256=sha256, size=size, clip=clip or path.name, frame_rate=rate)

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None
