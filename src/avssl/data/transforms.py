"""Video and audio augmentations on plain torch, reproducible through an explicit numpy Generator.

Every transform is a small callable ``t(x, rng) -> x``. Random ones draw all their parameters from
``rng`` once per call, i.e. once per clip, and apply them to every frame: CrissCross (Sec. 4.5)
finds temporally consistent augmentation far better than per-frame randomness (68.1 vs 53.7 top-1).
A dataset that passes a per-sample seeded ``rng`` gets the same augmentation on every run.
Deterministic transforms accept and ignore ``rng``.

Shapes: a decoded clip is uint8 ``(T, H, W, 3)`` (numpy or torch); :func:`to_tensor_video` makes it
float32 ``(3, T, H, W)`` in [0, 1], which every other video transform takes and returns (crops and
flips also take the uint8 ``(3, T, H, W)`` view: :func:`transform_video` crops before converting).
Colour transforms assume [0, 1] values, so they go before :class:`Normalize`. Audio transforms take
a float waveform ``(n,)`` or a log-mel ``(1, Q, P)``.

The parameter values of the builders follow CrissCross Table S1/S2 where the papers give them.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avssl.errors import ConfigError

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Cutout",
    "FrequencyMask",
    "GaussianBlur",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "Normalize",
    "RandomAudioCrop",
    "RandomCrop",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomResizedSpecCrop",
    "ShortSideResize",
    "TimeMask",
    "VolumeJitter",
    "audio_wave_transform",
    "spectrogram_transform",
    "to_tensor_video",
    "transform_video",
    "video_transform",
]

#: Per-channel RGB statistics of Kinetics, the usual normalisation for R(2+1)D video encoders.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

# ITU-R BT.601 luma weights, as in torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)
# RGB <-> YIQ; the hue jitter rotates the (I, Q) chroma plane.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


# ----------------------------------------------------------------------------------------- checks


def _require_rng(rng, transform) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{type(transform).__name__} is random and needs a numpy Generator as rng, got {rng!r}")
    return rng


def _check_video(x, transform, uint8: bool = False) -> None:
    """``uint8``: the transform only selects pixels, so it also takes the uint8 (3, T, H, W) clip."""
    dtype_ok = isinstance(x, Tensor) and (x.is_floating_point() or (uint8 and x.dtype == torch.uint8))
    if not (dtype_ok and x.dim() == 4 and x.shape[0] == 3):
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{type(transform).__name__} expects a float (3, T, H, W) video tensor (see to_tensor_video), got {got}"
        )


def _check_probability(p: float, transform) -> None:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{type(transform).__name__}: p must be in [0, 1], got {p}")


def _check_positive_int(value, name: str, transform) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ConfigError(f"{type(transform).__name__}: {name} must be a positive integer, got {value!r}")


def _check_range(bounds: tuple[float, float], name: str, transform, low: float = 0.0) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1]:
        raise ConfigError(
            f"{type(transform).__name__}: {name} must be (min, max) with {low} <= min <= max, got {bounds}"
        )


def _check_fits(x: Tensor, h: int, w: int, transform) -> None:
    if x.shape[-2] < h or x.shape[-1] < w:
        raise ValueError(
            f"{type(transform).__name__}: frames of {x.shape[-2]}x{x.shape[-1]} are smaller than the {h}x{w} crop; "
            "resize them first (ShortSideResize)"
        )


# ------------------------------------------------------------------------------------ composition


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


# ------------------------------------------------------------------------------- video: geometry


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
    its leading crops and flips run on the uint8 clip, so only the kept pixels are converted, and a
    Normalize right after them is done in the same pass as the /255. Same random draws; values
    equal up to float rounding (~1e-7)."""
    steps = list(transform.transforms) if isinstance(transform, Compose) else [t for t in [transform] if t is not None]
    x = _channels_first(clip)
    while steps and isinstance(steps[0], _PIXEL_SELECTING):
        x = steps.pop(0)(x, rng)
    if steps and isinstance(steps[0], Normalize):
        x = steps.pop(0).from_uint8(x)
    else:
        x = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
    for step in steps:
        x = step(x, rng)
    return x


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
        _check_positive_int(self.size, "size", self)

    def __call__(self, x: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        _check_video(x, self)
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
        _check_positive_int(self.size, "size", self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        _check_video(x, self, uint8=True)
        _check_fits(x, self.size, self.size, self)
        top = int(rng.integers(0, x.shape[-2] - self.size + 1))
        left = int(rng.integers(0, x.shape[-1] - self.size + 1))
        return x[..., top : top + self.size, left : left + self.size]


@dataclass(frozen=True)
class CenterCrop:
    """The central ``size x size`` crop (offsets rounded down when the margin is odd)."""

    size: int

    def __post_init__(self):
        _check_positive_int(self.size, "size", self)

    def __call__(self, x: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        _check_video(x, self, uint8=True)
        _check_fits(x, self.size, self.size, self)
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
        _check_positive_int(self.size, "size", self)
        _check_range(self.scale, "scale", self)
        if self.scale[0] <= 0 or self.scale[1] > 1:
            raise ConfigError(f"RandomResizedCrop: scale must lie in (0, 1], got {self.scale}")
        _check_range(self.ratio, "ratio", self)
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
        rng = _require_rng(rng, self)
        _check_video(x, self)
        top, left, h, w = self._window(x.shape[-2], x.shape[-1], rng)
        return _resize(x[..., top : top + h, left : left + w], (self.size, self.size))


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Mirror every frame left-right with probability ``p``."""

    p: float = 0.5

    def __post_init__(self):
        _check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        _check_video(x, self, uint8=True)
        return x.flip(-1) if rng.random() < self.p else x


# Transforms that only select pixels: the same on the uint8 clip (see transform_video).
_PIXEL_SELECTING = (RandomCrop, CenterCrop, RandomHorizontalFlip)


# --------------------------------------------------------------------------------- video: colour


def _luma(x: Tensor) -> Tensor:
    """(3, T, H, W) -> (1, T, H, W) grey level."""
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
    return (x * weights).sum(dim=0, keepdim=True)


def _hue_matrix(shift: float) -> Tensor:
    """3x3 RGB matrix rotating the YIQ chroma plane by ``shift`` turns.

    Approximates an HSV hue shift of ``shift`` (same direction) with one linear map: luma is kept
    exactly, saturation approximately, and out-of-gamut results are clamped afterwards.
    """
    angle = -2.0 * math.pi * shift  # negative: a positive shift moves red towards yellow, as in HSV
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    return _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ


@dataclass(frozen=True)
class ColorJitter:
    """With probability ``p``, jitter brightness, contrast, saturation and hue in a random order,
    with factors drawn once per clip (torchvision's ranges: factor in [max(0, 1-b), 1+b], hue shift
    in [-hue, hue] turns, hue <= 0.5). Expects values in [0, 1] and clamps to it.

    Two choices differ from torchvision: contrast blends towards the mean grey level of the whole
    clip, not of each frame, so all frames get the same affine map; hue is the YIQ rotation of
    :func:`_hue_matrix`, an approximation of torchvision's exact HSV shift that costs one 3x3 matrix.
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    p: float = 1.0

    def __post_init__(self):
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ColorJitter: {name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ConfigError(f"ColorJitter: hue must be in [0, 0.5], got {self.hue}")
        _check_probability(self.p, self)

    def _factor(self, strength: float, rng: np.random.Generator) -> float:
        return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength))

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        _check_video(x, self)
        if rng.random() >= self.p:
            return x
        for op in rng.permutation(4):
            if op == 0 and self.brightness > 0:
                x = (x * self._factor(self.brightness, rng)).clamp_(0.0, 1.0)
            elif op == 1 and self.contrast > 0:
                factor = self._factor(self.contrast, rng)
                x = (factor * x + (1.0 - factor) * _luma(x).mean()).clamp_(0.0, 1.0)
            elif op == 2 and self.saturation > 0:
                factor = self._factor(self.saturation, rng)
                x = (factor * x + (1.0 - factor) * _luma(x)).clamp_(0.0, 1.0)
            elif op == 3 and self.hue > 0:
                matrix = _hue_matrix(rng.uniform(-self.hue, self.hue)).to(x.dtype)
                x = torch.einsum("oc,cthw->othw", matrix, x).clamp_(0.0, 1.0)
        return x


@dataclass(frozen=True)
class RandomGrayscale:
    """With probability ``p``, replace every frame by its BT.601 grey level in all three channels."""

    p: float = 0.2

    def __post_init__(self):
        _check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        _check_video(x, self)
        return _luma(x).expand_as(x).contiguous() if rng.random() < self.p else x


@dataclass(frozen=True)
class GaussianBlur:
    """With probability ``p``, blur every frame with one Gaussian, sigma drawn from ``sigma``.

    ``kernel_size`` must be odd; SimCLR (whose setting CrissCross uses) takes ~10% of the crop size
    and sigma in [0.1, 2.0]. Separable convolution with reflect padding.
    """

    kernel_size: int
    sigma: tuple[float, float] = (0.1, 2.0)
    p: float = 0.5

    def __post_init__(self):
        _check_positive_int(self.kernel_size, "kernel_size", self)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"GaussianBlur: kernel_size must be odd, got {self.kernel_size}")
        _check_range(self.sigma, "sigma", self)
        if self.sigma[0] <= 0:
            raise ConfigError(f"GaussianBlur: sigma must be positive, got {self.sigma}")
        _check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        _check_video(x, self)
        if rng.random() >= self.p:
            return x
        sigma = rng.uniform(*self.sigma)
        radius = self.kernel_size // 2
        if min(x.shape[-2:]) <= radius:
            raise ValueError(
                f"GaussianBlur: kernel_size={self.kernel_size} is too large for {tuple(x.shape[-2:])} frames"
            )
        offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
        kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
        kernel = kernel / kernel.sum()
        c, t, h, w = x.shape
        planes = F.pad(x.reshape(c * t, 1, h, w), (radius, radius, radius, radius), mode="reflect")
        planes = F.conv2d(planes, kernel.view(1, 1, -1, 1))
        planes = F.conv2d(planes, kernel.view(1, 1, 1, -1))
        return planes.view(c, t, h, w)


@dataclass(frozen=True)
class Cutout:
    """With probability ``p``, blank ``num`` squares with sides drawn from 1..``max_size``, at the
    same place in every frame. Centres are uniform over the frame and squares are clipped at its
    border (DeVries and Taylor 2017). The fill is the first frame's per-channel mean, as CrissCross
    (App. D.1) does, so the hole carries no unusual colour."""

    max_size: int
    num: int = 1
    p: float = 1.0

    def __post_init__(self):
        _check_positive_int(self.max_size, "max_size", self)
        _check_positive_int(self.num, "num", self)
        _check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        _check_video(x, self)
        if rng.random() >= self.p:
            return x
        height, width = x.shape[-2:]
        fill = x[:, 0].mean(dim=(-2, -1)).view(3, 1, 1, 1)
        x = x.clone()
        for _ in range(self.num):
            side = int(rng.integers(1, self.max_size + 1))
            cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
            top, left = max(0, cy - side // 2), max(0, cx - side // 2)
            bottom, right = min(height, cy - side // 2 + side), min(width, cx - side // 2 + side)
            x[:, :, top:bottom, left:right] = fill
        return x


@dataclass(frozen=True)
class Normalize:
    """Per-channel ``(x - mean) / std``."""

    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    def __post_init__(self):
        # Accept any sequence but store tuples, so the transform stays hashable and printable.
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(f"Normalize: mean and std need 3 values (RGB), got {self.mean} and {self.std}")
        if min(self.std) <= 0:
            raise ConfigError(f"Normalize: std must be positive, got {self.std}")

    def __call__(self, x: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        _check_video(x, self)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
        return (x - mean) / std

    def from_uint8(self, x: Tensor) -> Tensor:
        """``self(x / 255)`` for a uint8 (3, T, H, W) clip, in one pass into a new contiguous float32
        tensor: ``x * (1 / (255 std)) + (-mean / std)``, the constants computed in double."""
        f32 = {"dtype": torch.float32, "device": x.device}
        scale = torch.tensor([1 / (255 * s) for s in self.std], **f32).view(3, 1, 1, 1)
        shift = torch.tensor([-m / s for m, s in zip(self.mean, self.std)], **f32).view(3, 1, 1, 1)
        return torch.addcmul(shift, x, scale, out=torch.empty(x.shape, **f32))


# ------------------------------------------------------------------------------------------ audio


@dataclass(frozen=True)
class VolumeJitter:
    """Scale the waveform by a gain drawn uniformly from [1 - jitter, 1 + jitter]."""

    jitter: float = 0.1

    def __post_init__(self):
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"VolumeJitter: jitter must be in [0, 1), got {self.jitter}")

    def __call__(self, wave: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
        return wave * float(rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))


@dataclass(frozen=True)
class RandomAudioCrop:
    """A random window of ``seconds`` (rounded to whole samples) from a longer waveform ``(..., n)``."""

    seconds: float
    sample_rate: int = 16000

    def __post_init__(self):
        _check_positive_int(self.sample_rate, "sample_rate", self)
        if not (math.isfinite(self.seconds) and self.num_samples > 0):
            raise ConfigError(f"RandomAudioCrop: seconds must give at least one sample, got {self.seconds}")

    @property
    def num_samples(self) -> int:
        return round(self.seconds * self.sample_rate)

    def __call__(self, wave: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
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
        rng = _require_rng(rng, self)
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
            _check_range(getattr(self, name), name, self)
            if getattr(self, name)[0] <= 0:
                raise ConfigError(f"RandomResizedSpecCrop: {name} must be positive, got {getattr(self, name)}")
        if len(self.canvas_scale) != 2 or min(self.canvas_scale) < 1:
            raise ConfigError(f"RandomResizedSpecCrop: canvas_scale must be two factors >= 1, got {self.canvas_scale}")

    def __call__(self, spec: Tensor, rng: np.random.Generator) -> Tensor:
        rng = _require_rng(rng, self)
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


# --------------------------------------------------------------------------------------- builders


def video_transform(
    train: bool,
    crop_size: int,
    resize: int | None = None,
    flip: bool = True,
    color_jitter: float = 0.0,
    grayscale: float = 0.0,
    blur: float = 0.0,
    cutout: float = 0.0,
    multiscale: bool = False,
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
) -> Compose:
    """The video chain used by training and evaluation: float ``(3, T, H, W)`` clip in [0, 1] (from
    :func:`to_tensor_video`) -> normalised float ``(3, T, crop_size, crop_size)``.

    train: [short-side resize], random crop (multi-scale crop if ``multiscale``), flip, then the
    enabled jitters, normalise. eval: [resize], centre crop, normalise.

    ``color_jitter`` is the strength s: brightness, contrast and saturation s, hue s/2 (0.4 gives
    CrissCross Table S1's 0.4/0.4/0.4/0.2), applied with probability 0.8 as in SimCLR, since the
    papers give no probability. ``grayscale``, ``blur`` and ``cutout`` are probabilities (Table S1:
    0.2, 0.5, 1). The blur kernel is ~10% of the crop (SimCLR); the cutout size limit is 20 px at
    CrissCross's 112 px crop, scaled with the crop size.
    """
    steps: list[Callable] = []
    if resize is not None:
        steps.append(ShortSideResize(resize))
    if not train:
        return Compose([*steps, CenterCrop(crop_size), Normalize(mean, std)])

    steps.append(RandomResizedCrop(crop_size) if multiscale else RandomCrop(crop_size))
    if flip:
        steps.append(RandomHorizontalFlip())
    if color_jitter > 0:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter, min(0.5, color_jitter / 2), p=0.8))
    if grayscale > 0:
        steps.append(RandomGrayscale(grayscale))
    if blur > 0:
        steps.append(GaussianBlur(max(3, 2 * (crop_size // 20) + 1), p=blur))
    if cutout > 0:
        steps.append(Cutout(max(1, round(crop_size * 20 / 112)), p=cutout))
    steps.append(Normalize(mean, std))
    return Compose(steps)


def audio_wave_transform(train: bool, volume_jitter: float = 0.1) -> Compose:
    """Waveform augmentation: volume jitter when training, identity otherwise."""
    return Compose([VolumeJitter(volume_jitter)] if train and volume_jitter > 0 else [])


def spectrogram_transform(train: bool, time_mask: int = 0, freq_mask: int = 0, random_crop: bool = False,
                          time_warp: int = 0) -> Compose:
    """Log-mel augmentation when training: the random resized crop if ``random_crop``, a time warp of up
    to ``time_warp`` frames (``time_warp.TimeWarp``, Table S2: 20), then two time masks of up to
    ``time_mask`` frames and two frequency masks of up to ``freq_mask`` bands (CrissCross Table S2: 20
    and 10); identity otherwise."""
    if not train:
        return Compose([])
    steps: list[Callable] = [RandomResizedSpecCrop()] if random_crop else []
    if time_warp > 0:
        from .time_warp import TimeWarp

        steps.append(TimeWarp(time_warp))
    if time_mask > 0:
        steps.append(TimeMask(time_mask, num_masks=2))
    if freq_mask > 0:
        steps.append(FrequencyMask(freq_mask, num_masks=2))
    return Compose(steps)
