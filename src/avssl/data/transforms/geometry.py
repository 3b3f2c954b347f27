"""Video geometry: uint8 clips to float tensors, resizing, crops and flips."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avssl.errors import ConfigError
from .checks import (
    Compose, applies, check_fits, check_positive_int, check_probability, check_range, check_video, require_rng,
)
from .colour import Normalize


def _channels_first(clip) -> Tensor:
    """uint8 ``(T, H, W, 3)`` numpy array or tensor -> uint8 ``(3, T, H, W)`` view, no copy."""
    if isinstance(clip, np.ndarray):
        clip = torch.from_numpy(clip)
    if not (isinstance(clip, Tensor) and clip.dtype == torch.uint8 and clip.dim() == 4 and clip.shape[-1] == 3):
        got = f"{clip.dtype} of shape {tuple(clip.shape)}" if isinstance(clip, Tensor) else type(clip).__name__
        raise ValueError(f"to_tensor_video expects a uint8 (T, H, W, 3) clip, got {got}")
    return clip.permute(3, 0, 1, 2)


def to_tensor_video(clip) -> Tensor:
    """uint8 ``(T, H, W, 3)`` numpy array or tensor -> float32 ``(3, T, H, W)`` tensor in [0, 1]."""
    # One copy straight into the channels-first contiguous layout the later transforms read fastest.
    video = _channels_first(clip).to(torch.float32, memory_format=torch.contiguous_format)
    return video.div_(255.0)


def transform_video(clip, transform: Callable | None = None, rng: np.random.Generator | None = None) -> Tensor:
    """``transform(to_tensor_video(clip), rng)`` (``transform``: a Compose or one transform), cheaper:
    its leading crops and flips run on the uint8 clip (:func:`select_pixels`), so only the kept pixels
    are converted, and the rest runs on them (:func:`float_stage`). Same random draws; values equal up
    to float rounding (~1e-7), except that a leading RandomResizedCrop resizes the uint8 clip (within
    one level, 1/255, of resizing the float clip; see the class)."""
    x, flip, steps = select_pixels(clip, transform, rng)
    return float_stage(x, flip, steps, rng)


def select_pixels(clip, transform: Callable | None, rng: np.random.Generator | None) -> tuple[Tensor, bool, list]:
    """The leading crops and flips of ``transform`` run on the uint8 ``(T, H, W, 3)`` clip: returns the
    uint8 ``(3, T, h, w)`` result (a view of the clip where only selected), whether a flip was drawn
    but not done (whoever converts it reads it mirrored), and the steps left (:func:`float_stage`)."""
    on_uint8, steps = split_chain(transform)
    x = _channels_first(clip)
    flip = False
    for step in on_uint8:
        if isinstance(step, RandomHorizontalFlip):
            flip ^= step.draw(x, rng)
            continue
        if flip:  # a crop after a flip: its window is on the mirrored clip
            x, flip = x.flip(-1), False
        x = step(x, rng)
    return x, flip, steps


def float_stage(x: Tensor, flip: bool | Tensor, steps: list, rng: np.random.Generator | None) -> Tensor:
    """The rest of a chain after :func:`select_pixels` on its uint8 ``(3, T, h, w)`` result (or a
    ``(B, 3, T, h, w)`` batch when ``steps`` is one Normalize: ``flip`` then per clip): converted to
    float in [0, 1] (mirrored if ``flip``), a Normalize right after folded into that one pass, then
    the other steps on the new tensor, in place where they can (their ``apply_``)."""
    if steps and isinstance(steps[0], Normalize):
        x, steps = steps[0].from_uint8(x, flip=flip), steps[1:]
    else:
        x = x.flip(-1) if flip else x
        x = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
    for step in steps:  # x is a new tensor, not the caller's: steps may overwrite it
        in_place = getattr(step, "apply_", None)
        x = in_place(x, rng) if in_place is not None else step(x, rng)
    return x


def split_chain(transform: Callable | None) -> tuple[list, list]:
    """A chain's steps as (its uint8 stage: the leading crops and flips, :func:`select_pixels`; the
    rest, :func:`float_stage`)."""
    steps = chain_steps(transform)
    n = next((i for i, s in enumerate(steps) if not isinstance(s, _ON_UINT8)), len(steps))
    return steps[:n], steps[n:]


def sized_by_uint8_stage(transform: Callable | None) -> bool:
    """Whether the chain's uint8 stage crops to a fixed size, so that clips of any video stack into
    one batch after it."""
    return any(isinstance(s, (RandomCrop, CenterCrop, RandomResizedCrop)) for s in split_chain(transform)[0])


def chain_steps(transform: Callable | None) -> list:
    """The steps of a Compose, or of one transform (none for None)."""
    return list(transform.transforms) if isinstance(transform, Compose) else [t for t in [transform] if t is not None]


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    # interpolate reads (3, T, H, W) as (batch=3, channels=T, H, W); bilinear filtering is per
    # channel, so every frame is resized alike without a permute. Antialiasing matters when
    # shrinking (e.g. 360p -> 128) and its weights are non-negative, so values stay in range.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@dataclass(frozen=True)
class ShortSideResize:
    """Resize so the shorter side is ``size``, keeping the aspect ratio (bilinear, antialiased)."""

    size: int

    def __post_init__(self):
        check_positive_int(self.size, "size", self)

    def __call__(self, x: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        check_video(x, self)
        h, w = x.shape[-2:]
        if min(h, w) == self.size:
            return x
        if h <= w:
            new_size = (self.size, max(1, round(w * self.size / h)))
        else:
            new_size = (max(1, round(h * self.size / w)), self.size)
        return _resize(x, new_size)


@dataclass(frozen=True)
class RandomCrop:
    """A ``size x size`` crop at a uniformly random position, the same in every frame."""

    size: int

    def __post_init__(self):
        check_positive_int(self.size, "size", self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = require_rng(rng, self)
        check_video(x, self, uint8=True)
        check_fits(x, self.size, self.size, self)
        top = int(rng.integers(0, x.shape[-2] - self.size + 1))
        left = int(rng.integers(0, x.shape[-1] - self.size + 1))
        return x[..., top : top + self.size, left : left + self.size]


@dataclass(frozen=True)
class CenterCrop:
    """The central ``size x size`` crop (offsets rounded down when the margin is odd)."""

    size: int

    def __post_init__(self):
        check_positive_int(self.size, "size", self)

    def __call__(self, x: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        check_video(x, self, uint8=True)
        check_fits(x, self.size, self.size, self)
        top = (x.shape[-2] - self.size) // 2
        left = (x.shape[-1] - self.size) // 2
        return x[..., top : top + self.size, left : left + self.size]


@dataclass(frozen=True)
class RandomResizedCrop:
    """Multi-scale crop (CrissCross "MSC"): a crop covering a random ``scale`` fraction of the frame
    area with a random aspect ratio in ``ratio`` (log-uniform), resized to ``size x size``.

    Same sampling as torchvision's RandomResizedCrop: up to 10 tries, then the largest centred crop
    whose aspect ratio is within ``ratio``. Defaults are CrissCross Table S1 (min area 0.08). A uint8
    clip is resized as uint8 (antialiased bilinear, as torchvision resizes uint8 images): within one
    level (1/255) of resizing it as float, for a quarter of the bytes and 4-8x less time.
    """

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self):
        check_positive_int(self.size, "size", self)
        check_range(self.scale, "scale", self)
        if self.scale[0] <= 0 or self.scale[1] > 1:
            raise ConfigError(f"RandomResizedCrop: scale must lie in (0, 1], got {self.scale}")
        check_range(self.ratio, "ratio", self)
        if self.ratio[0] <= 0:
            raise ConfigError(f"RandomResizedCrop: ratio must be positive, got {self.ratio}")

    def _window(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        # Fallback: the whole frame, trimmed to the nearest allowed aspect ratio.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = require_rng(rng, self)
        check_video(x, self, uint8=True)
        top, left, h, w = self._window(x.shape[-2], x.shape[-1], rng)
        window = x[..., top : top + h, left : left + w]
        if x.dtype == torch.uint8:  # the frames as a channels-last uint8 batch: torch's fast path, uint8 out
            return _resize(window.permute(1, 0, 2, 3), (self.size, self.size)).permute(1, 0, 2, 3)
        return _resize(window, (self.size, self.size))


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Mirror every frame left-right with probability ``p``."""

    p: float = 0.5

    def __post_init__(self):
        check_probability(self.p, self)

    def draw(self, x: Tensor, rng: np.random.Generator) -> bool:
        """Whether this clip is flipped (one draw from ``rng``), without flipping it."""
        return applies(x, rng, self, uint8=True)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        return x.flip(-1) if self.draw(x, rng) else x


# Transforms run on the uint8 clip (see select_pixels): crops and flips select pixels; the multi-scale
# crop also resizes the uint8 window (1/255 from a float resize, 4-8x cheaper).
_ON_UINT8 = (RandomCrop, CenterCrop, RandomResizedCrop, RandomHorizontalFlip)
