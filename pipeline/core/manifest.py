"""The workspace manifest: a SQLite database (WAL mode) recording every video seen and every stage artifact
(stage, video, config hash, status, timings, library versions).

Tables (documented in docs/workspace.md, "Workspace layout"):

- ``file_hashes(path, size, mtime_ns, sha256)``: content hashes, reused while a file's size and mtime are unchanged.
- ``videos(video_id, path, sha256, size, fps, frames, width, height, updated)``: one row per distinct video.
- ``artifacts(stage, video_id, config_hash, config_json, status, path, error, started, finished, seconds,
  versions_json, detail_json)``: ``status`` is ``running``, ``done`` or ``failed``. ``video_id`` is the video an
  artifact belongs to, or the name of a whole-run artifact (a model: the method's name; the report: ``report``).
  Lineage: ``detail_json["inputs"]`` maps each upstream artifact kind to the key (content hash or config hash) of
  what the artifact was computed from: ``features`` / ``tracks`` <- ``video`` (the file's SHA-256);
  ``objects`` (SSMTL's object crops) <- ``tracks``; a ``model`` <- its training inputs (``features`` or ``objects`` per video);
  ``scores`` <- ``model`` and the video's ``features`` or ``objects``; ``report`` <- the ``scores`` runs it read.

The artifact files themselves are the source of truth for completeness (they are written atomically); the manifest
is the index and the history. Several processes may write to it at once (WAL, busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..io.atomic import artifact_lock
from ..io.decode import VIDEO_EXTENSIONS
from ..io.frames import folder_digest, list_frames
from .hashing import file_sha256
from .versions import library_versions

_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
    video_id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER,
    fps REAL, frames INTEGER, width INTEGER, height INTEGER, updated REAL
);
CREATE TABLE IF NOT EXISTS artifacts (
    stage TEXT NOT NULL, video_id TEXT NOT NULL, config_hash TEXT NOT NULL, config_json TEXT NOT NULL,
    status TEXT NOT NULL, path TEXT, error TEXT, started REAL, finished REAL, seconds REAL,
    versions_json TEXT, detail_json TEXT,
    PRIMARY KEY (stage, video_id, config_hash)
);
"""


@dataclass(frozen=True)
class ArtifactRecord:
    """One row of the ``artifacts`` table."""

    stage: str
    video_id: str
    config_hash: str
    status: str
    path: str | None
    error: str | None
    seconds: float | None
    finished: float | None
    detail: dict[str, Any]


