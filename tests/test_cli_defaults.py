"""Each CLI default is its config dataclass's: the parser reads it from the field (``cli._option``), and these tests
walk every option of every command to prove it, failing the moment an option is added without a source."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from typing import Any

import pytest

from vad_pipeline.commands.cli import build_parser
from vad_pipeline.detectors.config import TrackConfig
from vad_pipeline.extractors.config import ExtractConfig
from vad_pipeline.models.ssmtl.config import ObjectConfig, SSMTLConfig


def _parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _default(config: Any, field: str) -> Any:
    spec = {f.name: f for f in dataclasses.fields(config)}[field]
    return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default


def _parameter(function: Any, name: str) -> Any:
    return inspect.signature(function).parameters[name].default


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub-)command's parser by its name (``weights install`` for a nested one)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _subcommands(sub, f"{prefix}{name} ")
                found.update(nested or {f"{prefix}{name}": sub})
    return found


NO_CONFIG = "no config"  # an option that selects or shapes the run itself, not a stage's setting


def _sources() -> dict[tuple[str, str], Any]:
    """Where each option's default lives: ``(config dataclass, field)``, ``(function, parameter)``, or a value
    documented elsewhere with the reason it is not a field. Every option of every command is listed."""
    from vad_pipeline.commands.demo import DemoConfig
    from vad_pipeline.extractors.extract import extract_videos, install_weights
    from vad_pipeline.io.frames import DEFAULT_FRAME_RATE
    from vad_pipeline.models.export import export_model
    from vad_pipeline.models.score import ScoreConfig, TrainConfig
    from vad_pipeline.postprocess.config import EvalConfig, ReportConfig
    from vad_pipeline.commands.predict import PredictConfig
    from vad_pipeline.core.ray_executor import RayExecutor
    from vad_pipeline.commands.watch import WatchConfig

    common = {"workdir": "the workspace: ./vad-work or $VAD_WORKDIR", "verbose": NO_CONFIG, "quiet": NO_CONFIG}
    scale = {"executor": NO_CONFIG + ": local, or RayExecutor", "address": (RayExecutor, "address"),
             "workers": (RayExecutor, "workers"), "cpus_per_worker": (RayExecutor, "cpus_per_worker")}
    backbone = {"weights": (ExtractConfig, "weights"), "device": (ExtractConfig, "device"),
                "threads": (ExtractConfig, "threads")}
    extract = {
        "videos": "a positional argument", "backbone": (ExtractConfig, "backbone"), **backbone,
        "crops": "None: the dataset split's crops, else ExtractConfig.crops",
        "batch_size": (ExtractConfig, "batch_size"), "preprocess": (ExtractConfig, "preprocess"),
        "decoders": (ExtractConfig, "decoders"), "tail": "None: the dataset split's tail, else ExtractConfig.tail",
        "decoder": (ExtractConfig, "decoder"), "precision": (ExtractConfig, "precision"),
        "fps": ("value", None, DEFAULT_FRAME_RATE), "split": "None: the dataset's standard split",
        "stages": ("value", "features,tracks", "both stages (extract_videos' own default is features only)"),
        "detector": (TrackConfig, "detector"), "conf": (TrackConfig, "conf"), "imgsz": (TrackConfig, "imgsz"),
        "objects": (TrackConfig, "objects"), "classes": "None: TrackConfig.classes, every class",
        "frame_stride": (TrackConfig, "frame_stride"), "track_batch": (TrackConfig, "batch"),
        "force": (extract_videos, "force"), **scale, **common,
    }

    def training(config: type) -> dict[str, Any]:
        fields = ("method", "base", "features", "features_tag", "labels", "train_list", "test_list", "seed", "epochs",
                  "lr", "batch_size", "options", "xel_update", "far", "device", "precision", "crop_pool", "force")
        return {name: (config, name) for name in fields} | {
            "far": (config, "far", SSMTLConfig), "device": (config, "device", SSMTLConfig),
            "precision": (config, "precision", SSMTLConfig), "seed": (config, "seed", SSMTLConfig),
            "tracks": (SSMTLConfig, "tracks"), "tracks_tag": (SSMTLConfig, "tracks_tag"),
            "variant": (SSMTLConfig, "variant"), "tasks": (SSMTLConfig, "tasks"),
            "motion_weight": (SSMTLConfig, "motion_weight"), "crop_size": (ObjectConfig, "size"),
            "half_window": (ObjectConfig, "half_window"), "max_step": (ObjectConfig, "max_step"),
            "train_stride": (SSMTLConfig, "train_stride"), "sigma": (SSMTLConfig, "sigma"),
            "lr_schedule": (SSMTLConfig, "lr_schedule"), "mirror": (SSMTLConfig, "mirror"),
            "teacher_weights": (SSMTLConfig, "teacher_weights"), **common}

    return {(command, dest): source for command, table in {
        "extract": extract,
        "status": {"json": NO_CONFIG, **common},
        "score": training(ScoreConfig) | scale,
        "train": training(TrainConfig) | {"holdout": (TrainConfig, "holdout"), "out": (TrainConfig, "out")},
        "predict": {"videos": "a positional argument", "model": (PredictConfig, "model"),
                    "threshold": (PredictConfig, "threshold"), **backbone, "fps": (PredictConfig, "fps"),
                    "features": (PredictConfig, "features"), "tracks": (PredictConfig, "tracks"),
                    "out": (PredictConfig, "out"), "batch_size": (ExtractConfig, "batch_size"),
                    "decoder": (ExtractConfig, "decoder"), **scale, **common},
        "watch": {"source": "a positional argument", "model": (WatchConfig, "model"),
                  "threshold": (WatchConfig, "threshold"), **backbone, "fps": (WatchConfig, "fps"),
                  **{name: (WatchConfig, name) for name in ("realtime", "out", "context", "clip_seconds",
                                                             "retries")}, **common},
        "export": {"model": "a required option", "fmt": (export_model, "fmt"), "out": (export_model, "out"),
                   **common},
        "weights install": {"backbone": "a positional argument", "source": (install_weights, "source"),
                            "force": (install_weights, "force"), **common},
        "weights where": common,
        "report": {"gt": (ReportConfig, "gt"), "out": (ReportConfig, "out"), "runs": (ReportConfig, "runs"),
                   "frames": "None: the recorded dataset's convention, else EvalConfig.frames",
                   "normalize": "None: the recorded dataset's convention, else EvalConfig.normalize",
                   **{name: (EvalConfig, name) for name in ("sigma", "proposals", "proposal_threshold",
                                                            "alarm_threshold", "target_recall", "single_class",
                                                            "split")},
                   "max_videos": (ReportConfig, "max_videos"), "open": (ReportConfig, "open_browser"),
                   "predictions": (ReportConfig, "predictions"), "accuracy": (ReportConfig, "accuracy"), **common},
        "demo": {"videos_per_class": (DemoConfig, "per_class"),
                 **{name: (DemoConfig, name) for name in ("new_videos", "frames", "seed", "weights", "device")},
                 **common},
    }.items() for dest, source in table.items()}


def _as_parsed(value: Any) -> Any:
    """A config default as argparse holds it: tuples of names comma-separated, empty collections as lists."""
    if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, (tuple, dict)) and not value:
        return []
    return value


def test_every_option_of_every_command_takes_its_default_from_one_source() -> None:
    """Builds the parser and walks every option of every command: each one's default equals the field of the config
    dataclass (or the parameter of the function) it feeds, or it is listed with the reason it has none. An option
    added without an entry here, or an argparse literal drifting from its dataclass, fails."""
    sources = _sources()
    seen: set[tuple[str, str]] = set()
    checked = 0
    for command, sub in _subcommands(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            key = (command, action.dest)
            seen.add(key)
            assert key in sources, f"{command} --{action.dest}: say which config field its default comes from"
            source = sources[key]
            if isinstance(source, str):
                continue
            if source[0] == "value":
                assert action.default == source[1], f"{command} --{action.dest}: {action.default!r}"
                continue
            owner, name, *others = source
            expected = _parameter(owner, name) if callable(owner) and not dataclasses.is_dataclass(owner) \
                else _default(owner, name)
            assert action.default == _as_parsed(expected), (
                f"{command} --{action.dest}: parser default {action.default!r}, {owner.__name__}.{name} {expected!r}")
            for other in others:  # a shared option (score / train) must suit every kind's config
                assert _default(other, name) == expected, f"{command} --{action.dest}: {other.__name__} differs"
            checked += 1
    assert not set(sources) - seen, f"listed but no such option: {sorted(set(sources) - seen)}"
    assert checked >= 120


def test_an_option_drifting_from_its_config_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk above fails when one default changes on one side only."""
    import vad_pipeline.commands.cli as cli

    real = cli._default_of
    monkeypatch.setattr(cli, "_default_of", lambda config, name: 0.02 if name == "far" else real(config, name))
    with pytest.raises(AssertionError, match="--far"):
        test_every_option_of_every_command_takes_its_default_from_one_source()


