"""The one place a ``--device`` value becomes a torch device (every stage that runs a model uses it)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform
from pathlib import Path
from typing import TypeVar

import torch

from ..errors import UserError
from .precisions import PRECISION_CHOICES, PRECISIONS

T = TypeVar("T")


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



_NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that compute bf16 natively


def _cpuinfo() -> list[str]:
    """The lines of Linux's ``/proc/cpuinfo``; none where it cannot be read."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _cpuinfo_field(lines: list[str], *names: str) -> str | None:
    """The value of the first line of ``lines`` that starts with one of ``names``."""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(names)), None)


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty where they cannot be read."""
    return set((_cpuinfo_field(_cpuinfo(), "flags", "Features") or "").split())


def cpu_description() -> str:
    """What a measured figure needs beside it: the CPU's model name, cores and its vector / bf16 flags."""
    lines = _cpuinfo()
    flags = set((_cpuinfo_field(lines, "flags", "Features") or "").split())
    model = _cpuinfo_field(lines, "model name") or platform.processor() or platform.machine()
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(shown) or 'unknown'}"


def native_bf16(device_type: str = "cpu") -> bool:
    """Whether ``device_type`` computes bf16 natively. A CPU needs AVX-512 BF16 or AMX (elsewhere oneDNN emulates
    bf16, 14-37x slower than fp32 on AVX2 CPUs); where the flags cannot be read, oneDNN's own check decides. A GPU:
    ``torch.cuda.is_bf16_supported()``. ``VAD_NATIVE_BF16=0|1`` overrides the answer (tests simulate CPUs with it)."""
    forced = os.environ.get("VAD_NATIVE_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return _hardware_bf16(device_type)


@functools.lru_cache(maxsize=None)
def _hardware_bf16(device_type: str) -> bool:
    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    flags = cpu_flags()
    if flags:
        return any(flag in flags for flag in _NATIVE_BF16_CPU_FLAGS)
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_precision(name: str, device: torch.device) -> None:
    """``fp32``, ``bf16`` (where the device computes it natively) or ``fp16`` (CUDA only); anything else, or bf16
    that this CPU would emulate, is a user error in one line."""
    if name not in PRECISIONS:
        raise UserError(f"--precision {name}: choose one of {', '.join(PRECISION_CHOICES)}")
    if name == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use --precision auto (fp32, or bf16 where the CPU has "
                        "it natively) on the CPU")
    if name == "bf16" and not native_bf16(device.type):
        where = ("this CPU has no native bf16 (AVX-512 BF16 or AMX), so it would be emulated, 14-37x slower than "
                 "fp32" if device.type == "cpu" else f"this {device.type} device has no bf16")
        raise UserError(f"--precision bf16: {where}; use --precision auto or fp32")


def resolve_precision(name: str, device: torch.device, cuda_auto: str = "bf16") -> str:
    """The precision to run: ``auto`` -> bf16 where ``device`` computes it natively (a CPU with AVX-512 BF16 / AMX,
    a GPU with bf16), else fp32; on CUDA ``cuda_auto`` when given (the feature extractor keeps fp16 there). Any
    other name is checked (``check_precision``) and kept."""
    if name == "auto":
        if device.type == "cuda" and cuda_auto == "fp16":
            return "fp16"
        return "bf16" if native_bf16(device.type) else "fp32"
    check_precision(name, device)
    return name


def runnable_precision(name: str, device: torch.device) -> str:
    """``name`` where ``device`` computes it natively, else fp32: what a model recorded in bf16 or fp16 is applied in
    on this device (bf16 and fp32 results agree within the tolerances the tests check; emulated bf16 is 14-37x
    slower)."""
    if (name == "bf16" and not native_bf16(device.type)) or (name == "fp16" and device.type != "cuda"):
        return "fp32"
    return name


def with_resolved_precision(config: T) -> T:
    """A frozen config dataclass with ``device`` and ``precision`` fields, its ``auto`` precision resolved for its
    device (``resolve_precision``): what trains, what is keyed and what is recorded is the concrete precision."""
    return dataclasses.replace(config, precision=resolve_precision(config.precision,  # type: ignore[type-var]
                                                                   resolve_device(config.device)))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for ``precision`` ``bf16`` / ``fp16`` on ``device`` (matmuls and convolutions in the low
    precision, reductions and losses in fp32, as ``torch.autocast`` decides); a no-op for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