class Manifest:
    """Thread-safe access to ``manifest.sqlite``; every write is its own transaction."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Processes opening a new workspace at once take turns: switching a fresh database to WAL and creating the
        # tables upgrade locks, and SQLite answers such a race with "database is locked" at once instead of waiting.
        with artifact_lock(self.path.parent, "manifest"):
            self._conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=60000")
            with self._lock:
                self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- content hashes ---------------------------------------------------------------------------------------
    def sha256_of(self, path: Path) -> str:
        """SHA-256 of ``path``, recomputed only when its size or modification time changed. A folder of frames
        (:mod:`vad_pipeline.io.frames`) hashes its frames' names and contents; its row's size is the frames' total and
        its stamp a digest of every frame's name, size and mtime, so a touched, added or removed frame rehashes it."""
        path = Path(path).resolve()
        if path.is_dir():
            return self._folder_sha256(path)
        stat = path.stat()
        return self._cached_sha256(path, stat.st_size, stat.st_mtime_ns, lambda: file_sha256(path))

    def _cached_sha256(self, path: Path, size: int, stamp: int, compute: Callable[[], str]) -> str:
        rows = self._execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path = ?", (str(path),))
        if rows and rows[0][0] == size and rows[0][1] == stamp:
            return rows[0][2]
        digest = compute()
        self._execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)", (str(path), size, stamp, digest))
        return digest

    def _folder_sha256(self, folder: Path) -> str:
        frames = list_frames(folder, VIDEO_EXTENSIONS)
        stamp, size = hashlib.sha256(), 0
        for frame in frames:
            info = frame.stat()
            size += info.st_size
            stamp.update(f"{frame.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
        return self._cached_sha256(folder, size, int(stamp.hexdigest()[:15], 16),
                                   lambda: folder_digest(frames, file_sha256))

    # -- videos -----------------------------------------------------------------------------------------------
    def record_video(self, video_id: str, path: Path, sha256: str, size: int, **meta: Any) -> None:
        self._execute(
            "INSERT INTO videos (video_id, path, sha256, size, fps, frames, width, height, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(video_id) DO UPDATE SET path = excluded.path, "
            "fps = COALESCE(excluded.fps, videos.fps), frames = COALESCE(excluded.frames, videos.frames), "
            "width = COALESCE(excluded.width, videos.width), height = COALESCE(excluded.height, videos.height), "
            "updated = excluded.updated",
            (
                video_id, str(path), sha256, size, meta.get("fps"), meta.get("frames"), meta.get("width"),
                meta.get("height"), time.time(),
            ),
        )

    def videos(self) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT video_id, path, sha256, size, fps, frames, width, height FROM videos ORDER BY path"
        )
        keys = ("video_id", "path", "sha256", "size", "fps", "frames", "width", "height")
        return [dict(zip(keys, row)) for row in rows]

    # -- artifacts --------------------------------------------------------------------------------------------
    def mark_running(self, stage: str, video_id: str, config_hash: str, config: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO artifacts (stage, video_id, config_hash, config_json, status, started) "
            "VALUES (?, ?, ?, ?, 'running', ?) ON CONFLICT(stage, video_id, config_hash) DO UPDATE SET "
            "status = 'running', error = NULL, started = excluded.started",
            (stage, video_id, config_hash, json.dumps(config, sort_keys=True, default=str), time.time()),
        )

    def mark_done(
        self, stage: str, video_id: str, config_hash: str, config: dict[str, Any], path: Path,
        seconds: float | None, versions: dict[str, str], detail: dict[str, Any],
    ) -> None:
        self._execute(
            "INSERT INTO artifacts (stage, video_id, config_hash, config_json, status, path, error, finished, "
            "seconds, versions_json, detail_json) VALUES (?, ?, ?, ?, 'done', ?, NULL, ?, ?, ?, ?) "
            "ON CONFLICT(stage, video_id, config_hash) DO UPDATE SET status = 'done', path = excluded.path, "
            "error = NULL, finished = excluded.finished, seconds = COALESCE(excluded.seconds, artifacts.seconds), "
            "versions_json = excluded.versions_json, detail_json = excluded.detail_json",
            (
                stage, video_id, config_hash, json.dumps(config, sort_keys=True, default=str), str(path),
                time.time(), seconds, json.dumps(versions, sort_keys=True), json.dumps(detail, sort_keys=True),
            ),
        )

    def record_lineage(self, stage: str, key: str, config_hash: str, config: dict[str, Any], path: Path | None,
                       inputs: dict[str, Any], seconds: float | None = None,
                       detail: dict[str, Any] | None = None) -> None:
        """``mark_done`` for an artifact with its upstream keys (``inputs``, see the module docstring)."""
        self.mark_done(stage, key, config_hash, config, path, seconds, library_versions(),
                       {**(detail or {}), "inputs": inputs})

    def mark_failed(self, stage: str, video_id: str, config_hash: str, config: dict[str, Any], error: str) -> None:
        self._execute(
            "INSERT INTO artifacts (stage, video_id, config_hash, config_json, status, error, finished) "
            "VALUES (?, ?, ?, ?, 'failed', ?, ?) ON CONFLICT(stage, video_id, config_hash) DO UPDATE SET "
            "status = 'failed', error = excluded.error, finished = excluded.finished",
            (stage, video_id, config_hash, json.dumps(config, sort_keys=True, default=str), error, time.time()),
        )

    def artifacts(self, stage: str | None = None) -> Iterator[ArtifactRecord]:
        sql = "SELECT stage, video_id, config_hash, status, path, error, seconds, finished, detail_json FROM artifacts"
        params: tuple = ()
        if stage is not None:
            sql += " WHERE stage = ?"
            params = (stage,)
        for row in self._execute(sql + " ORDER BY stage, video_id, finished", params):
            yield ArtifactRecord(*row[:8], detail=json.loads(row[8]) if row[8] else {})

    def artifact(self, stage: str, video_id: str, config_hash: str) -> ArtifactRecord | None:
        rows = self._execute(
            "SELECT stage, video_id, config_hash, status, path, error, seconds, finished, detail_json FROM artifacts "
            "WHERE stage = ? AND video_id = ? AND config_hash = ?",
            (stage, video_id, config_hash),
        )
        return ArtifactRecord(*rows[0][:8], detail=json.loads(rows[0][8]) if rows[0][8] else {}) if rows else None
