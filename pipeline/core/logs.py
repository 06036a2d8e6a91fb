"""Console logging: one line per message on stderr; while a command runs, ``tqdm.contrib.logging`` routes it
around the progress bars (``console_logging``)."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from tqdm.contrib.logging import logging_redirect_tqdm


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.ERROR: "error: ", logging.WARNING: "warning: ", logging.CRITICAL: "error: "}.get(
            record.levelno, ""
        )
        message = record.getMessage()
        if record.levelno <= logging.DEBUG and record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return f"vad-pipeline: {prefix}{message}"


class _CurrentStderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when the line is emitted."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@contextlib.contextmanager
def console_logging(verbosity: int) -> Iterator[None]:
    """The package's log lines on stderr for the ``with`` block, never breaking a progress bar. ``verbosity``: -1
    quiet (warnings and errors), 0 normal (info), 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger("vad_pipeline")
    saved = (list(root.handlers), root.level, root.propagate)
    handler = _CurrentStderrHandler()
    handler.setFormatter(_Formatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    try:
        with logging_redirect_tqdm([root]):
            yield
    finally:
        # Library callers (and the next command in one process) get the logger back as it was, never a handler
        # that holds a stream somebody has since closed.
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
