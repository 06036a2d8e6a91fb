"""The extract input path a GPU needs, checked on the CPU where the code is the same: resize and crops on the
model's device (``--preprocess device``), the next videos decoded ahead (``--decoders``), and on CUDA (skipped
without one) every path against the CPU's."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_path
from vad_pipeline.commands.cli import main
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.extractors.extract import ExtractConfig, FeatureStage
from vad_pipeline.extractors.preprocess import device_snippet_crops, resize_frames, snippet_crops
from vad_pipeline.io.decode import open_video


def _frames(name: str, count: int = 32) -> np.ndarray:
    return np.concatenate(list(open_video(shared_path("real-clips", name)).iter_chunks(count)))[:count]


@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "bikes.mp4"])  # 176x144 is upscaled, 640x272 downscaled
@pytest.mark.parametrize("mode", ["center", "five", "ten"])
def test_device_crops_are_opencvs_within_one_grey_level(name: str, mode: str) -> None:
    """Resize and crops in torch give OpenCV's pixels in the same crop order: at most one grey level apart (OpenCV
    interpolates in 11-bit fixed point), most pixels equal (measured: 88 % upscaled, 92 % downscaled)."""
    frames = _frames(name)
    host = np.stack([snippet_crops(resize_frames(frames[i : i + 16], 256), 224, mode) for i in (0, 16)])
    device = device_snippet_crops(torch.from_numpy(frames.reshape(2, 16, *frames.shape[1:])), 256, 224, mode)
    device = device.permute(0, 1, 3, 4, 5, 2).numpy()  # (2, crops, L, S, S, 3) as the host path
    assert device.shape == host.shape
    difference = np.abs(host.astype(np.int16) - device.astype(np.int16))
    assert difference.max() <= 1 and (difference == 0).mean() >= 0.85


@pytest.mark.slow
def test_device_preprocessing_features_follow_the_host_path(tmp_path: Path, i3d_weights: Path) -> None:
    """The whole stage with ``--preprocess device`` (on the CPU here; the GPU's default) on a real clip with the
    Kinetics weights: every snippet's features have cosine >= 0.9999 to the OpenCV path's (measured 0.99998), the
    largest difference within 2 % of the largest feature (measured 0.9 %), and they are cached apart."""
    clip = shared_path("real-clips", "carphone_pristine.mp4")
    features = {}
    for mode in ("host", "device"):
        workdir = tmp_path / mode
        assert main(["extract", str(clip), "--stages", "features", "--device", "cpu", "--preprocess", mode,
                     "--weights", str(i3d_weights), "--workdir", str(workdir), "-q"]) == 0
        (path,) = (workdir / "features").glob("*/*.npy")
        features[mode] = (path.parent.name, np.load(path))
    (host_tag, host), (device_tag, device) = features["host"], features["device"]
    assert host_tag != device_tag and host.shape == device.shape == (7, 1, 1024)
    flat_h, flat_d = host.reshape(len(host), -1), device.reshape(len(device), -1)
    cosine = (flat_h * flat_d).sum(1) / (np.linalg.norm(flat_h, axis=1) * np.linalg.norm(flat_d, axis=1))
    assert cosine.min() >= 0.9999
    assert np.abs(host - device).max() <= 0.02 * np.abs(host).max()


def test_videos_decoded_ahead_give_the_same_features(tmp_path: Path, synthetic_dataset,
                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """``--decoders 3``: while one video computes, the next two are decoding; the features are byte-identical to
    one video at a time, and an unreadable video read ahead still fails alone, with one line, in its turn."""
    root, videos = synthetic_dataset
    folder = tmp_path / "videos"
    folder.mkdir()
    for video in videos:
        shutil.copy(video.path, folder / video.path.name)
    (folder / "b_broken.mp4").write_text("this is not a video\n")
    reading_ahead: list[int] = []
    upcoming = FeatureStage.upcoming

    def spy(self: FeatureStage, pending) -> None:
        upcoming(self, pending)
        reading_ahead.append(len(self._reading))

    monkeypatch.setattr(FeatureStage, "upcoming", spy)
    results = {}
    for decoders in ("1", "3"):
        workdir = tmp_path / f"work{decoders}"
        code = main(["extract", str(folder), "--stages", "features", "--weights", "random", "--decoders", decoders,
                     "--workdir", str(workdir), "-q"])
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert code == 1 and len(errors) == 1 and "b_broken.mp4" in errors[0]
        results[decoders] = {p.name: p.read_bytes() for p in (workdir / "features").glob("*/*.npy")}
    assert len(results["1"]) == len(videos) and results["1"] == results["3"]
    assert max(reading_ahead) == 2  # with --decoders 3, two videos read ahead (none with 1)


def test_batch_size_and_input_path_follow_the_device(tmp_path: Path) -> None:
    cpu = FeatureStage(ExtractConfig(device="cpu", weights="random"), Workspace(tmp_path))
    assert (cpu.batch_size, cpu.preprocess, cpu.decoders) == (4, "host", 1)
    assert "preprocess" not in cpu.config()  # CPU caches made before the option existed stay valid
    chosen = FeatureStage(ExtractConfig(device="cpu", weights="random", batch_size=8, preprocess="device",
                                        decoders=2), Workspace(tmp_path))
    assert (chosen.batch_size, chosen.preprocess, chosen.decoders) == (8, "device", 2)
    assert chosen.config()["preprocess"] == "device"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none)")
def test_cuda_input_path_matches_the_cpu(tmp_path: Path, i3d_weights: Path) -> None:
    """On CUDA (defaults: batch 32, resize and crops on the GPU, 4 videos decoded at once, asynchronous copies):
    fp32 features equal the CPU's with the same preprocessing within 1e-3 relative; fp16 (CUDA's default) cosine
    >= 0.999 per snippet."""
    clip = shared_path("real-clips", "bikes.mp4")
    features = {}
    for name, args in {"cpu": ["--device", "cpu", "--preprocess", "device", "--precision", "fp32"],
                       "cuda-fp32": ["--device", "cuda", "--precision", "fp32"],
                       "cuda-fp16": ["--device", "cuda"]}.items():
        workdir = tmp_path / name
        assert main(["extract", str(clip), "--stages", "features", "--weights", str(i3d_weights), *args,
                     "--workdir", str(workdir), "-q"]) == 0
        (path,) = (workdir / "features").glob("*/*.npy")
        features[name] = np.load(path)
    cpu = features["cpu"]
    assert np.abs(features["cuda-fp32"] - cpu).max() <= 1e-3 * np.abs(cpu).max()
    flat_c, flat_h = cpu.reshape(len(cpu), -1), features["cuda-fp16"].reshape(len(cpu), -1)
    cosine = (flat_c * flat_h).sum(1) / (np.linalg.norm(flat_c, axis=1) * np.linalg.norm(flat_h, axis=1))
    assert cosine.min() >= 0.999


class _TensorReader:
    """A reader whose chunks are torch tensors, as torchcodec's on a GPU (here on the CPU)."""

    def __init__(self, frames: np.ndarray):
        from vad_pipeline.io.decode import VideoInfo

        self.frames = frames
        self.info = VideoInfo("clip", 25.0, len(frames), frames.shape[2], frames.shape[1], "tensor")

    def iter_chunks(self, chunk_frames: int):
        for start in range(0, len(self.frames), chunk_frames):
            yield torch.from_numpy(self.frames[start : start + chunk_frames])


