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


@contextlib.contextmanager
def console_logging(verbosity: int) -> Iterator[None]:
    """The package's log lines on stderr for the ``with`` block, never breaking a progress bar. ``verbosity``: -1
    quiet (warnings and errors), 0 normal (info), 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger("vad_pipeline")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    with logging_redirect_tqdm([root]):
        yield
