"""What ``train`` / ``score --method ssmtl`` may be asked for: :class:`SSMTLConfig` (and how object sequences are cut,
:class:`ObjectConfig`), the single source of SSMTL's defaults, and the vocabularies of its options. Torch-free, so
that the command line builds its options from these fields without loading a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TASKS = ("aot", "mi", "mbp", "kd")  # the paper's four, trained jointly by the network (the default)
# attributes scored against the normal training objects' (task -> the objects' field, the metric, the neighbours)
MEMORY_TASKS = {"knn": ("teacher", "cosine", 3), "vel": ("velocity", "euclidean", 3),
                "speed": ("velocity", "excess", 64)}
# attributes of whole frames, not objects: ``motion``, how much the scene moves (the frame-difference energy,
# ``detectors.motion.FrameDifference``) against the training frames; blended into each frame's score
FRAME_TASKS = ("motion",)
TASK_CHOICES = TASKS + tuple(MEMORY_TASKS) + FRAME_TASKS
LR_SCHEDULES = ("constant", "cosine")
VARIANT_NAMES = ("shallow-narrow", "shallow-wide", "deep-narrow", "deep-wide")  # network.VARIANTS' keys


@dataclass(frozen=True)
class ObjectConfig:
    """How object sequences are cut."""

    half_window: int = 3  # t: consecutive sequences hold 2t + 1 frames
    max_step: int = 2  # intermittent sequences skip up to this many frames per step
    size: int = 64  # crop side in pixels (the paper: 64)
    frame_stride: int = 1  # keep the objects of every k-th frame (training videos)
    min_box: float = 0.025  # boxes narrower or shorter than this fraction of the frame height are left out (6 px
    # of Ped2's 240 rows): a fraction, so the rule is the same at any resolution
    decoder: str = "auto"

    @property
    def window(self) -> int:
        return 2 * self.half_window * self.max_step + 1


@dataclass(frozen=True)
class SSMTLConfig:
    """Options of ``vad-pipeline score --method ssmtl`` and ``train --method ssmtl``."""

    tracks: Path | None = None
    tracks_tag: str | None = None
    labels: Path | None = None
    train_list: Path | None = None
    test_list: Path | None = None
    variant: str = "shallow-narrow"
    tasks: tuple[str, ...] = TASKS
    objects: ObjectConfig = field(default_factory=ObjectConfig)
    train_stride: int = 1  # objects of every k-th frame of the training videos
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # cosine (decays to 0 over the epochs) or constant (the paper's Adam at a fixed rate)
    # Left-right mirrored motion counts as equally normal: a random half of each training batch is mirrored and each
    # object scores the mean of its own and its mirrored window's task scores. Off by default: direction is
    # information (walking the wrong way in a one-way scene is an anomaly); on for scenes crossed both ways.
    mirror: bool = False
    seed: int = 0
    sigma: float = 3.0
    teacher_weights: Path | None = None
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    # auto (bf16 where the device computes it natively, else fp32), fp32, or mixed precision: bf16 (1.5x faster
    # epochs on a 2-core AVX-512 BF16 CPU: Ped2 58 s -> 38 s; emulated, 14-37x slower, so refused elsewhere) or fp16
    precision: str = "auto"
    far: float = 0.01  # false-alarm budget of the alarm threshold: fraction of normal frames above it
    holdout: float = 0.0  # fraction of the normal training videos held out to calibrate it (train: 0.2)
    # with the frame attribute "motion" among the tasks: its share of each frame's score (0.1: with sigma 8 and the
    # detector's boxes beside the motion proposals, the best mean of the six development AUCs, micro and macro on
    # Ped2, Ped2 at 238 x 158 and Avenue-8, among 0-0.3; docs/results-single-scene.md)
    motion_weight: float = 0.1
    out: Path | None = None  # also write the bundle here
    force: bool = False
    progress: bool = True
