"""Numeric precision of the forward passes: ``fp32``, ``bf16`` autocast, or ``auto``.

``auto`` picks bf16 where the hardware computes it natively: CUDA GPUs with bf16 support, and CPUs
with AMX or AVX512-BF16 (oneDNN then runs the convolutions in bf16; on the 2-core Xeon of
BENCHMARKS.md section 4 a training step of the demo preset is about 1.6x faster). Elsewhere bf16
would be emulated and slower, so ``auto`` stays fp32. Losses are computed in fp32 either way.
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private, so looked up with care
        return any(getattr(cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(device: torch.device, precision: str) -> str:
    """``fp32`` or ``bf16``: what ``precision`` means on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """bf16 autocast when ``precision`` resolves to bf16 on ``device``, a no-op context otherwise."""
    if resolve_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
