"""Model kinds: every family of methods behind one contract, so that the commands ask a kind and never test a name.

A kind owns some ``--method`` names and says, for them, how to

- build the training / scoring configuration from a command's options (``config``),
- train a bundle (``train``: ``vad-pipeline train``) and train-then-score a workspace (``score``),
- check that a bundle's weights fit its options (``check_bundle``, when a bundle is loaded),
- apply a bundle to new footage (``predict``: the stages it needs, with the bundle's own spec),
- score a live stream (``live_scorer``: ``vad-pipeline watch``),
- give the network ONNX export traces, or say in one line why it has none (``export_network``).

The kinds are ``weak`` (:mod:`.weak_kind`: the weakly supervised methods of :mod:`.registry`, on snippet features)
and ``ssmtl`` (:mod:`.ssmtl.kind`: object-centric, on tracks). Adding a kind is one module named in
:data:`KIND_MODULES` that calls :func:`register_kind`; they are imported on first lookup, so no module here imports
a kind (nor a kind this module's callers).
"""

from __future__ import annotations

import dataclasses
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vad_pipeline.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vad_pipeline.core.stage import Executor
    from vad_pipeline.core.workspace import Workspace

    from .bundle import ModelBundle

KIND_MODULES = ("vad_pipeline.models.weak_kind", "vad_pipeline.models.ssmtl.kind")


@dataclass
class ScoredVideo:
    """A video a bundle scored, as ``predict``'s outputs describe it (``frames`` None: 16 per snippet)."""

    name: str
    key: str
    source: str | None
    frames: int | None = None
    fps: float | None = None


@dataclass
class Predicted:
    """What ``ModelKind.predict`` did: the scored videos, the scores folder, how many were scored and found cached,
    and the inputs that failed (path, one line)."""

    videos: list[ScoredVideo]
    folder: Path
    done: int
    cached: int
    failed: list[tuple[Path, str]]


class LiveScorer(Protocol):
    """A bundle applied to a live stream: ``unit`` is what one score covers (``snippet`` or ``frame``); ``push``
    takes each frame ``(H, W, 3)`` uint8 RGB as it arrives and ``flush`` the end of the stream, both returning
    ``(start frame, end frame, score, arrival of the frame the score waited for)`` for what is scored now."""

    unit: str

    def push(self, index: int, arrival: float, frame: "np.ndarray") -> list[tuple[int, int, float, float]]: ...

    def flush(self) -> list[tuple[int, int, float, float]]: ...


class ModelKind(ABC):
    """One family of methods (see the module docstring for what each method is for)."""

    name: str
    frame_level: bool  # True: scores are per frame; False: per snippet of 16 frames

    @abstractmethod
    def method_names(self) -> list[str]:
        """The ``--method`` names this kind owns."""

    @abstractmethod
    def config(self, options: dict[str, Any], command: str) -> Any:
        """The configuration ``train`` / ``score`` (``command``) run with, from the command's options by name
        (missing ones take the configuration's defaults)."""

    @abstractmethod
    def train(self, workspace: "Workspace", config: Any) -> Any:
        """Train (or find cached) the bundle ``config`` describes; returns what has ``.path`` and ``.bundle``."""

    @abstractmethod
    def score(self, workspace: "Workspace", config: Any, executor: "Executor | None" = None) -> Any:
        """Train as ``train`` does, then score every video; returns what has ``.folder`` and ``.failed``."""

    @abstractmethod
    def check_bundle(self, bundle: "ModelBundle") -> None:
        """Raise when the bundle's weights do not fit its options (a bundle of another version)."""

    @abstractmethod
    def predict(self, workspace: "Workspace", inputs: list[Path], bundle: "ModelBundle", request: Any, extract: Any,
                executor: "Executor | None" = None) -> Predicted:
        """Apply ``bundle`` to ``inputs`` (or to what ``request``, a ``PredictConfig``, points at: ``features``,
        ``tracks``) with ``extract``'s speed options, computing only the stages it needs."""

    @abstractmethod
    def live_scorer(self, workspace: "Workspace", bundle: "ModelBundle", model: Path | None, context: int,
                    extract: Any) -> LiveScorer:
        """``bundle`` (from the file ``model``) ready to score a stream, seeing ``context`` snippets of past."""

    @abstractmethod
    def export_network(self, bundle: "ModelBundle", model: Path) -> "torch.nn.Module":
        """The network ONNX export traces, ``(crops, T, D)`` features -> ``(crops, T)`` scores; one clear line
        when the kind has none."""


def config_from_options(config_class: type, options: dict[str, Any]) -> Any:
    """``config_class`` (a frozen dataclass) from the ``options`` that name its fields; the others keep their
    defaults. ``epochs``, ``lr`` and ``batch_size`` given as 0 or less are one clear line (None: the default)."""
    for name in ("epochs", "lr", "batch_size"):
        value = options.get(name)
        if value is not None and value <= 0:
            raise UserError(f"--{name.replace('_', '-')} {value:g}: must be positive (leave it out for the default)")
    names = {f.name for f in dataclasses.fields(config_class)}
    return config_class(**{k: v for k, v in options.items() if k in names})


_KINDS: dict[str, ModelKind] = {}
_loaded = False


def register_kind(kind: ModelKind) -> ModelKind:
    """Make ``kind`` answer for its methods (called by each module of :data:`KIND_MODULES`)."""
    _KINDS[kind.name] = kind
    return kind


def _kinds() -> list[ModelKind]:
    global _loaded
    if not _loaded:
        for module in KIND_MODULES:
            importlib.import_module(module)
        _loaded = True
    return list(_KINDS.values())


def all_method_names() -> list[str]:
    """Every ``--method`` name of every kind."""
    return sorted(name for kind in _kinds() for name in kind.method_names())


def kind_of(method: str) -> ModelKind:
    """The kind that owns ``method``; one clear line when none does."""
    for kind in _kinds():
        if method in kind.method_names():
            return kind
    raise UserError(f"--method {method}: unknown method; choose one of {', '.join(all_method_names())}")
