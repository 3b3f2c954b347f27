"""Numeric precision and memory format of the forward passes.

Precision: ``fp32``, ``bf16`` autocast, or ``auto``.
``auto`` picks bf16 where the hardware computes it natively: CUDA GPUs with bf16 support, and CPUs
with AMX or AVX512-BF16 (oneDNN then runs the convolutions in bf16; on the 2-core Xeon of
BENCHMARKS.md section 4 a training step of the demo preset is about 1.6x faster). Elsewhere bf16
would be emulated and slower, so ``auto`` stays fp32. Losses are computed in fp32 either way.

Memory format of the video path: ``contiguous``, ``channels_last_3d``, or ``auto``: channels-last
where bf16 runs (oneDNN's bf16 3D convolutions are fastest in that layout: 1.6x on top of bf16 for
the paper's R(2+1)D-18, neutral at the small presets; it does not help fp32).
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16")
MEMORY_FORMATS = ("auto", "contiguous", "channels_last_3d")


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


def resolve_memory_format(precision: str, memory_format: str) -> str:
    """``contiguous`` or ``channels_last_3d``; ``precision`` must already be resolved."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}")
    if memory_format == "auto":
        return "channels_last_3d" if precision == "bf16" else "contiguous"
    return memory_format


def to_memory_format(module: torch.nn.Module, memory_format: str) -> torch.nn.Module:
    """Put the weights of ``module``'s 3D convolutions in ``memory_format`` (in place)."""
    if memory_format == "channels_last_3d":
        for m in module.modules():
            if isinstance(m, torch.nn.Conv3d):
                m.to(memory_format=torch.channels_last_3d)
    return module


def video_input(x: torch.Tensor, memory_format: str) -> torch.Tensor:
    """A (B, C, T, H, W) batch in the layout the convolutions' weights are in."""
    if memory_format == "channels_last_3d" and x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x
