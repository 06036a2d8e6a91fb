"""What ``vad-pipeline extract`` may be asked for: :class:`ExtractConfig`, the single source of the features
stage's defaults, and the vocabularies of its options. Torch-free, so that the command line builds its options from
these fields without loading a model."""

from __future__ import annotations

from dataclasses import dataclass

from vad_pipeline.core.precisions import PRECISION_CHOICES
from vad_pipeline.errors import check_at_least_one, check_choice

CROP_MODES = {"center": 1, "five": 5, "ten": 10}  # crops per snippet
TAIL_MODES = ("drop", "pad")
PRECISIONS = PRECISION_CHOICES  # the extract stage's --precision choices
PREPROCESS_MODES = ("auto", "host", "device")
BACKBONE_NAMES = ("i3d", "i3d_r50")  # backbones.BACKBONES' keys


@dataclass(frozen=True)
class ExtractConfig:
    """Options of ``vad-pipeline extract`` that shape the features (and a few that only shape the speed)."""

    backbone: str = "i3d"
    weights: str | None = None  # a path, "random", or None to look in the usual places
    crops: str = "center"
    tail: str = "drop"
    snippet_frames: int = 16
    short_side: int = 256
    crop_size: int = 224
    # snippets per forward pass (each with all its crops); None: 32 on a GPU, 4 on the CPU
    batch_size: int | None = None
    device: str = "auto"
    decoder: str = "auto"
    # where resize and crops run: "host" (OpenCV, in the decode thread), "device" (the model's device: raw uint8
    # frames travel) or "auto" (device on a GPU, host on the CPU)
    preprocess: str = "auto"
    decoders: int | None = None  # videos decoded at once (the next ones read ahead); None: 4 on a GPU, 1 on the CPU
    prefetch_batches: int = 2
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per physical core)
    # "auto" = fp16 on CUDA; on the CPU bf16 where it is native (AVX-512 BF16 / AMX), else fp32; "fp32"; "bf16"
    # (autocast; refused where the CPU would emulate it); "fp16" (CUDA)
    precision: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        check_choice("--crops", self.crops, CROP_MODES)
        check_choice("--tail", self.tail, TAIL_MODES)
        check_at_least_one("--batch-size", self.batch_size)
        check_at_least_one("--decoders", self.decoders)
        check_choice("--preprocess", self.preprocess, PREPROCESS_MODES)
        check_choice("--precision", self.precision, PRECISIONS)
        check_at_least_one("--threads", self.threads)
