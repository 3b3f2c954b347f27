"""Video colour: jitter, grayscale, blur, cutout and normalisation (on [0, 1] float clips)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avssl.errors import ConfigError
from .checks import applies, check_positive_int, check_probability, check_range, check_video


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



def _luma(x: Tensor) -> Tensor:
    """(3, T, H, W) -> (1, T, H, W) grey level: ``(w0 x0 + w1 x1) + w2 x2``, each product rounded to
    x's dtype, added in that order (what ``(x * weights).sum(0)`` gives, bit for bit, without its
    temporary the size of the clip)."""
    w0, w1, w2 = torch.tensor(_LUMA, dtype=x.dtype).tolist()  # the weights rounded to x's dtype
    y = x[0:1] * w0
    term = x[1:2] * w1
    y += term
    y += torch.mul(x[2:3], w2, out=term)
    return y


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
        check_probability(self.p, self)

    def _factor(self, strength: float, rng: np.random.Generator) -> float:
        return float(rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength))

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        return self._jitter(x, rng, owned=False)

    def apply_(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        """``self(x, rng)``, overwriting ``x`` (which it returns) where it can; same values."""
        return self._jitter(x, rng, owned=True)

    def _jitter(self, x: Tensor, rng: np.random.Generator, owned: bool) -> Tensor:
        # Each op is factor * x (+ a shift), clamped: done in place once x is a tensor of its own
        # (``owned``: the caller's, given to apply_, or one an earlier op made), the same values as
        # ``(factor * x + shift).clamp_(0, 1)``.
        if not applies(x, rng, self):
            return x
        for op in rng.permutation(4):
            if op == 0 and self.brightness > 0:
                factor = self._factor(self.brightness, rng)
                x = x.mul_(factor) if owned else x * factor
            elif op == 1 and self.contrast > 0:
                factor = self._factor(self.contrast, rng)
                shift = (1.0 - factor) * _luma(x).mean()
                x = (x.mul_(factor) if owned else x * factor).add_(shift)
            elif op == 2 and self.saturation > 0:
                factor = self._factor(self.saturation, rng)
                shift = _luma(x).mul_(1.0 - factor)
                x = (x.mul_(factor) if owned else x * factor).add_(shift)
            elif op == 3 and self.hue > 0:
                matrix = _hue_matrix(rng.uniform(-self.hue, self.hue)).to(x.device, x.dtype)
                x = torch.einsum("oc,cthw->othw", matrix, x)
            else:
                continue
            x, owned = x.clamp_(0.0, 1.0), True
        return x


@dataclass(frozen=True)
class RandomGrayscale:
    """With probability ``p``, replace every frame by its BT.601 grey level in all three channels."""

    p: float = 0.2

    def __post_init__(self):
        check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        return _luma(x).expand_as(x).contiguous() if applies(x, rng, self) else x


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
        check_positive_int(self.kernel_size, "kernel_size", self)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"GaussianBlur: kernel_size must be odd, got {self.kernel_size}")
        check_range(self.sigma, "sigma", self)
        if self.sigma[0] <= 0:
            raise ConfigError(f"GaussianBlur: sigma must be positive, got {self.sigma}")
        check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        if not applies(x, rng, self):
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
        if x.device.type != "cpu":
            return _blur_conv(x, kernel)
        return _blur_shifts(x, kernel.tolist())


def _blur_conv(x: Tensor, kernel: Tensor) -> Tensor:
    """The separable blur as two convolutions of the reflect-padded frames (vertical, then horizontal)."""
    radius = len(kernel) // 2
    c, t, h, w = x.shape
    planes = F.pad(x.reshape(c * t, 1, h, w), (radius, radius, radius, radius), mode="reflect")
    planes = F.conv2d(planes, kernel.view(1, 1, -1, 1))
    planes = F.conv2d(planes, kernel.view(1, 1, 1, -1))
    return planes.view(c, t, h, w)


def _blur_shifts(x: Tensor, kernel: list[float]) -> Tensor:
    """:func:`_blur_conv` on the CPU, ~2.5x cheaper (8x112x112 clip, kernel 11: 3.9 -> 1.5 ms on one
    thread): each pass is ``k[0] x[0:] + k[1] x[1:] + ...``, one multiply-add per tap over shifted
    views of the padded planes, a few planes at a time (about _BLUR_CHUNK_BYTES: they stay in cache
    across the taps). The vertical pass needs only the rows padded (reflecting rows commutes with
    blurring columns), the horizontal one reflects the columns of its result. Same sums in the same
    order as the convolution (bit for bit the same values on this machine; float rounding at most),
    except that taps below ``tiny / eps`` of the dtype (float32: 2^-103, ~1e-31) are left out. A zero
    tap adds nothing (exactly, for finite values); a tap that small makes most products of its pass
    subnormal (with values in [0, 1]: for sigma ~0.14-0.16, 0.21-0.24, 0.28-0.32, 0.35-0.40, about 8%
    of SimCLR's draws from [0.1, 2]), which this CPU computes 5-20x slower (8x112x112: up to 10 ms
    instead of 1.6 here, 80 ms in the convolution), while their products (values in [0, 1]: under
    1e-31 each) vanish into the first partial sum over ~1e-22 (float32), so only outputs in black
    areas can differ, by under 1e-30."""
    radius = len(kernel) // 2
    finfo = torch.finfo(x.dtype)
    taps = [(i, k) for i, k in enumerate(kernel) if abs(k) >= finfo.tiny / finfo.eps]  # see the docstring
    c, t, h, w = x.shape
    planes = x.reshape(c * t, h, w)
    out = torch.empty(c * t, h, w, dtype=x.dtype)
    wide = torch.empty(0, dtype=x.dtype)
    step = max(1, _BLUR_CHUNK_BYTES // (x.element_size() * (h + 2 * radius) * (w + 2 * radius)))
    for start in range(0, c * t, step):
        padded = F.pad(planes[start : start + step].unsqueeze(1), (0, 0, radius, radius), mode="reflect")[:, 0]
        n = padded.shape[0]
        if wide.shape[:1] != (n,):
            wide = torch.empty(n, h, w + 2 * radius, dtype=x.dtype)
        inner = wide[:, :, radius : radius + w]
        (i, k), *rest = taps
        torch.mul(padded[:, i : i + h], k, out=inner)
        for i, k in rest:
            inner.add_(padded[:, i : i + h], alpha=k)
        wide[:, :, :radius] = inner[:, :, 1 : radius + 1].flip(-1)  # reflect: column -j is column j
        wide[:, :, radius + w :] = inner[:, :, w - radius - 1 : w - 1].flip(-1)
        dest = out[start : start + n]
        (i, k), *rest = taps
        torch.mul(wide[:, :, i : i + w], k, out=dest)
        for i, k in rest:
            dest.add_(wide[:, :, i : i + w], alpha=k)
    return out.view(c, t, h, w)


# Padded bytes GaussianBlur's CPU path blurs per pass (about eight 112x112 float planes): in a core's L2.
_BLUR_CHUNK_BYTES = 512 * 1024


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
        check_positive_int(self.max_size, "max_size", self)
        check_positive_int(self.num, "num", self)
        check_probability(self.p, self)

    def __call__(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        if not applies(x, rng, self):
            return x
        fill = x[:, 0].mean(dim=(-2, -1)).view(3, 1, 1, 1)
        return self._cut(x.clone(), rng, fill)

    def apply_(self, x: Tensor, rng: np.random.Generator) -> Tensor:
        """``self(x, rng)``, blanking the squares of ``x`` itself (which it returns)."""
        if not applies(x, rng, self):
            return x
        return self._cut(x, rng, x[:, 0].mean(dim=(-2, -1)).view(3, 1, 1, 1))

    def _cut(self, x: Tensor, rng: np.random.Generator, fill: Tensor) -> Tensor:
        height, width = x.shape[-2:]
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
        check_video(x, self)
        return self.apply_(x.clone())

    def apply_(self, x: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        """``self(x)`` written over ``x`` (which it returns): ``(x - mean) / std``, the same two roundings."""
        check_video(x, self)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1, 1)
        return x.sub_(mean).div_(std)

    def from_uint8(self, x: Tensor, flip: bool | Tensor = False) -> Tensor:
        """``self(x / 255)`` for a uint8 (3, T, H, W) clip or (B, 3, T, H, W) batch (mirrored left-right
        first if ``flip``; for a batch, one bool or one per clip), into a new contiguous float32 tensor:
        ``x * (1 / (255 std)) + (-mean / std)``, the constants computed in double and rounded to float32
        once. On the CPU through numpy, frame by frame: the uint8 frame (a crop of a channels-last
        decode: its pixels 3 bytes apart, a flip read as a negative stride, no copy) is cast straight
        into its place in the output, then scaled and shifted in place while the 0.6 MB frame is still
        in cache (small frames: several at a time). The cast is the one pass over memory; a whole-clip
        multiply then add (the earlier code) went over the 4.8 MB output twice, out of cache
        (BENCHMARKS.md section 7, session 6: 3.2 -> 2.5 ms for an 8x224x224 crop right after its
        decode). Values are equal bit for bit to that code: float32(u) * scale, rounded, + shift, rounded."""
        scale = [1 / (255 * s) for s in self.std]
        shift = [-m / s for m, s in zip(self.mean, self.std)]
        flips = torch.as_tensor(flip, dtype=torch.bool).reshape(-1)
        if x.device.type != "cpu":  # (a wrong number of flips fails to broadcast in torch.where)
            f32 = {"dtype": torch.float32, "device": x.device}
            if flips.any():
                x = torch.where(flips.to(x.device).view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
            return torch.addcmul(torch.tensor(shift, **f32).view(3, 1, 1, 1), x,
                                 torch.tensor(scale, **f32).view(3, 1, 1, 1), out=torch.empty(x.shape, **f32))
        a = x.numpy()
        out = np.empty(a.shape, np.float32)
        scale32 = np.array(scale, np.float32).reshape(3, 1, 1, 1)
        shift32 = np.array(shift, np.float32).reshape(3, 1, 1, 1)
        # Frames per pass: as many as fill about _CHUNK_BYTES of output (one 224x224 frame; a whole
        # 8x64x64 clip, where a loop over frames would only add calls).
        step = max(1, _CHUNK_BYTES // max(1, 12 * a.shape[-2] * a.shape[-1]))
        clips = a if a.ndim == 5 else a[None]
        if flips.numel() not in (1, len(clips)):
            raise ValueError(f"from_uint8: {flips.numel()} flips for {len(clips)} clips")
        flips = flips.expand(len(clips)).tolist() if flips.numel() == 1 else flips.tolist()
        for clip, clip_out, mirrored in zip(clips, out if out.ndim == 5 else out[None], flips):  # views
            clip = clip[..., ::-1] if mirrored else clip  # read mirrored: a negative stride, no copy
            for t in range(0, a.shape[-3], step):
                chunk = clip_out[:, t : t + step]
                chunk[...] = clip[:, t : t + step]  # the cast: exact for uint8
                chunk *= scale32
                chunk += shift32
        return torch.from_numpy(out)


# Output bytes converted per pass of Normalize.from_uint8: small enough to stay in a core's L2 cache.
_CHUNK_BYTES = 640 * 1024
