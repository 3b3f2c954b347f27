"""Numeric precision and memory format of the forward passes.

Precision: ``fp32``, ``bf16`` autocast, or ``auto``. Losses are computed in fp32 either way.
``auto`` considers bf16 where the hardware computes it natively (CUDA GPUs with bf16 support, CPUs
with AMX or AVX512-BF16; elsewhere bf16 is emulated and slower) and then trusts it only as far as
``bf16_check`` finds it right: ``plan_precision`` checks every convolution and linear layer of the
model at the shapes it will run, keeps the layers bf16 gets wrong in fp32, and chooses bf16 only when
a training pass of the encoders, so contained, is measured faster in bf16 than in fp32. ``precision=bf16`` skips the speed test
but never the correctness check.

Memory format of the video path: ``contiguous``, ``channels_last_3d``, or ``auto``: channels-last
where bf16 runs (oneDNN's bf16 3D convolutions are fastest in that layout: 1.6x on top of bf16 for
the paper's R(2+1)D-18, neutral at the small presets; it does not help fp32).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import torch

from .bf16_check import check_layers, keep_in_fp32, time_steps

log = logging.getLogger("avssl.precision")

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


def batch_to_device(batch: dict, device: torch.device, memory_format: str) -> dict:
    """Move the clips (``video``, ``audio`` and views such as ``audio_neg``) to the device, video in
    ``memory_format``; indices, labels and start times stay on the CPU, where the methods index their
    tables with them."""
    from ..data.dataset import MODALITIES
    from ..data.views import window_modality

    out = {}
    for k, v in batch.items():
        modality = window_modality(k)
        if modality in MODALITIES:
            v = v.to(device, non_blocking=True)
            if modality == "video":
                v = video_input(v, memory_format)
        out[k] = v
    return out


# --- the checked plan ------------------------------------------------------------------------------

SPEEDUP_NEEDED = 1.1  # auto takes bf16 when a training pass is at least this much faster


@dataclass
class PrecisionPlan:
    """What a run computes in: ``precision`` (fp32 or bf16 autocast), the video path's
    ``memory_format``, the layers kept in fp32 under autocast, and why, in one line."""

    precision: str
    memory_format: str
    reason: str
    fp32_layers: list = field(default_factory=list)
    speedup: float | None = None  # fp32 / bf16 time of a training pass of the encoders, when measured

    def to_dict(self) -> dict:
        return {"precision": self.precision, "memory_format": self.memory_format, "reason": self.reason,
                "fp32_layers": list(self.fp32_layers), "speedup": self.speedup}


def plan_precision(device: torch.device, precision: str, memory_format: str, probes) -> PrecisionPlan:
    """Resolve ``precision`` and ``memory_format`` for the modules of ``probes`` (``(name, module,
    example_input)``, see ``bf16_check.check_layers``), and keep the layers bf16 gets wrong in fp32
    (in place: ``keep_in_fp32``). Logs the decision in one line."""
    plan = _plan(device, precision, memory_format, probes)
    log.info("precision %s, memory format %s: %s", plan.precision, plan.memory_format, plan.reason)
    return plan


def _plan(device, precision, memory_format, probes) -> PrecisionPlan:
    resolve_memory_format("fp32", memory_format)  # validates the name
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return PrecisionPlan("fp32", resolve_memory_format("fp32", memory_format), "fp32 requested")
    if precision == "auto" and not native_bf16(device):
        return PrecisionPlan("fp32", resolve_memory_format("fp32", memory_format),
                             f"{device.type} has no native bf16 (no AMX or AVX512-BF16), so bf16 would be slower")
    layout = resolve_memory_format("bf16", memory_format)
    uses = check_layers(probes, device, layout)
    wrong = [u for u in uses if not u.check.ok]
    shapes = len({u.check.signature for u in uses})
    if wrong:
        bad = sorted({u.check.signature for u in wrong})
        what = (f"bf16 is wrong here for {len(bad)} of {shapes} layer shapes ({bad[0]}"
                + (f" and {len(bad) - 1} more" if len(bad) > 1 else "") + ")")
    else:
        what = f"bf16 matched fp32 on all {shapes} layer shapes"
    if precision == "auto" and len(wrong) == len(uses):
        return PrecisionPlan("fp32", resolve_memory_format("fp32", memory_format), what)
    names = [u.name for u in wrong]
    ms = time_steps(probes, device, layout, names) if precision == "auto" else None
    speedup = round(ms["fp32"] / ms["bf16"], 2) if ms and ms["bf16"] > 0 else None
    if precision == "auto" and (speedup is None or speedup < SPEEDUP_NEEDED):
        return PrecisionPlan("fp32", resolve_memory_format("fp32", memory_format),
                             f"{what}, but a training pass was not faster in bf16 ({speedup}x)", speedup=speedup)
    for u in wrong:
        keep_in_fp32(u.module)
    kept = f"; {len(wrong)} layers run in fp32" if wrong else ""
    fast = f"; a training pass {speedup}x faster than fp32" if speedup else ""
    return PrecisionPlan("bf16", layout, f"{what}{kept}{fast}", names, speedup)


def example_input(cfg, modality: str, batch: int) -> torch.Tensor:
    """A zero batch of the clip shape ``cfg`` gives ``modality``'s encoder: (B, 3, T, H, W) video or
    (B, 1, mels, frames) log-mel."""
    if modality == "video":
        return torch.zeros(batch, 3, cfg.video.num_frames, cfg.video.crop, cfg.video.crop)
    if modality == "audio":
        return torch.zeros(batch, 1, cfg.audio.n_mels, cfg.audio.num_frames)
    raise ValueError(f"unknown modality {modality!r}")


def plan_for_encoders(cfg, device: torch.device, encoders: dict, batch: int, memory_format: str | None = None,
                      agree=None) -> PrecisionPlan:
    """``plan_precision`` for ``encoders`` ({name: (module, modality)}) at ``cfg``'s clip shapes.
    ``agree(precision)``, when given, returns the precision every process must use (rank 0's choice,
    under torchrun: ``auto``'s speed test may pick differently on different ranks); a rank that chose
    otherwise plans again for that precision (with its own correctness check)."""
    probes = [(name, module, example_input(cfg, modality, batch)) for name, (module, modality) in encoders.items()]
    plan = plan_precision(device, cfg.precision, memory_format or cfg.memory_format, probes)
    if agree is not None:
        chosen = agree(plan.precision)
        if chosen != plan.precision:
            plan = plan_precision(device, chosen, memory_format or cfg.memory_format, probes)
    return plan
