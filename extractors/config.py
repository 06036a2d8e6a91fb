"""What ``vad-pipeline extract`` may be asked for: :class:`ExtractConfig`, the single source of the features
stage's defaults, and the vocabularies of its options. Torch-free, so that the command line builds its options from
these fields without loading a model."""

from __future__ import annotations

from dataclasses import dataclass

from vad_pipeline.errors import UserError
from vad_pipeline.core.precisions import PRECISION_CHOICES

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
        if self.crops not in CROP_MODES:
            raise UserError(f"--crops {self.crops}: choose one of {', '.join(CROP_MODES)}")
        if self.tail not in TAIL_MODES:
            raise UserError(f"--tail {self.tail}: choose one of {', '.join(TAIL_MODES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.decoders is not None and self.decoders < 1:
            raise UserError(f"--decoders {self.decoders}: must be at least 1")
        if self.preprocess not in PREPROCESS_MODES:
            raise UserError(f"--preprocess {self.preprocess}: choose one of {', '.join(PREPROCESS_MODES)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision}: choose one of {', '.join(PRECISIONS)}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads}: must be at least 1")
