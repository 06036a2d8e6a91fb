"""SSMTL (Georgescu et al., CVPR 2021): object-centric self-supervised multi-task learning; see ``runner``.

The configuration (``config``) imports no torch; the runner's names load it on first use, so that the command line
can read SSMTL's defaults without loading a model."""

from __future__ import annotations

import importlib
from typing import Any

from .config import TASKS, ObjectConfig, SSMTLConfig

__all__ = ["ObjectConfig", "SSMTLConfig", "SSMTLSummary", "score_ssmtl", "train_ssmtl", "TASKS"]

_RUNNER_NAMES = ("SSMTLSummary", "score_ssmtl", "train_ssmtl")


def __getattr__(name: str) -> Any:
    if name in _RUNNER_NAMES:
        return getattr(importlib.import_module(".runner", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
