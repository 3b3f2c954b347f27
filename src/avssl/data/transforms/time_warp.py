"""SpecAugment's time warping (Park et al. 2019) of a log-mel: CrissCross's "TW" audio augmentation
(Sec. 4.5, Table S2: warp window 20), which the paper tried and left out of its final recipe ("time
warping doesn't improve performance and is also quite computationally expensive"), offered here so
its Table 5 rows can be rerun.

    avssl pretrain --method crisscross --set audio.time_warp=20 ...

A point ``w0`` is drawn in ``[W, P - W)`` of the ``P`` time frames and a distance ``w`` in ``[-W, W]``;
the frames left of ``w0`` are stretched (or squeezed) linearly to end at ``w0 + w`` and those right
of it fill the rest, so the spectrogram keeps its shape and the content at ``w0`` moves to ``w0 + w``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from avssl.errors import ConfigError


@dataclass(frozen=True)
class TimeWarp:
    """Warp a ``(..., Q, P)`` log-mel along time by up to ``window`` frames (Table S2: 20)."""

    window: int = 20

    def __post_init__(self):
        if isinstance(self.window, bool) or not isinstance(self.window, numbers.Integral) or self.window < 0:
            raise ConfigError(f"TimeWarp: window must be an integer >= 0, got {self.window!r}")

    def __call__(self, spec: Tensor, rng: np.random.Generator) -> Tensor:
        if rng is None:
            raise ValueError("TimeWarp is random: pass a numpy Generator")
        if spec.dim() < 2:
            raise ValueError(f"TimeWarp expects a (..., Q, P) spectrogram, got shape {tuple(spec.shape)}")
        length = spec.shape[-1]
        if self.window == 0 or length <= 2 * self.window + 1:
            return spec  # too short to warp by this window: unchanged, as SpecAugment's reference code
        centre = int(rng.integers(self.window, length - self.window))
        shift = int(rng.integers(-self.window, self.window + 1))
        return warp(spec, centre, centre + shift)


def warp(spec: Tensor, source: int, target: int) -> Tensor:
    """``spec`` with time frame ``source`` moved to ``target`` (``0 < target < P - 1``): both sides
    resampled linearly, the first and last frames fixed."""
    length = spec.shape[-1]
    t = torch.arange(length, dtype=torch.float64, device=spec.device)
    # Where each output frame reads from: piecewise linear through (0, 0), (target, source), (P-1, P-1).
    pos = torch.where(t <= target, t * source / max(target, 1),
                      source + (t - target) * (length - 1 - source) / max(length - 1 - target, 1))
    pos = pos.clamp(0, length - 1)
    left = pos.floor().long().clamp(max=length - 2)
    frac = (pos - left).to(spec.dtype)
    return spec[..., left] * (1 - frac) + spec[..., left + 1] * frac
