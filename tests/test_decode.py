"""Decoding real and generated videos, and one clear error line for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.errors import VideoError
from vad_pipeline.io.decode import open_video


@pytest.mark.parametrize("decoder", ["decord", "opencv"])
def test_real_clips_metadata_and_full_stream(decoder: str) -> None:
    expected = {"bikes.mp4": (250, 25.0, 640, 272), "carphone_pristine.mp4": (120, 29.97, 176, 144)}
    for name, (frames, fps, width, height) in expected.items():
        reader = open_video(shared_path("real-clips", name), decoder)
        info = reader.info
        assert (info.frames, info.width, info.height) == (frames, width, height)
        assert info.fps == pytest.approx(fps, abs=0.01)
        chunks = list(reader.iter_chunks(48))
        assert sum(len(c) for c in chunks) == frames
        assert all(c.dtype == np.uint8 and c.shape[1:] == (height, width, 3) for c in chunks)
        assert all(len(c) == 48 for c in chunks[:-1])


def test_decoders_agree_on_pixels() -> None:
    path = shared_path("real-clips", "carphone_pristine.mp4")
    a = np.concatenate(list(open_video(path, "decord").iter_chunks(32)))
    b = np.concatenate(list(open_video(path, "opencv").iter_chunks(32)))
    assert a.shape == b.shape
    # Both wrap FFmpeg's H.264 decoder; colour conversion may differ by a level or two.
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_decord_context_is_the_one_it_reports(synthetic_dataset) -> None:
    """Asked for the GPU, decord decodes on it only when it was built with CUDA and a GPU exists (the PyPI wheel
    has no CUDA: then the CPU context), and ``info.decoder`` names the context it used."""
    import decord
    import torch

    _, videos = synthetic_dataset
    gpu_possible = torch.cuda.is_available() and hasattr(decord, "gpu")
    if gpu_possible:
        try:
            decord.VideoReader(str(videos[0].path), ctx=decord.gpu(0))
        except Exception:  # decord without CUDA support raises here
            gpu_possible = False
    reader = open_video(videos[0].path, "decord", want_gpu=True)
    assert reader.info.decoder == ("decord-gpu" if gpu_possible else "decord-cpu")
    assert len(next(reader.iter_chunks(8))) == 8
    reader.close()


def _mjpeg_avi(path: Path, frames: int = 48) -> bytes:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path.read_bytes()


@pytest.mark.parametrize("decoder", ["decord", "opencv"])
def test_bad_files_give_one_clear_line(tmp_path: Path, decoder: str) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    real = shared_path("real-clips", "bikes.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(real[: len(real) // 2])
    truncated_avi = tmp_path / "truncated.avi"
    truncated_avi.write_bytes(_mjpeg_avi(tmp_path / "full.avi")[:-60_000])
    cases = ((empty, "empty"), (text, "cannot be decoded"), (truncated, "truncated"), (truncated_avi, "truncated"))
    for path, words in cases:
        with pytest.raises(VideoError) as error:
            reader = open_video(path, decoder)
            for _ in reader.iter_chunks(32):
                pass
        message = str(error.value)
        assert str(path) in message and words in message
        assert "\n" not in message


def _torchcodec_loads() -> bool:
    import importlib

    try:
        importlib.import_module("torchcodec.decoders")  # needs FFmpeg's shared libraries too
    except Exception:
        return False
    return True


needs_torchcodec = pytest.mark.skipif(not _torchcodec_loads(),
                                      reason="torchcodec (the gpu-decode extra) or FFmpeg's libraries not installed")


@needs_torchcodec
@pytest.mark.parametrize("clip", [("real-clips", "bikes.mp4"), ("real-clips", "carphone_pristine.mp4"),
                                  ("ucsd-ped2-h264", "testing", "04.mkv")])
def test_torchcodec_reader_decodes_the_same_pixels(clip: tuple[str, ...]) -> None:
    """``--decoder torchcodec`` on the CPU: the same metadata and exactly the same RGB pixels as the default reader
    (OpenCV for mp4, decord for mkv: all three wrap FFmpeg)."""
    path = shared_path(*clip)
    codec, default = open_video(path, "torchcodec"), open_video(path)
    assert codec.info.decoder == "torchcodec-cpu"
    assert (codec.info.frames, codec.info.width, codec.info.height) == (default.info.frames, default.info.width,
                                                                        default.info.height)
    assert codec.info.fps == pytest.approx(default.info.fps, abs=1e-3)
    chunks = list(codec.iter_chunks(48))
    assert all(isinstance(c, np.ndarray) and c.dtype == np.uint8 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), np.concatenate(list(default.iter_chunks(48))))


@needs_torchcodec
def test_torchcodec_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    with pytest.raises(VideoError) as error:
        open_video(bad, "torchcodec")
    message = str(error.value)
    assert "notes.mp4" in message and "\n" not in message and "re-encode" in message


@needs_torchcodec
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device here (CI has none)")
def test_torchcodec_on_the_gpu_leaves_frames_there() -> None:
    """NVDEC through torchcodec (what ``auto`` picks on a GPU when it loads): frames stay on the GPU as uint8
    tensors, within two grey levels on average of the CPU's (the GPU converts YUV to RGB its own way)."""
    import torch

    path = shared_path("real-clips", "bikes.mp4")
    reader = open_video(path, "auto", want_gpu=True)
    assert reader.info.decoder == "torchcodec-cuda"
    chunks = list(reader.iter_chunks(64))
    assert all(isinstance(c, torch.Tensor) and c.is_cuda and c.dtype == torch.uint8 for c in chunks)
    gpu = torch.cat(chunks).cpu().numpy()
    cpu = np.concatenate(list(open_video(path).iter_chunks(64)))
    assert gpu.shape == cpu.shape and np.abs(gpu.astype(int) - cpu.astype(int)).mean() < 2.0
