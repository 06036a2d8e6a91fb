"""The one place a ``--device`` value becomes a torch device (every stage that runs a model uses it)."""

from __future__ import annotations

import contextlib

import torch

from .errors import UserError


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda[:N]' without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None


PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(name: str, device: torch.device) -> None:
    """``fp32``, ``bf16`` (CPUs with bf16 support and GPUs) or ``fp16`` (CUDA only); anything else is a user error."""
    if name not in PRECISIONS:
        raise UserError(f"--precision {name}: choose one of {', '.join(PRECISIONS)}")
    if name == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use --precision bf16 or fp32 on the CPU")


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> fp16 on CUDA, fp32 elsewhere; any other name is checked (``check_precision``) and kept."""
    if name == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    check_precision(name, device)
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for ``precision`` ``bf16`` / ``fp16`` on ``device`` (matmuls and convolutions in the low
    precision, reductions and losses in fp32, as ``torch.autocast`` decides); a no-op for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
