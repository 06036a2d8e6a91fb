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

SSMTL bundles (``method: "ssmtl"``) fill the same fields with their own content (``features`` = the tracks spec and
the teacher, ``feature_dim`` = the teacher's feature size): see :mod:`.ssmtl.runner`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad_pipeline.atomic import save_torch_atomic
from vad_pipeline.errors import UserError
from vad_pipeline.schemas import BUNDLE_SCHEMA

from .base import WeakMethod
from .registry import get_method


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
        if self.method == "ssmtl":
            raise UserError("this is an SSMTL bundle: it scores objects from tracks, not snippet features")
        method_cls = get_method(self.method)
        method = method_cls(self.feature_dim, method_cls.Options(**self.options))
        method.load_state_dict(self.state_dict)
        return method.eval()


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
        if bundle.method == "ssmtl":
            from .ssmtl.apply import SSMTLOptions, build_network

            build_network(SSMTLOptions.from_json(bundle.options), bundle.state_dict)  # the weights fit the options
        else:
            bundle.build()  # the weights fit the method and options
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


def false_alarm_rate(normal_scores: list[np.ndarray], threshold: float) -> float:
    """The fraction of the normal frames ``normal_scores`` above ``threshold``."""
    values = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in normal_scores])
    return float(np.mean(values > threshold)) if values.size else 0.0
