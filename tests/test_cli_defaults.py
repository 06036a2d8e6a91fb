"""Each CLI default equals its config dataclass's default: the dataclass is the single source, and this test fails
the moment an argparse literal drifts from it."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import pytest

from vad_pipeline.cli import build_parser
from vad_pipeline.detectors.tracks import TrackConfig
from vad_pipeline.extractors.extract import ExtractConfig
from vad_pipeline.models.ssmtl import ObjectConfig, SSMTLConfig


def _parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _default(config: Any, field: str) -> Any:
    return {f.name: f for f in dataclasses.fields(config)}[field].default


EXTRACT = [  # (option's dest, config class, field)
    ("backbone", ExtractConfig, "backbone"), ("weights", ExtractConfig, "weights"),
    ("device", ExtractConfig, "device"), ("batch_size", ExtractConfig, "batch_size"),
    ("decoder", ExtractConfig, "decoder"), ("threads", ExtractConfig, "threads"),
    ("precision", ExtractConfig, "precision"), ("objects", TrackConfig, "objects"),
    ("detector", TrackConfig, "detector"), ("conf", TrackConfig, "conf"), ("imgsz", TrackConfig, "imgsz"),
    ("frame_stride", TrackConfig, "frame_stride"), ("preprocess", ExtractConfig, "preprocess"),
    ("decoders", ExtractConfig, "decoders"), ("track_batch", TrackConfig, "batch"), ("device", TrackConfig, "device"),
]
SSMTL = [
    ("variant", SSMTLConfig, "variant"), ("train_stride", SSMTLConfig, "train_stride"),
    ("sigma", SSMTLConfig, "sigma"), ("device", SSMTLConfig, "device"), ("mirror", SSMTLConfig, "mirror"),
    ("precision", SSMTLConfig, "precision"), ("motion_weight", SSMTLConfig, "motion_weight"),
    ("teacher_weights", SSMTLConfig, "teacher_weights"), ("crop_size", ObjectConfig, "size"),
    ("half_window", ObjectConfig, "half_window"), ("max_step", ObjectConfig, "max_step"),
]


TRAINING = [("far", "train"), ("holdout", "train"), ("far", "score"), ("holdout", None), ("device", "train"),
            ("device", "score"), ("precision", "train"), ("precision", "score"), ("crop_pool", "train"),
            ("crop_pool", "score")]


@pytest.mark.parametrize("dest,command", TRAINING, ids=[f"{c}-{d}" for d, c in TRAINING])
def test_training_defaults_come_from_the_configs(dest: str, command: str | None) -> None:
    from vad_pipeline.models.score import ScoreConfig, TrainConfig

    if command is None:  # score has no --holdout: benchmarks train on the whole training split
        assert _default(ScoreConfig, dest) == 0.0
        return
    config = TrainConfig if command == "train" else ScoreConfig
    assert getattr(_parsed(command), dest) == _default(config, dest)


def test_demo_and_predict_defaults_come_from_the_configs() -> None:
    from vad_pipeline.demo import DemoConfig
    from vad_pipeline.predict import PredictConfig

    demo = _parsed("demo")
    assert (demo.videos_per_class, demo.frames, demo.new_videos, demo.seed, demo.device) == (
        DemoConfig.per_class, DemoConfig.frames, DemoConfig.new_videos, DemoConfig.seed, DemoConfig.device)
    from vad_pipeline.watch import WatchConfig

    watch = _parsed("watch", "0", "--model", "m.pt")
    assert (watch.context, watch.clip_seconds, watch.retries, watch.threshold, watch.realtime) == (
        WatchConfig.context, WatchConfig.clip_seconds, WatchConfig.retries, WatchConfig.threshold,
        WatchConfig.realtime)
    predict = _parsed("predict", "--model", "m.pt")
    assert (predict.threshold, predict.batch_size, predict.device) == (
        PredictConfig.threshold, _default(ExtractConfig, "batch_size"), _default(ExtractConfig, "device"))


@pytest.mark.parametrize("dest,config,field", EXTRACT, ids=[e[0] for e in EXTRACT])
def test_extract_defaults_come_from_the_configs(dest: str, config: Any, field: str) -> None:
    assert getattr(_parsed("extract", "videos/"), dest) == _default(config, field)


@pytest.mark.parametrize("dest,config,field", SSMTL, ids=[e[0] for e in SSMTL])
def test_ssmtl_defaults_come_from_the_configs(dest: str, config: Any, field: str) -> None:
    assert getattr(_parsed("score", "--method", "ssmtl"), dest) == _default(config, field)


@pytest.mark.parametrize("method", ["ssmtl", "mil"])
@pytest.mark.parametrize("command", ["score", "train"])
def test_options_left_out_are_the_configs_own(method: str, command: str) -> None:
    """Every option left out gives the configuration the kind builds its own default, field for field (the
    options whose argparse default is None, epochs, lr, batch size, included; ``train`` holds out 20 % of the
    normal videos to calibrate, ``score`` none)."""
    from vad_pipeline.cli import _method_config
    from vad_pipeline.models.score import ScoreConfig, TrainConfig

    args = _parsed(command, "--method", method, "--workdir", "/nonexistent-workspace", "-q")
    _, config = _method_config(args, command)
    expected = (SSMTLConfig(holdout=TrainConfig.holdout) if command == "train" else SSMTLConfig()) \
        if method == "ssmtl" else (TrainConfig if command == "train" else ScoreConfig)(method=method)
    assert dataclasses.replace(config, progress=True) == expected


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--lr", "0"], ["--batch-size", "-1"]])
def test_zero_epochs_or_rate_is_an_error_not_the_default(option: list[str], capsys) -> None:
    from vad_pipeline.cli import main

    for method in ("mil", "ssmtl"):
        assert main(["score", "--method", method, *option, "--workdir", "/nonexistent-workspace"]) != 0
        assert f"{option[0]} {option[1]}: must be positive" in capsys.readouterr().err


def _choices(subcommand: list[str], dest: str) -> tuple:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[subcommand[0]]
    return tuple(next(a for a in sub._actions if a.dest == dest).choices)


def test_cli_choices_come_from_the_code() -> None:
    """Option choices written in the parser (it imports no models) equal the lists the code accepts."""
    from vad_pipeline.devices import PRECISION_CHOICES
    from vad_pipeline.extractors.extract import PRECISIONS as EXTRACT_PRECISIONS
    from vad_pipeline.models.ssmtl.runner import LR_SCHEDULES

    assert _choices(["score"], "lr_schedule") == LR_SCHEDULES
    assert _choices(["score"], "precision") == PRECISION_CHOICES
    assert _choices(["extract"], "precision") == EXTRACT_PRECISIONS


def test_crops_and_tail_follow_the_dataset_split_else_the_config(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--crops`` / ``--tail`` unset: a dataset split's own (UCSD Ped2 weak: ten crops, padded tail), else the
    ``ExtractConfig`` defaults; what the user passes wins."""
    import vad_pipeline.cli as cli
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

    from vad_pipeline.frames import DEFAULT_FRAME_RATE

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

    from vad_pipeline.cli import main

    logger = logging.getLogger("vad_pipeline")
    before = (list(logger.handlers), logger.level, logger.propagate)
    assert main(["status", "--workdir", "/nonexistent-workspace-for-this-test"]) in (0, 2)
    assert (list(logger.handlers), logger.level, logger.propagate) == before
    capsys.readouterr()
    logging.getLogger("vad_pipeline.models.score").warning("after the command")
    assert "Logging error" not in capsys.readouterr().err
