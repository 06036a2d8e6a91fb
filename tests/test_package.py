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


def test_every_folder_of_the_package_is_in_the_distribution() -> None:
    """An editable install finds any folder; a wheel holds only what ``pyproject.toml`` lists. Every folder with
    Python modules is a listed package, and every file of a data folder (the report's templates) matches its
    package-data patterns, so a room added to ``pipeline/`` cannot vanish from a plain install."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    repo = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    roots = {Path(folder): name for name, folder in setuptools["package-dir"].items()}
    listed, data = set(setuptools["packages"]), setuptools.get("package-data", {})
    found: dict[str, list[str]] = {}
    for root, name in roots.items():
        for folder in [repo / root, *(p for p in (repo / root).rglob("*") if p.is_dir())]:
            if folder.name in ("__pycache__",) or any(part.startswith(".") for part in folder.parts):
                continue
            files = [f.name for f in folder.iterdir() if f.is_file() and not f.name.endswith(".pyc")]
            if files:
                relative = folder.relative_to(repo / root).parts
                found[".".join([name, *relative])] = files
    assert set(found) <= listed, f"folders missing from [tool.setuptools] packages: {sorted(set(found) - listed)}"
    for package, files in found.items():
        if not any(f.endswith(".py") for f in files):
            patterns = data.get(package, [])
            assert all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in files), f"{package}: {files} vs {patterns}"
