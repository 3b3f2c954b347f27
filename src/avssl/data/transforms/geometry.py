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
    its leading crops and flips run on the uint8 clip, so only the kept pixels are converted, a flip
    is not done but read mirrored by the conversion, and a Normalize right after them is done in the
    same pass as the /255; a RandomResizedCrop right after them converts only its window
    (:meth:`RandomResizedCrop.from_uint8`). The clip it then holds is its own, so the later steps that
    can work in place do (their ``apply_``: no copy per step). Same random draws; values equal up to
    float rounding (~1e-7; bit for bit when no Normalize is folded into the conversion)."""
    x, flip, steps = select_pixels(clip, transform, rng)
    if steps and isinstance(steps[0], Normalize):
        x = steps.pop(0).from_uint8(x, flip=flip)
    elif steps and isinstance(steps[0], RandomResizedCrop):
        x = steps.pop(0).from_uint8(x, rng, flip=flip)
    else:
        x = x.flip(-1) if flip else x
        x = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
    for step in steps:  # x is a new tensor, not the caller's: steps may overwrite it
        in_place = getattr(step, "apply_", None)
        x = in_place(x, rng) if in_place is not None else step(x, rng)
    return x


def select_pixels(clip, transform: Callable | None, rng: np.random.Generator | None) -> tuple[Tensor, bool, list]:
    """The leading crops and flips of ``transform`` run on the uint8 ``(T, H, W, 3)`` clip: returns its
    uint8 ``(3, T, h, w)`` view (no copy), whether a flip was drawn but not done (the caller reads the
    view mirrored), and the steps left to run on it."""
    steps = chain_steps(transform)
    x = _channels_first(clip)
    flip = False
    while steps and isinstance(steps[0], _PIXEL_SELECTING):
        step = steps.pop(0)
        if isinstance(step, RandomHorizontalFlip):
            flip ^= step.draw(x, rng)
            continue
        if flip:  # a crop after a flip: its window is on the mirrored clip
            x, flip = x.flip(-1), False
        x = step(x, rng)
    return x, flip, steps


def uint8_crop(clip, transform: Callable | None, rng: np.random.Generator | None) -> tuple[Tensor, bool]:
    """The leading crops of ``transform`` on the uint8 ``(T, H, W, 3)`` clip, as a new uint8 ``(T, h, w, 3)``
    tensor (a quarter of the float clip's bytes), and whether its flips left it mirrored: the flip and
    the rest of the chain are left to whoever finishes the clip (``data.finish``), since mirroring
    3-byte pixels costs 10x the plain copy here (1.4 against 0.12 ms for 8x224x224)."""
    x, flip, _ = select_pixels(clip, transform, rng)
    return torch.from_numpy(np.ascontiguousarray(x.permute(1, 2, 3, 0).numpy())), flip


def normalize_only(transform: Callable | None) -> Normalize | None:
    """The chain's Normalize when the chain is crops and flips followed by that one Normalize (what a
    batched finisher can take over), else None."""
    steps = chain_steps(transform)
    if steps and isinstance(steps[-1], Normalize) and all(isinstance(s, _PIXEL_SELECTING) for s in steps[:-1]):
        return steps[-1]
    return None


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
    whose aspect ratio is within ``ratio``. Defaults are CrissCross Table S1 (min area 0.08).
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
        check_video(x, self)
        top, left, h, w = self._window(x.shape[-2], x.shape[-1], rng)
        return _resize(x[..., top : top + h, left : left + w], (self.size, self.size))

    def from_uint8(self, x: Tensor, rng: np.random.Generator, flip: bool = False) -> Tensor:
        """``self(to_float(x), rng)`` for a uint8 ``(3, T, H, W)`` clip (mirrored left-right first if
        ``flip``), where ``to_float`` is ``to_tensor_video``'s ``/ 255``: the window is drawn as there
        and only its pixels are converted (the crop is a selection, the conversion per pixel), then
        resized. Bit for bit the same values (crisscross-paper: 8x128x228 clip, 0.7 -> ~0.1 ms of
        conversion for a window of a third of the frame on average)."""
        rng = require_rng(rng, self)
        check_video(x, self, uint8=True)
        height, width = x.shape[-2:]
        top, left, h, w = self._window(height, width, rng)
        if flip:  # the window of the mirrored clip: mirrored columns width-left-w .. width-left
            window = x[..., top : top + h, width - left - w : width - left].flip(-1)
        else:
            window = x[..., top : top + h, left : left + w]
        window = window.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
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


# Transforms that only select pixels: the same on the uint8 clip (see transform_video).
_PIXEL_SELECTING = (RandomCrop, CenterCrop, RandomHorizontalFlip)
