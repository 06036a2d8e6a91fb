"""The distribution installs one import package, vad_pipeline, assembled from the top-level folders."""

import importlib
import importlib.metadata

import pytest


@pytest.mark.parametrize("name", ["extractors", "detectors", "models", "postprocess"])
def test_parts_are_subpackages_of_vad_pipeline(name: str) -> None:
    module = importlib.import_module(f"vad_pipeline.{name}")
    assert module.__file__ is not None
    assert module.__file__.replace("\\", "/").endswith(f"/{name}/__init__.py")


def test_only_vad_pipeline_is_installed_at_top_level() -> None:
    distribution = importlib.metadata.distribution("vad-pipeline")
    top_level = (distribution.read_text("top_level.txt") or "").split()
    assert top_level == ["vad_pipeline"]


def test_console_script_is_declared() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(ep.name == "vad-pipeline" and ep.value == "vad_pipeline.commands.cli:main" for ep in scripts)


def test_the_docs_site_builds_without_a_warning(tmp_path) -> None:
    """``mkdocs build --strict``: every page in the nav, every link and anchor between pages resolves."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "guide" / "index.html").is_file()
