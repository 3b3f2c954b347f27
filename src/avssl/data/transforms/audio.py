"""Audio: volume jitter and crops of a waveform; time/frequency masks and crops of a log-mel."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from avssl.errors import ConfigError
from .checks import check_positive_int, check_range, require_rng


@dataclass(frozen=True)
class VolumeJitter:
    """Scale the waveform by a gain drawn uniformly from [1 - jitter, 1 + jitter]."""

    jitter: float = 0.1

    def __post_init__(self):
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"VolumeJitter: jitter must be in [0, 1), got {self.jitter}")

    def draw(self, rng: np.random.Generator) -> float:
        """This clip's gain (one draw from ``rng``), without applying it."""
        rng = require_rng(rng, self)
        return float(rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))

    def __call__(self, wave: Tensor, rng: np.random.Generator) -> Tensor:
        return wave * self.draw(rng)


@dataclass(frozen=True)
class RandomAudioCrop:
    """A random window of ``seconds`` (rounded to whole samples) from a longer waveform ``(..., n)``."""

    seconds: float
    sample_rate: int = 16000

    def __post_init__(self):
        check_positive_int(self.sample_rate, "sample_rate", self)
        if not (math.isfinite(self.seconds) and self.num_samples > 0):
            raise ConfigError(f"RandomAudioCrop: seconds must give at least one sample, got {self.seconds}")

    @property
    def num_samples(self) -> int:
        return round(self.seconds * self.sample_rate)

    def __call__(self, wave: Tensor, rng: np.random.Generator) -> Tensor:
        rng = require_rng(rng, self)
        length = wave.shape[-1]
        if length < self.num_samples:
            raise ValueError(
                f"RandomAudioCrop: waveform has {length} samples, fewer than the {self.num_samples} to crop"
            )
        start = int(rng.integers(0, length - self.num_samples + 1))
        return wave[..., start : start + self.num_samples]


@dataclass(frozen=True)
class _SpecMask:
    """SpecAugment masking along one axis of a log-mel ``(..., Q, P)``: ``num_masks`` bands, each of
    width drawn from 0..``max_width``, filled with the spectrogram's mean (taken before masking).

    The mean, not 0, because 0 in log-mel is a loud power of 1 while silence is log(1e-6) ~ -13.8;
    the mean is neutral, as 0 is for the mean-normalised features of the SpecAugment paper.
    """

    max_width: int
    num_masks: int = 1
    _axis = -1

    def __post_init__(self):
        for name in ("max_width", "num_masks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ConfigError(f"{type(self).__name__}: {name} must be an integer >= 0, got {value!r}")

    def __call__(self, spec: Tensor, rng: np.random.Generator) -> Tensor:
        rng = require_rng(rng, self)
        if spec.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects a (..., Q, P) spectrogram, got shape {tuple(spec.shape)}"
            )
        length = spec.shape[self._axis]
        fill = spec.mean()
        spec = spec.clone()
        view = spec.movedim(self._axis, -1)  # shares storage: writing it writes spec
        for _ in range(self.num_masks):
            width = int(rng.integers(0, min(self.max_width, length) + 1))
            start = int(rng.integers(0, length - width + 1))
            view[..., start : start + width] = fill
        return spec


class TimeMask(_SpecMask):
    """Mask ``num_masks`` random runs of up to ``max_width`` time frames (CrissCross: 20, 2)."""

    _axis = -1


class FrequencyMask(_SpecMask):
    """Mask ``num_masks`` random runs of up to ``max_width`` mel bands (CrissCross: 10, 2)."""

    _axis = -2


@dataclass(frozen=True)
class RandomResizedSpecCrop:
    """CrissCross's audio "Random Crop" (Table S2, from BYOL-A, Niizumi et al. 2021) on a log-mel
    ``(..., Q, P)``: centre the spectrogram on a canvas ``canvas_scale`` times its size (the margin
    filled with its mean, neutral as in :class:`_SpecMask`), crop a window of ``freq_scale`` x
    ``time_scale`` times its size (clipped to the canvas) at a random place, and resize the window
    back to ``Q x P`` (bicubic). Shifts and stretches in time and pitch at once."""

    freq_scale: tuple[float, float] = (0.6, 1.5)
    time_scale: tuple[float, float] = (0.6, 1.5)
    canvas_scale: tuple[float, float] = (1.0, 1.5)  # (frequency, time): BYOL-A's virtual crop scale

    def __post_init__(self):
        for name in ("freq_scale", "time_scale"):
            check_range(getattr(self, name), name, self)
            if getattr(self, name)[0] <= 0:
                raise ConfigError(f"RandomResizedSpecCrop: {name} must be positive, got {getattr(self, name)}")
        if len(self.canvas_scale) != 2 or min(self.canvas_scale) < 1:
            raise ConfigError(f"RandomResizedSpecCrop: canvas_scale must be two factors >= 1, got {self.canvas_scale}")

    def __call__(self, spec: Tensor, rng: np.random.Generator) -> Tensor:
        rng = require_rng(rng, self)
        if spec.dim() < 2:
            raise ValueError(f"RandomResizedSpecCrop expects a (..., Q, P) spectrogram, got shape {tuple(spec.shape)}")
        q, p = spec.shape[-2:]
        canvas_q, canvas_p = int(q * self.canvas_scale[0]), int(p * self.canvas_scale[1])
        canvas = spec.new_full((*spec.shape[:-2], canvas_q, canvas_p), float(spec.mean()))
        top, left = (canvas_q - q) // 2, (canvas_p - p) // 2
        canvas[..., top : top + q, left : left + p] = spec
        h = min(max(int(rng.uniform(*self.freq_scale) * q), 1), canvas_q)
        w = min(max(int(rng.uniform(*self.time_scale) * p), 1), canvas_p)
        i = int(rng.integers(0, canvas_q - h + 1))
        j = int(rng.integers(0, canvas_p - w + 1))
        crop = canvas[..., i : i + h, j : j + w].reshape(-1, 1, h, w)
        out = F.interpolate(crop, size=(q, p), mode="bicubic", align_corners=True)
        return out.reshape(spec.shape)
