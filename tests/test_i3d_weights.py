"""The Inception I3D port and DeepMind's Kinetics-400 checkpoint: safe reading, conversion, exact logits."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_path
from vad_pipeline.errors import WeightsError
from vad_pipeline.extractors.backbones import BACKBONES, load_backbone
from vad_pipeline.extractors.i3d_inception import InceptionI3d
from vad_pipeline.extractors.weights import (
    WeightsChoice,
    load_numpy_pickle,
    resolve_weights,
)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code() -> None:
    with pytest.raises(WeightsError, match="refusing to load"):
        load_numpy_pickle(pickle.dumps({"params": _Evil()}), "evil.ckpt")


def test_restricted_unpickler_reads_nested_numpy_arrays() -> None:
    payload = {"params": {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, "batch_stats": {}}
    loaded = load_numpy_pickle(pickle.dumps(payload, protocol=4), "ok.ckpt")
    np.testing.assert_array_equal(loaded["params"]["a"], payload["params"]["a"])


def _gif_clip() -> torch.Tensor:
    capture = cv2.VideoCapture(str(shared_path("kinetics400", "v_CricketShot_g04_c01_rgb.gif")))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    clip = np.stack(frames).astype(np.float32) / 255.0 * 2.0 - 1.0  # (T, H, W, 3) in [-1, 1]
    return torch.from_numpy(clip).permute(3, 0, 1, 2)[None]


def test_converted_i3d_reproduces_reference_logits(i3d_weights: Path) -> None:
    model = load_backbone(BACKBONES["i3d"], WeightsChoice(i3d_weights, "cache"))
    clip = _gif_clip()
    assert clip.shape == (1, 3, 79, 224, 224)
    with torch.inference_mode():
        logits = model(clip)[0].numpy()
    expected = np.load(shared_path("kinetics400", "expected_logits_gif.npy"))
    np.testing.assert_allclose(logits, expected, atol=1e-3, rtol=0)
    labels = shared_path("kinetics400", "label_map.txt").read_text().splitlines()
    probabilities = torch.softmax(torch.from_numpy(logits), 0).numpy()
    top = int(np.argmax(logits))
    assert labels[top] == "playing cricket"
    assert probabilities[top] == pytest.approx(0.9886, abs=1e-3)


def test_pytorch_port_layout_loads(tmp_path: Path, i3d_weights: Path) -> None:
    """A state dict in the public PyTorch port's layout (e.g. rgb_imagenet.pt) loads through --weights."""
    state = torch.load(i3d_weights, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # old checkpoints lack it
    port_file = tmp_path / "rgb_imagenet.pt"
    torch.save(state, port_file)
    model = load_backbone(BACKBONES["i3d"], resolve_weights("i3d", str(port_file)))
    reference = load_backbone(BACKBONES["i3d"], WeightsChoice(i3d_weights, "cache"))
    clip = torch.rand(1, 3, 16, 112, 112) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(model.features(clip), reference.features(clip))


def test_converted_state_has_torch_layout(i3d_weights: Path) -> None:
    state = torch.load(i3d_weights, map_location="cpu", weights_only=True)
    assert state["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert state["Mixed_5c.b3b.bn.running_var"].shape == (128,)
    assert torch.all(state["Mixed_4b.b1b.bn.weight"] == 1)  # Sonnet BatchNorm has no learned scale


def test_wrong_layout_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bogus)
    with pytest.raises(WeightsError, match="not a i3d checkpoint"):
        load_backbone(BACKBONES["i3d"], resolve_weights("i3d", str(bogus)))


def test_missing_weights_say_how_to_install(empty_weights_cache: Path) -> None:
    with pytest.raises(WeightsError, match="vad-pipeline weights install i3d"):
        resolve_weights("i3d", None)
    with pytest.raises(WeightsError, match="I3D_8x8_R50.pyth"):
        resolve_weights("i3d_r50", None)
    with pytest.raises(WeightsError, match="no such file"):
        resolve_weights("i3d", str(empty_weights_cache / "nothing.pt"))


def test_same_padding_matches_tensorflow_shapes() -> None:
    model = InceptionI3d().eval()
    with torch.inference_mode():
        out = model.mixed_5c(torch.zeros(1, 3, 16, 224, 224))
    assert out.shape == (1, 1024, 2, 7, 7)


def test_random_weights_are_seeded() -> None:
    first = load_backbone(BACKBONES["i3d"], WeightsChoice(None, "random"))
    second = load_backbone(BACKBONES["i3d"], WeightsChoice(None, "random"))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_install_checks_the_checkpoint_hash(tmp_path: Path, empty_weights_cache: Path) -> None:
    from vad_pipeline.extractors.weights import install_i3d

    wrong = tmp_path / "i3d-kinetics-400.ckpt"
    buffer = io.BytesIO()
    pickle.dump({"params": {}, "batch_stats": {}}, buffer, protocol=4)
    wrong.write_bytes(buffer.getvalue())
    with pytest.raises(WeightsError, match="SHA-256"):
        install_i3d(source=wrong, force=True)
    assert not (empty_weights_cache / "weights").exists() or not any((empty_weights_cache / "weights").iterdir())
