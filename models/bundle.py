"""Model bundles: one file holding a trained method and everything needed to apply it elsewhere.

A bundle (``<workdir>/models/<method>-<key>.pt``, or ``vad-pipeline train --out FILE``) is a torch file of plain
types, loaded with ``weights_only=True``: ``{"schema": "vad-pipeline/bundle/1", "meta": <JSON string>,
"state_dict": {name: tensor}}``. ``meta`` holds:

- ``key``: the hash of what determined the training (method, options, schedule, seed, the feature spec, the training
  videos' feature hashes and labels, the calibration videos and budget): the same inputs give the same key;
- ``method``, ``options`` (the method's options dataclass), ``schedule``, ``seed``, ``feature_dim``;
- ``features``: the feature spec. ``{"source": "workspace", "config": <the features stage's config: backbone,
  weights_sha256, crops, tail, snippet_frames, short_side, crop_size[, precision]>}`` for features this pipeline
  extracted, ``{"source": "files", "dir": ...}`` for public-layout feature files;
- ``threshold`` (the alarm threshold on snippet / frame scores) and ``calibration`` (``far``: the false-alarm budget,
  ``on``: ``held-out`` or ``training`` videos, ``videos``, ``frames``, ``measured_far``);
- ``training`` (``videos``: name -> label, ``normal`` / ``anomalous`` counts, ``features``: name -> file hashes),
  ``history`` (per-epoch losses), ``seconds``, ``versions`` (library versions), ``created``;
- ``scales``: SSMTL's score normalisation (empty for the weak methods).

Bundles of the other kinds (:mod:`.kinds`) fill the same fields with their own content (SSMTL: ``features`` = the
tracks spec and the teacher, ``feature_dim`` = the teacher's feature size; see :mod:`.ssmtl.runner`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from vad_pipeline.core.hashing import config_hash
from vad_pipeline.core.schemas import BUNDLE_SCHEMA
from vad_pipeline.errors import UserError
from vad_pipeline.io.atomic import artifact_lock, prepare_folder, save_torch_atomic

from .base import WeakMethod
from .kinds import kind_of
from .registry import get_method, method_names

if TYPE_CHECKING:
    from vad_pipeline.core.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """A trained method and its application settings (see the module docstring for each field)."""

    key: str
    method: str
    options: dict[str, Any]
    schedule: dict[str, Any]
    seed: int
    feature_dim: int
    features: dict[str, Any]
    threshold: float
    calibration: dict[str, Any]
    training: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    scales: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def meta(self) -> dict[str, Any]:
        """Everything but the weights, JSON-able."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "state_dict"}

    def build(self) -> WeakMethod:
        """The weakly supervised method with the bundle's options and weights, in eval mode."""
        if self.method not in method_names():
            raise UserError(f"this bundle's method, {self.method}, does not score snippet features; apply it with "
                            "`vad-pipeline predict`")
        method_cls = get_method(self.method)
        method = method_cls(self.feature_dim, method_cls.Options(**self.options))
        method.load_state_dict(self.state_dict)
        return method.eval()


@dataclass
class TrainedModel:
    """A bundle and where it is, and whether this call trained it."""

    bundle: ModelBundle
    path: Path
    trained: bool


def cached_training(workspace: "Workspace", method: str, key_config: dict[str, Any],
                    train: Callable[[str], ModelBundle], lineage: dict[str, Any], force: bool = False,
                    out: Path | None = None) -> TrainedModel:
    """The model artifact of every kind: ``<workdir>/models/<method>-<key>.pt``, ``key`` the hash of
    ``key_config`` (what determines the training). Under the artifact's lock (concurrent runs take turns; the later
    ones load it), the cached bundle is loaded (a corrupt one is trained again, with a warning; ``force`` trains
    anyway), else ``train(key)`` makes it and it is saved atomically; either way the manifest records its row with
    the ``lineage`` inputs, and the bundle is also written to ``out`` when asked."""
    key = config_hash(key_config)
    folder = workspace.root / "models"
    prepare_folder(folder)
    path = folder / f"{method}-{key}.pt"
    with artifact_lock(folder, path.stem):
        bundle = None
        if path.is_file() and not force:
            try:
                bundle = load_bundle(path)
            except UserError:
                log.warning("%s: corrupt cache entry (an unreadable bundle); training it again", path)
        trained = bundle is None
        if bundle is None:
            bundle = train(key)
            save_bundle(path, bundle)
        else:
            log.info("%s: already trained, loaded %s", method, path)
        workspace.manifest.record_lineage("model", method, key, key_config, path, lineage,
                                          detail={"threshold": bundle.threshold})
    if out is not None:
        save_bundle(Path(out), bundle)
    return TrainedModel(bundle, path, trained)


def save_bundle(path: Path, bundle: ModelBundle) -> Path:
    """Write ``bundle`` to ``path`` atomically."""
    payload = {"schema": BUNDLE_SCHEMA, "meta": json.dumps(bundle.meta(), sort_keys=True),
               "state_dict": {name: tensor.detach().cpu() for name, tensor in bundle.state_dict.items()}}
    save_torch_atomic(path, payload)
    return path


def load_bundle(path: Path) -> ModelBundle:
    """Read a bundle safely (``weights_only``); one clear line when the file is not one this version can apply."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--model {path}: no such file; train one with `vad-pipeline train --method M`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"--model {path}: not a readable model bundle ({type(exc).__name__}); train it again "
                        f"with `vad-pipeline train`") from None
    schema = payload.get("schema") if isinstance(payload, dict) else None
    if schema != BUNDLE_SCHEMA:
        raise UserError(f"--model {path}: bundle schema {schema!r}, this version reads {BUNDLE_SCHEMA!r}; train the "
                        f"model again with this version's `vad-pipeline train`")
    try:
        meta = json.loads(payload["meta"])
        bundle = ModelBundle(**meta, state_dict=payload["state_dict"])
        kind_of(bundle.method).check_bundle(bundle)  # the weights fit the method and options
    except UserError as exc:  # a method this version does not have
        raise UserError(f"--model {path}: {exc}; train it again with this version") from None
    except Exception as exc:
        raise UserError(f"--model {path}: the bundle does not fit this version's {meta.get('method', 'method')} "
                        f"({type(exc).__name__}: {exc}); train it again") from None
    return bundle


def false_alarm_threshold(normal_scores: list[np.ndarray], far: float) -> float:
    """The alarm threshold at which a fraction ``far`` of the normal frames ``normal_scores`` (each ``(N,)``) lies
    strictly above: their (1 - far) quantile, taken at an observed score so that the measured rate never exceeds
    the budget on these videos."""
    if not 0 < far < 1:
        raise UserError(f"--far {far}: the false-alarm budget is a fraction of normal frames, between 0 and 1")
    values = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in normal_scores])
    if values.size == 0:
        raise UserError("calibration: the normal validation videos have no frames")
    return float(np.quantile(values, 1.0 - far, method="higher"))

