"""The extractor's CPU forward at its real speed: channels-last 3-D convolutions with the batch norms folded into
them give the plain fp32 features (1e-4 relative), ``--precision bf16`` follows fp32 closely on the real Kinetics
weights, and each is cached apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import native_bf16_only, shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.core.devices import autocast, check_precision, native_bf16, resolve_precision, runnable_precision
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError
from vad_pipeline.extractors.extract import ExtractConfig, FeatureStage
from vad_pipeline.io.decode import open_video


def _clips(stage: FeatureStage, name: str = "carphone_pristine.mp4") -> np.ndarray:
    """``(b, 1, 16, 224, 224, 3)`` uint8: the stage's own preprocessed snippets of a real clip."""
    reader = open_video(shared_path("real-clips", name))
    try:
        batches = [clips for _, clips in stage.snippet_batches(reader, reader.info.frames // 16)]
    finally:
        reader.close()
    return np.concatenate(batches)[:4]


def _stage(tmp_path: Path, backbone: str, weights: str, precision: str = "fp32", eager: bool = False) -> FeatureStage:
    """A prepared CPU stage; ``eager``: the plain forward (contiguous tensors, batch norms not folded)."""
    stage = FeatureStage(ExtractConfig(backbone=backbone, weights=weights, device="cpu", precision=precision,
                                       progress=False), Workspace(tmp_path / precision))
    if eager:
        stage.fast_forward = False
    stage.prepare()
    return stage


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["i3d", "i3d_r50"])
def test_cpu_forward_equals_eager_fp32(tmp_path: Path, backbone: str, request: pytest.FixtureRequest) -> None:
    """The stage's forward (channels-last, batch norms folded) gives the plain fp32 features within 1e-4 relative."""
    weights = str(request.getfixturevalue("i3d_weights")) if backbone == "i3d" else "random"
    stage, eager = _stage(tmp_path, backbone, weights), _stage(tmp_path, backbone, weights, eager=True)
    def channels_last(model: torch.nn.Module) -> bool:
        return any(p.dim() == 5 and not p.is_contiguous() for p in model.parameters())

    def batch_norms(model: torch.nn.Module) -> int:
        return sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())

    assert channels_last(stage.model) and not channels_last(eager.model)
    assert batch_norms(stage.model) == 0 and batch_norms(eager.model) > 50
    clips = _clips(stage)
    features, reference = stage.forward(clips), eager.forward(clips)
    assert features.shape == reference.shape and reference.std() > 0
    assert np.abs(features - reference).max() <= 1e-4 * np.abs(reference).max()


@native_bf16_only
@pytest.mark.slow
def test_bf16_features_follow_fp32_on_kinetics_weights(tmp_path: Path, i3d_weights: Path) -> None:
    """bf16 autocast features of real clips: cosine >= 0.999 to fp32 for every snippet, and their own cache key."""
    fp32 = _stage(tmp_path, "i3d", str(i3d_weights))
    bf16 = _stage(tmp_path, "i3d", str(i3d_weights), "bf16")
    for name in ("carphone_pristine.mp4", "bikes.mp4"):
        clips = _clips(fp32, name)
        a, b = fp32.forward(clips).reshape(len(clips), -1), bf16.forward(clips).reshape(len(clips), -1)
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosine.min() >= 0.999, (name, cosine)
        assert not np.array_equal(a, b)  # bf16 really ran
    assert bf16.config()["precision"] == "bf16" and "precision" not in fp32.config()


@pytest.mark.parametrize("native", ["1", "0"])
def test_auto_precision_follows_the_hardware(native: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` is bf16 only where the device computes bf16 natively (simulated both ways), else fp32; the feature
    extractor keeps fp16 on CUDA; bf16 asked for where it would be emulated is one clear error."""
    monkeypatch.setenv("VAD_NATIVE_BF16", native)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert native_bf16("cpu") is (native == "1")
    assert resolve_precision("auto", cpu) == ("bf16" if native == "1" else "fp32")
    assert resolve_precision("auto", cuda) == ("bf16" if native == "1" else "fp32")
    assert resolve_precision("auto", cuda, cuda_auto="fp16") == "fp16"
    assert resolve_precision("fp32", cpu) == "fp32"
    # what a model recorded in a mixed precision is applied in here
    assert runnable_precision("bf16", cpu) == ("bf16" if native == "1" else "fp32")
    assert runnable_precision("fp16", cpu) == "fp32" and runnable_precision("fp32", cpu) == "fp32"
    if native == "1":
        assert resolve_precision("bf16", cpu) == "bf16"
    else:
        with pytest.raises(UserError, match="no native bf16.*emulated.*use --precision auto or fp32"):
            check_precision("bf16", cpu)
    with pytest.raises(UserError, match="--precision fp16 needs a CUDA device"):
        check_precision("fp16", cpu)
    with pytest.raises(UserError, match="choose one of"):
        check_precision("int8", cpu)


def test_the_hardware_answer_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an override, the CPU's answer is its flags: AVX-512 BF16 or AMX means native."""
    from vad_pipeline.core import devices

    monkeypatch.delenv("VAD_NATIVE_BF16", raising=False)
    devices._hardware_bf16.cache_clear()
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "fma"})
    assert not devices.native_bf16("cpu")
    devices._hardware_bf16.cache_clear()
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert devices.native_bf16("cpu")
    devices._hardware_bf16.cache_clear()
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    assert devices.native_bf16("cpu")
    devices._hardware_bf16.cache_clear()


@pytest.mark.parametrize("command", [["extract", "nothing-here.mp4", "--stages", "features"],
                                     ["score", "--method", "mil"], ["score", "--method", "ssmtl"]])
def test_bf16_where_it_would_be_emulated_is_one_line(command: list[str], tmp_path: Path, capsys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU without native bf16 (simulated), ``--precision bf16`` stops with one line naming the fix, before any
    work: extract, the weak scorers and SSMTL alike."""
    monkeypatch.setenv("VAD_NATIVE_BF16", "0")
    (tmp_path / "nothing-here.mp4").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    code = main(command + ["--workdir", str(tmp_path / "work"), "--device", "cpu", "--precision", "bf16", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "--precision bf16: this CPU has no native bf16" in err[0]
    assert "use --precision auto or fp32" in err[0] and "Traceback" not in err[0]


def test_autocast_runs_the_named_precision() -> None:
    cpu = torch.device("cpu")
    with autocast(cpu, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
