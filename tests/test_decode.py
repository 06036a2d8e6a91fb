"""Decoding real and generated videos, and one clear error line for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from vad_pipeline.decode import open_video
from vad_pipeline.errors import VideoError


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
