"""Console logging: one line per message, routed around tqdm's progress bars."""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.ERROR: "error: ", logging.WARNING: "warning: ", logging.CRITICAL: "error: "}.get(
            record.levelno, ""
        )
        message = record.getMessage()
        if record.levelno <= logging.DEBUG and record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return f"vad-pipeline: {prefix}{message}"


def setup_logging(verbosity: int) -> None:
    """verbosity: -1 quiet (warnings and errors), 0 normal (info), 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger("vad_pipeline")
    root.handlers.clear()
    handler = _TqdmHandler()
    handler.setFormatter(_Formatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
