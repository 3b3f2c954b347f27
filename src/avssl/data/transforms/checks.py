"""The argument checks every transform shares, and ``Compose``."""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from avssl.errors import ConfigError


def require_rng(rng, transform) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{type(transform).__name__} is random and needs a numpy Generator as rng, got {rng!r}")
    return rng


def check_video(x, transform, uint8: bool = False) -> None:
    """``uint8``: the transform only selects pixels, so it also takes the uint8 (3, T, H, W) clip."""
    dtype_ok = isinstance(x, Tensor) and (x.is_floating_point() or (uint8 and x.dtype == torch.uint8))
    if not (dtype_ok and x.dim() == 4 and x.shape[0] == 3):
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{type(transform).__name__} expects a float (3, T, H, W) video tensor (see to_tensor_video), got {got}"
        )


def applies(x, rng, transform, uint8: bool = False) -> bool:
    """The start every transform applied with probability ``transform.p`` shares: check the generator
    and the clip, then draw whether it applies this time (the draw comes before any of its own, so
    a clip it leaves alone costs the generator one number)."""
    rng = require_rng(rng, transform)
    check_video(x, transform, uint8=uint8)
    return rng.random() < transform.p


def check_probability(p: float, transform) -> None:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{type(transform).__name__}: p must be in [0, 1], got {p}")


def check_positive_int(value, name: str, transform) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ConfigError(f"{type(transform).__name__}: {name} must be a positive integer, got {value!r}")


def check_range(bounds: tuple[float, float], name: str, transform, low: float = 0.0) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1]:
        raise ConfigError(
            f"{type(transform).__name__}: {name} must be (min, max) with {low} <= min <= max, got {bounds}"
        )


def check_fits(x: Tensor, h: int, w: int, transform) -> None:
    if x.shape[-2] < h or x.shape[-1] < w:
        raise ValueError(
            f"{type(transform).__name__}: frames of {x.shape[-2]}x{x.shape[-1]} are smaller than the {h}x{w} crop; "
            "resize them first (ShortSideResize)"
        )


class Compose:
    """Apply transforms in order, passing each the same ``rng`` so one seed fixes the whole chain."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, rng: np.random.Generator | None = None):
        for transform in self.transforms:
            x = transform(x, rng)
        return x

    def __repr__(self) -> str:
        body = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{body}\n])" if body else "Compose([])"