def test_score_has_no_holdout_and_calibrates_on_the_training_normals() -> None:
    from vad_pipeline.models.score import ScoreConfig

    assert _default(ScoreConfig, "holdout") == 0.0 and not hasattr(_parsed("score"), "holdout")


@pytest.mark.parametrize("method", ["ssmtl", "mil"])
@pytest.mark.parametrize("command", ["score", "train"])
def test_options_left_out_are_the_configs_own(method: str, command: str) -> None:
    """Every option left out gives the configuration the kind builds its own default, field for field (the
    options whose argparse default is None, epochs, lr, batch size, included; ``train`` holds out 20 % of the
    normal videos to calibrate, ``score`` none)."""
    from vad_pipeline.commands.cli import _method_config
    from vad_pipeline.models.score import ScoreConfig, TrainConfig

    args = _parsed(command, "--method", method, "--workdir", "/nonexistent-workspace", "-q")
    _, config = _method_config(args, command)
    expected = (SSMTLConfig(holdout=TrainConfig.holdout) if command == "train" else SSMTLConfig()) \
        if method == "ssmtl" else (TrainConfig if command == "train" else ScoreConfig)(method=method)
    assert dataclasses.replace(config, progress=True) == expected


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--lr", "0"], ["--batch-size", "-1"]])
def test_zero_epochs_or_rate_is_an_error_not_the_default(option: list[str], capsys) -> None:
    from vad_pipeline.commands.cli import main

    for method in ("mil", "ssmtl"):
        assert main(["score", "--method", method, *option, "--workdir", "/nonexistent-workspace"]) != 0
        assert f"{option[0]} {option[1]}: must be positive" in capsys.readouterr().err


