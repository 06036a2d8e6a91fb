"""The shared training loop: balanced batches of anomalous and normal bags, seeded, with per-epoch loss history."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from vad_pipeline.core.devices import autocast

from .base import TrainSchedule, WeakMethod

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); returns a torch generator for sampling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class TrainingHistory:
    """Mean loss (and its named parts) per epoch."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [epoch["loss"] for epoch in self.epochs]


def _optimizer(method: WeakMethod, schedule: TrainSchedule) -> torch.optim.Optimizer:
    params = [p for p in method.parameters() if p.requires_grad]
    if schedule.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    if schedule.optimizer == "adam":
        return torch.optim.Adam(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    raise ValueError(f"unknown optimizer {schedule.optimizer!r}")


def train_method(
    method: WeakMethod,
    bags: torch.Tensor,
    labels: torch.Tensor,
    schedule: TrainSchedule,
    seed: int = 0,
    progress: bool = True,
    device: torch.device | None = None,
    precision: str = "fp32",
) -> TrainingHistory:
    """Train ``method`` on ``bags`` ``(N, S, D)`` with video labels ``(N,)`` (1 anomalous, 0 normal).

    Each step draws ``batch_size`` anomalous and ``batch_size`` normal bags; an epoch is enough steps to see every
    bag of the larger class once (the smaller class is cycled). Learning-rate drops happen at their epoch, scaled
    when ``min_steps`` lengthens training. ``device``: where the method trains (the bags go there once; default
    the CPU); ``precision`` ``bf16`` / ``fp16`` runs each step under autocast (losses in fp32, fp16 with a gradient
    scaler). The sampling order depends on ``seed`` only, whatever the device."""
    device = device or torch.device("cpu")
    method.to(device)
    bags = bags.to(device)
    generator = seed_everything(seed)
    anomalous = torch.nonzero(labels == 1).flatten()
    normal = torch.nonzero(labels == 0).flatten()
    if len(anomalous) == 0 or len(normal) == 0:
        from vad_pipeline.errors import UserError

        raise UserError(
            f"training needs both anomalous and normal videos (got {len(anomalous)} anomalous, {len(normal)} "
            "normal); check the labels"
        )
    batch = min(schedule.batch_size, max(len(anomalous), len(normal)))
    steps = max(1, math.ceil(max(len(anomalous), len(normal)) / batch))
    epochs = max(schedule.epochs, math.ceil(schedule.min_steps / steps))
    if epochs > schedule.epochs:
        log.info("train: %d step(s) per epoch; training %d epochs instead of %d to reach %d steps",
                 steps, epochs, schedule.epochs, schedule.min_steps)
    optimizer = _optimizer(method, schedule)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")  # fp16 gradients underflow
    history = TrainingHistory()
    method.on_train_start(schedule, epochs)
    method.train()
    bar = tqdm(range(epochs), desc=f"train {method.name}", unit="epoch", disable=not progress,
               dynamic_ncols=True)
    for epoch in bar:
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr_at(epoch * schedule.epochs // epochs)
        order_a = _cycled(anomalous, steps * batch, generator)
        order_n = _cycled(normal, steps * batch, generator)
        sums: dict[str, float] = {}
        for step in range(steps):
            xa = bags[order_a[step * batch : (step + 1) * batch]]
            xn = bags[order_n[step * batch : (step + 1) * batch]]
            with autocast(device, precision):
                loss, parts = method.training_loss(xa, xn)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            method.on_batch_end(xn, xa)
            for key, value in {"loss": loss.item(), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
        method.on_epoch_end(epoch, bags[normal])
        record = {key: value / steps for key, value in sums.items()}
        history.epochs.append(record)
        bar.set_postfix_str(f"loss {record['loss']:.4f}")
    method.eval()
    return history


def _cycled(indices: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices: shuffled passes over ``indices``, repeated as needed."""
    passes = [indices[torch.randperm(len(indices), generator=generator)] for _ in range(math.ceil(count / len(indices)))]
    return torch.cat(passes)[:count]