def test_frames_left_on_the_device_make_the_same_features(tmp_path: Path) -> None:
    """Frames a GPU decoder leaves on the device (torch tensors) are cut, padded and preprocessed as numpy frames:
    the same features, the trailing partial snippet padded the same way."""
    frames = _frames("carphone_pristine.mp4", 120)[:75]  # 4 snippets + 11 frames: the fifth one padded
    stage = FeatureStage(ExtractConfig(device="cpu", weights="random", preprocess="device", tail="pad",
                                       batch_size=2), Workspace(tmp_path))
    stage.prepare()

    class _NumpyReader(_TensorReader):
        def iter_chunks(self, chunk_frames: int):
            for start in range(0, len(self.frames), chunk_frames):
                yield self.frames[start : start + chunk_frames]

    results = []
    for reader in (_NumpyReader(frames), _TensorReader(frames)):
        batches = list(stage.snippet_batches(reader, 5, raw=True))
        assert [start for start, _ in batches] == [0, 2, 4]
        results.append(np.concatenate([f for _, f in stage.feature_batches(batches, raw=True)]))
    assert results[0].shape == (5, 1, 1024)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.skipif(importlib.util.find_spec("torchcodec") is None,
                    reason="torchcodec (the gpu-decode extra) is not installed")
def test_torchcodec_decoder_extracts_the_same_features(tmp_path: Path) -> None:
    """``extract --decoder torchcodec`` (on the CPU here) writes the default decoder's features (same pixels)."""
    clip = shared_path("real-clips", "carphone_pristine.mp4")
    arrays = []
    for decoder in ("auto", "torchcodec"):
        workdir = tmp_path / decoder
        code = main(["extract", str(clip), "--stages", "features", "--weights", "random", "--decoder", decoder,
                     "--device", "cpu", "--workdir", str(workdir), "-q"])
        if code != 0 and decoder == "torchcodec":
            pytest.skip("torchcodec is installed but cannot load FFmpeg's libraries here")
        (path,) = (workdir / "features").glob("*/*.npy")
        arrays.append(np.load(path))
    np.testing.assert_array_equal(arrays[0], arrays[1])


def test_a_bundle_gets_the_preprocessing_it_was_trained_with(tmp_path: Path, synthetic_dataset) -> None:
    """``predict`` / ``watch`` shape the features stage from the bundle: asked for device preprocessing (a GPU's
    default), a bundle trained on OpenCV-preprocessed features still gets OpenCV's (and the reverse), instead of a
    refusal naming the difference; the live path (``snippet_features``) then gives the file path's features."""
    from types import SimpleNamespace

    from vad_pipeline.models.weak_kind import feature_stage_for

    workspace = Workspace(tmp_path / "w")
    for trained in ("host", "device"):
        made = FeatureStage(ExtractConfig(device="cpu", weights="random", preprocess=trained), workspace)
        bundle = SimpleNamespace(features={"source": "workspace", "config": made.config()})
        for asked in ("host", "device"):
            stage = feature_stage_for(workspace, bundle, None,
                                      ExtractConfig(device="cpu", preprocess=asked, progress=False))
            assert stage.preprocess == trained and stage.config() == made.config()
    _, videos = synthetic_dataset
    stage.prepare()
    reader = open_video(videos[0].path)
    frames = next(reader.iter_chunks(16))
    (_, batch), = list(stage.snippet_batches(_TensorReader(frames), 1, raw=True))
    expected = next(stage.feature_batches([(0, batch)], raw=True))[1][0]
    np.testing.assert_array_equal(stage.snippet_features(frames), expected)