def _choices(command: str, dest: str) -> tuple:
    sub = _subcommands(build_parser())[command]
    return tuple(next(a for a in sub._actions if a.dest == dest).choices)


def test_cli_choices_come_from_the_code() -> None:
    """The torch-free vocabularies the parser offers equal what the code accepts."""
    from vad_pipeline.io.decode import DECODERS
    from vad_pipeline.core.devices import PRECISION_CHOICES
    from vad_pipeline.extractors.backbones import BACKBONES
    from vad_pipeline.models.ssmtl.network import VARIANTS

    assert _choices("score", "lr_schedule") == ("constant", "cosine")
    assert _choices("score", "precision") == PRECISION_CHOICES == _choices("extract", "precision")
    assert _choices("extract", "backbone") == tuple(BACKBONES)
    assert _choices("score", "variant") == tuple(VARIANTS)
    assert _choices("extract", "decoder") == DECODERS == _choices("predict", "decoder")


def test_crops_and_tail_follow_the_dataset_split_else_the_config(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--crops`` / ``--tail`` unset: a dataset split's own (UCSD Ped2 weak: ten crops, padded tail), else the
    ``ExtractConfig`` defaults; what the user passes wins."""
    import vad_pipeline.commands.cli as cli
    import vad_pipeline.extractors.extract as extract

    seen = []
    monkeypatch.setattr(extract, "extract_videos", lambda workspace, videos, config, **_: seen.append(config) or
                        type("Summary", (), {"ok": True})())
    (tmp_path / "clip").mkdir()
    cli.main(["extract", str(tmp_path / "clip"), "--workdir", str(tmp_path / "w")])
    assert (seen[-1].crops, seen[-1].tail) == (_default(ExtractConfig, "crops"), _default(ExtractConfig, "tail"))
    from conftest import shared_path

    ped2 = shared_path("ucsd-ped2")
    cli.main(["extract", str(ped2), "--split", "weak", "--workdir", str(tmp_path / "w")])
    assert (seen[-1].crops, seen[-1].tail) == ("ten", "pad")
    cli.main(["extract", str(ped2), "--split", "weak", "--crops", "five", "--workdir", str(tmp_path / "w")])
    assert seen[-1].crops == "five"


def test_readme_synopsis_states_the_parsers_defaults() -> None:
    """Every default README's command synopsis writes out (``[--far 0.01]``) is the parser's, which the tests
    above tie to the config dataclasses: one source, read three ways."""
    import re
    from pathlib import Path

    from vad_pipeline.io.frames import DEFAULT_FRAME_RATE

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command line", 1)[1].split("```", 2)[1]
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    effective = {"fps": DEFAULT_FRAME_RATE}  # options whose None default stands for a documented value
    commands: list[str] = []
    checked = 0
    for line in block.splitlines():
        if line.startswith("vad-pipeline "):
            commands = line.split()[1].split("|")
        for option, value in re.findall(r"\[--([a-z-]+) ([0-9][0-9.]*)\]", line):
            for command in commands:
                action = next(a for a in subparsers[command]._actions if f"--{option}" in a.option_strings)
                default = effective.get(action.dest) if action.default is None else action.default
                assert float(default) == float(value), f"README: {command} --{option} {value}, parser: {default}"
                checked += 1
    assert checked >= 15


def test_a_command_leaves_the_package_logger_as_it_found_it(capsys):
    """A command's console handler is gone when it returns: library code logging afterwards (another test, a
    notebook) must never write to a stream the command's caller has since closed."""
    import logging

    from vad_pipeline.commands.cli import main

    logger = logging.getLogger("vad_pipeline")
    before = (list(logger.handlers), logger.level, logger.propagate)
    assert main(["status", "--workdir", "/nonexistent-workspace-for-this-test"]) in (0, 2)
    assert (list(logger.handlers), logger.level, logger.propagate) == before
    capsys.readouterr()
    logging.getLogger("vad_pipeline.models.score").warning("after the command")
    assert "Logging error" not in capsys.readouterr().err


