"""What the tracks stage may be asked for: :class:`TrackConfig` (and the background subtraction's
:class:`MotionConfig`), the single source of its defaults. Torch-free, so that the command line builds its options
from these fields without loading a detector."""

from __future__ import annotations

from dataclasses import dataclass

from vad_pipeline.errors import UserError, check_at_least_one, check_choice

OBJECT_SOURCES = ("detector", "motion", "both")


@dataclass(frozen=True)
class MotionConfig:
    """Background-subtraction settings (pixel sizes at ``work_height`` rows)."""

    history: int = 200  # MOG2: frames the background model remembers
    var_threshold: float = 8.0  # MOG2: squared Mahalanobis distance above which a pixel is foreground
    var_min: float = 15.0  # MOG2: floor of each pixel's variance (its default, 4, lets the median-seeded model,
    # whose variance shrinks to that floor, flag sensor noise and grow boxes into blobs)
    blur: int = 5  # Gaussian blur kernel before subtraction (odd; 0 = none)
    open_kernel: int = 3  # morphological opening (removes isolated foreground pixels)
    close_kernel: int = 9  # morphological closing (joins the parts of one object; wider merges neighbours)
    min_area: int = 80  # smallest component kept, in pixels
    max_area: float = 0.25  # components larger than this fraction of the frame are a global change (the first
    # frame, which MOG2 marks all foreground; a light switch), not an object
    work_height: int = 240  # frames are scaled to this many rows first (down or up): pixel settings are relative
    warmup: int = 50  # frames whose per-pixel median seeds the background model (0: learn from frame 0 on)
    conf: float = 0.5  # the confidence a proposal enters the tracker with
    iou: float = 0.3  # a proposal with this IoU or more with a detection is that detection

    def __post_init__(self) -> None:
        for name in ("blur", "open_kernel", "close_kernel"):
            value = getattr(self, name)
            if value < 0 or (value and value % 2 == 0):
                raise UserError(f"motion {name.replace('_', '-')} {value}: must be 0 or an odd number of pixels")
        if self.warmup < 0:
            raise UserError(f"motion warmup {self.warmup}: must be 0 or more frames")
        if not 0 < self.conf <= 1 or not 0 < self.iou <= 1:
            raise UserError("motion conf and iou must be in (0, 1]")


@dataclass(frozen=True)
class TrackConfig:
    """Options of the tracks stage."""

    objects: str = "detector"  # detector, motion (background subtraction) or both (merged)
    detector: str | None = None
    conf: float = 0.25
    imgsz: int | None = None  # None: follow the frame size (auto_imgsz)
    classes: tuple[int, ...] | None = None
    frame_stride: int = 1
    decoder: str = "auto"
    motion: MotionConfig = MotionConfig()
    batch: int | None = None  # frames per detector call (None: 16 on a GPU, 1 on the CPU); the tracks do not change
    device: str = "auto"  # where the detector runs: auto (CUDA when available), cpu, cuda or cuda:N
    progress: bool = True

    def __post_init__(self) -> None:
        check_choice("--objects", self.objects, OBJECT_SOURCES)
        if self.imgsz is not None and (self.imgsz < 32 or self.imgsz % 32):
            raise UserError(f"--imgsz {self.imgsz}: must be a multiple of 32 (or leave it out to follow the frames)")
        check_at_least_one("--track-batch", self.batch)
        check_at_least_one("--frame-stride", self.frame_stride)
        if not 0 < self.conf < 1:
            raise UserError(f"--conf {self.conf}: must be between 0 and 1")
