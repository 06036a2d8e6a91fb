"""``vad-pipeline export``: a model bundle's scoring network as ONNX, the deployment format of this ecosystem.

The graph maps ``features`` float32 ``(crops, T, D)`` (any number of crops and snippets) to ``scores`` float32
``(crops, T)`` in [0, 1]; the pipeline's score of a snippet is the mean over crops. The file's metadata
(``metadata_props``) carries the bundle's ``model_key``, ``method``, ``threshold``, ``feature_dim`` and ``features``
(the feature spec, JSON), so a deployment knows what to feed it and where to raise an alarm. After writing, the
export is checked against torch with ONNX Runtime on seeded features at three lengths.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vad_pipeline.errors import UserError, check_choice
from vad_pipeline.io.atomic import atomic_path

from .bundle import ModelBundle, load_bundle
from .kinds import kind_of

log = logging.getLogger(__name__)

FORMATS = ("onnx",)
ONNX_OPSET = 17
PARITY_LENGTHS = (1, 16, 97)  # snippets of the features the export is checked on


@dataclass
class ExportSummary:
    path: Path
    max_abs_diff: float  # largest |ONNX Runtime - torch| over the parity checks


def export_model(model: Path, out: Path | None = None, fmt: str = "onnx") -> ExportSummary:
    """Write ``model``'s scoring network in ``fmt`` to ``out`` (default: beside the bundle, ``.onnx``) and check
    it against torch."""
    check_choice("--format", fmt, FORMATS)
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError("export needs onnx and onnxruntime: pip install 'vad-pipeline[export]'") from None
    bundle = load_bundle(model)
    network = kind_of(bundle.method).export_network(bundle, Path(model))
    target = Path(out) if out else Path(model).with_suffix(".onnx")
    example = torch.zeros(1, 4, bundle.feature_dim)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing shapes, and its deprecation notice
        torch.onnx.export(network, (example,), str(tmp), input_names=["features"], output_names=["scores"],
                          dynamic_axes={"features": {0: "crops", 1: "T"}, "scores": {0: "crops", 1: "T"}},
                          opset_version=ONNX_OPSET, dynamo=False)
        graph = onnx.load(str(tmp))
        for key, value in _metadata(bundle).items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(tmp))
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for length in PARITY_LENGTHS:
        features = torch.randn(2, length, bundle.feature_dim, generator=generator)
        with torch.no_grad():
            expected = network(features).numpy()
        got = session.run(["scores"], {"features": features.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    log.info("export: %s -> %s (ONNX opset %d; max |ONNX Runtime - torch| %.2e)", model, target, ONNX_OPSET, worst)
    if worst > 1e-4:
        raise UserError(f"{target}: the ONNX graph differs from torch by {worst:.2e} (> 1e-4); please report it")
    return ExportSummary(target, worst)


def _metadata(bundle: ModelBundle) -> dict[str, str]:
    return {"model_key": bundle.key, "method": bundle.method, "threshold": repr(bundle.threshold),
            "feature_dim": str(bundle.feature_dim), "features": json.dumps(bundle.features, sort_keys=True),
            "input": "features float32 (crops, T, D)", "output": "scores float32 (crops, T) in [0, 1]; mean over crops"}