def test_set_values_are_parsed_by_the_options_types() -> None:
    """``--set`` values take the type of the method option they name (resolved type hints, ``X | None`` included);
    a value that does not parse is one clear line."""
    from vad_pipeline.errors import UserError
    from vad_pipeline.models.registry import get_method
    from vad_pipeline.models.score import TrainConfig, build_options

    align = build_options(get_method("align"), TrainConfig(method="align", options={
        "alpha_sparsity": "0.25", "kernel": "none", "gamma_consistency": "2"}))
    assert (align.alpha_sparsity, align.kernel, align.gamma_consistency) == (0.25, None, 2.0)
    xel = build_options(get_method("xel"), TrainConfig(method="xel", options={"k": "5", "bank_size": "7"}))
    assert xel.bank_size == 7 and xel.base_options == {"k": 5}
    with pytest.raises(UserError, match="--set k=three: expected an integer"):
        build_options(get_method("mil"), TrainConfig(options={"k": "three"}))


def test_building_the_parser_loads_no_torch() -> None:
    """The config modules the parser reads its defaults from are torch-free: ``vad-pipeline --help`` and a bad
    option answer without loading a model library."""
    import subprocess
    import sys

    code = ("import sys; from vad_pipeline.commands.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'ultralytics', 'matplotlib', 'decord') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("argv,line", [
    (["extract", "v.mp4", "--batch-size", "0"], "--batch-size 0: must be at least 1"),
    (["extract", "v.mp4", "--threads", "-2"], "--threads -2: must be at least 1"),
    (["extract", "v.mp4", "--frame-stride", "0"], "--frame-stride 0: must be at least 1"),
    (["score", "--crop-pool", "median", "--features", "f"], None),  # argparse refuses it: choices
    (["extract", "v.mp4", "--executor", "ray", "--workers", "0"], "--workers 0: must be at least 1"),
])
def test_bad_numbers_are_one_line_naming_the_option(argv: list[str], line: str | None, tmp_path, capsys) -> None:
    """The configs' own checks (``errors.check_at_least_one`` / ``check_choice``) answer in the option's words,
    before any work starts; argparse answers for its choices."""
    from vad_pipeline.commands.cli import main

    (tmp_path / "v.mp4").write_bytes(b"")
    argv = [str(tmp_path / a) if a == "v.mp4" else a for a in argv]
    try:
        code = main([*argv, "--workdir", str(tmp_path / "w")])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    if line:
        assert line in err and "Traceback" not in err


def test_a_config_refuses_a_value_outside_its_vocabulary() -> None:
    from vad_pipeline.detectors.config import TrackConfig
    from vad_pipeline.errors import UserError
    from vad_pipeline.extractors.config import ExtractConfig

    with pytest.raises(UserError, match=r"^--objects boxes: choose one of detector, motion, both$"):
        TrackConfig(objects="boxes")
    with pytest.raises(UserError, match=r"^--crops nine: choose one of center, five, ten$"):
        ExtractConfig(crops="nine")
