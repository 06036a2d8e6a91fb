"""What ``vad-pipeline report`` may be asked for: :class:`ReportConfig` and the evaluation's conventions,
:class:`EvalConfig`, the single source of their defaults. Free of numpy and matplotlib, so that the command line
builds its options from these fields at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FRAME_CONVENTIONS = ("snippets", "video", "xd")
PROPOSAL_MODES = ("largest", "all")
SINGLE_CLASS_MODES = ("skip", "pad")
EVALUATED_SPLITS = ("test", "all")


@dataclass(frozen=True)
class EvalConfig:
    """Conventions of the evaluation (see :mod:`vad_pipeline.postprocess.metrics`)."""

    frames: str = "snippets"  # evaluated frames per video: snippets (16 T), video (all decoded) or xd
    normalize: bool = False  # min-max the frame scores within each video (object-centric convention)
    sigma: float = 0.0  # temporal Gaussian smoothing of the frame scores
    proposals: str = "largest"  # largest or all
    proposal_threshold: float = 0.35
    alarm_threshold: float = 0.5
    target_recall: float = 0.9
    single_class: str = "skip"
    split: str = "test"  # test: videos of the test split; all: every scored video


@dataclass(frozen=True)
class ReportConfig:
    """Options of ``vad-pipeline report``."""

    gt: tuple[Path, ...] = ()
    out: Path | None = None
    runs: str = "all"  # all scores runs, or comma-separated run folder names / method names (see load_runs)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    max_videos: int = 24  # per-video sections in the HTML
    thumbnails: int = 8
    open_browser: bool = False
    accuracy: Path | None = None  # an accuracy.json of benchmarks/accuracy.py to show (default <workdir>/accuracy.json)
    predictions: tuple[Path, ...] = ()  # `predict` output folders to show (default: every one in the workdir)
