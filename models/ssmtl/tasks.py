"""SSMTL's proxy tasks: building their inputs from object windows, their joint loss and per-object scores.

Tasks (``--tasks``, any subset): ``aot`` arrow of time (is the sequence played backwards?), ``mi`` motion
irregularity (are frames skipped?), ``mbp`` middle box prediction (reconstruct the middle crop from the others),
``kd`` knowledge distillation (predict the detector's class scores and the teacher's appearance feature); and
attributes without a network (``memory.py``): ``knn``, the appearance memory of the normal training objects;
``vel``, the density of their speed and place, and ``speed``, an object's excess speed over the training objects
seen at its place (optical flow in the object's box, ``detectors/flow.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import FRAME_TASKS
from .network import SSMTLNet, middle_box_error



def object_tasks(tasks: tuple[str, ...]) -> tuple[str, ...]:
    """The tasks that score objects (the network's and the memories'), in order: all but ``FRAME_TASKS``."""
    return tuple(t for t in tasks if t not in FRAME_TASKS)


def to_tensor(windows: torch.Tensor | object) -> torch.Tensor:
    """``(B, W, S, S, 3)`` uint8 -> ``(B, 3, W, S, S)`` float in [0, 1]."""
    tensor = windows if isinstance(windows, torch.Tensor) else torch.from_numpy(windows)  # type: ignore[arg-type]
    return tensor.permute(0, 4, 1, 2, 3).float().div_(255.0)


def consecutive(windows: torch.Tensor, half_window: int) -> torch.Tensor:
    """The middle ``2t + 1`` frames ``(B, C, 2t+1, S, S)``."""
    centre = windows.shape[2] // 2
    return windows[:, :, centre - half_window : centre + half_window + 1]


def intermittent(windows: torch.Tensor, half_window: int, max_step: int, generator: torch.Generator) -> torch.Tensor:
    """``2t + 1`` frames around the centre with random steps of 1..max_step (at least one step skips a frame)."""
    batch = windows.shape[0]
    centre = windows.shape[2] // 2
    steps = torch.randint(1, max_step + 1, (batch, 2 * half_window), generator=generator)
    forced = torch.randint(0, 2 * half_window, (batch,), generator=generator)
    steps[torch.arange(batch), forced] = torch.randint(2, max_step + 1, (batch,), generator=generator)
    left = -steps[:, :half_window].flip(1).cumsum(1).flip(1)
    right = steps[:, half_window:].cumsum(1)
    offsets = torch.cat([left, torch.zeros(batch, 1, dtype=left.dtype), right], dim=1) + centre  # (B, 2t+1)
    index = offsets.to(windows.device).view(batch, 1, -1, 1, 1).expand(-1, windows.shape[1], -1, windows.shape[3], windows.shape[4])
    return torch.gather(windows, 2, index)


def without_middle(sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs without the middle frame, the middle frame (B, C, S, S))``."""
    middle = sequence.shape[2] // 2
    keep = [i for i in range(sequence.shape[2]) if i != middle]
    return sequence[:, :, keep], sequence[:, :, middle]


def distillation_error(class_logits: torch.Tensor, features: torch.Tensor, probs: torch.Tensor,
                       teacher: torch.Tensor) -> torch.Tensor:
    """Per-object student/teacher discrepancy ``(B,)``: mean L1 between the student's sigmoid class scores and the
    detector's, plus mean L1 between the student's features and the teacher's (scaled to unit RMS per dimension,
    so both terms are of order one)."""
    target = teacher * teacher.shape[1] ** 0.5
    return (torch.sigmoid(class_logits) - probs).abs().mean(1) + (features - target).abs().mean(1)


def training_loss(net: SSMTLNet, windows: torch.Tensor, probs: torch.Tensor, teacher: torch.Tensor,
                  tasks: tuple[str, ...], half_window: int, max_step: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """The joint loss on a batch of object windows ``(B, C, W, S, S)`` and per-task values (the paper weighs the
    four losses equally: cross-entropy for aot and mi, L1 for mbp and kd)."""
    forward = consecutive(windows, half_window)
    batch = forward.shape[0]
    zeros = torch.zeros(batch, dtype=torch.long, device=windows.device)
    ones = torch.ones(batch, dtype=torch.long, device=windows.device)
    losses: dict[str, torch.Tensor] = {}
    # One encoder pass over every (2t+1)-frame variant: batch norm then always sees the same mixture, in training
    # and in its running statistics, so eval-mode scores behave like the training-mode ones (separate passes per
    # variant let the heads lean on per-variant batch statistics that do not exist at inference).
    variants = [forward]
    if "aot" in tasks:
        variants.append(forward.flip(2))
    if "mi" in tasks:
        variants.append(intermittent(windows, half_window, max_step, generator))
    maps = net.encode(torch.cat(variants)) if {"aot", "mi", "kd"} & set(tasks) else None
    chunks = dict(zip(["forward"] + [t for t in ("aot", "mi") if t in tasks], maps.split(batch))) if maps is not None else {}
    if "aot" in tasks:
        logits = net.arrow_of_time(torch.cat([chunks["forward"], chunks["aot"]]))
        losses["aot"] = F.cross_entropy(logits, torch.cat([zeros, ones]))
    if "mi" in tasks:
        logits = net.motion_irregularity(torch.cat([chunks["forward"], chunks["mi"]]))
        losses["mi"] = F.cross_entropy(logits, torch.cat([zeros, ones]))
    if "mbp" in tasks:
        inputs, middle = without_middle(forward)
        losses["mbp"] = middle_box_error(net.middle_box(net.encode(inputs)), middle).mean()
    if "kd" in tasks:
        class_logits, features = net.distillation(chunks["forward"])
        losses["kd"] = distillation_error(class_logits, features, probs, teacher).mean()
    total = sum(losses.values())
    return total, {name: float(value.detach()) for name, value in losses.items()}


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` two-class logits -> ``(B,)`` log P(class 1) / P(class 0)."""
    return logits[:, 1] - logits[:, 0]


@torch.inference_mode()
def task_scores(net: SSMTLNet, windows: torch.Tensor, probs: torch.Tensor, teacher: torch.Tensor,
                tasks: tuple[str, ...], half_window: int) -> dict[str, torch.Tensor]:
    """Per-object raw anomaly scores ``(B,)`` per task: the log-odds of "backward" and of "intermittent" for the
    forward consecutive sequence, the middle-box L1 error, and the student/teacher discrepancy.

    Log-odds rather than the paper's probabilities: they rank the same way, but a well-trained classifier's
    probabilities saturate at exactly 1.0 in float32 for every clearly irregular object, so the objects that
    matter most would tie (measured on UCSD Ped2: motion irregularity 0.795 micro AUC as log-odds, 0.773 as
    probabilities, same model)."""
    forward = consecutive(windows, half_window)
    scores: dict[str, torch.Tensor] = {}
    maps = net.encode(forward) if {"aot", "mi", "kd"} & set(tasks) else None
    if "aot" in tasks:
        scores["aot"] = log_odds(net.arrow_of_time(maps))
    if "mi" in tasks:
        scores["mi"] = log_odds(net.motion_irregularity(maps))
    if "mbp" in tasks:
        inputs, middle = without_middle(forward)
        scores["mbp"] = middle_box_error(net.middle_box(net.encode(inputs)), middle)
    if "kd" in tasks:
        class_logits, features = net.distillation(maps)
        scores["kd"] = distillation_error(class_logits, features, probs, teacher)
    return scores
