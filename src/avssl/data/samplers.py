"""Clip samplers: where in a video to take clips, as start times in seconds.

Samplers see only durations, never files, so they are trivially testable and shared by every
dataset. A video shorter than one clip raises :class:`ClipTooShortError`, which the dataset turns
into a counted skip.

Every sampler is called the same way, ``sampler(duration, rng, key=video_index)``, and takes from
the call what it needs: the random ones the generator, the fixed one the key, the others neither.
``per_epoch`` says whether its starts are drawn afresh each epoch (one dataset item per video)
or are a fixed list per video (one item per clip).

    starts = FixedClipSampler(2.0, num_clips=5, seed=3)(20.0, key=11)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from avssl import seeds
from avssl.errors import ConfigError

__all__ = ["ClipTooShortError", "DenseClipSampler", "FixedClipSampler", "RandomClipSampler", "UniformClipSampler"]

# Durations computed as frames / fps or samples / rate can land a hair below the clip length
# (2.9999999999 for 3.0) or above it. Gaps up to this count as "fits exactly"; 1 us is far below one
# audio sample at 16 kHz (62.5 us), so it never changes what gets decoded.
TOLERANCE_S = 1e-6


class ClipTooShortError(ValueError):
    """The video is shorter than one clip."""

    def __init__(self, duration: float, clip_duration: float):
        self.duration = duration
        self.clip_duration = clip_duration
        super().__init__(f"video lasts {duration:.6g} s, shorter than one clip of {clip_duration:.6g} s")


class _ClipSampler:
    """Shared argument checks and the range of valid start times."""

    per_epoch = False  # starts drawn afresh each epoch (True), or a fixed list per video

    def __init__(self, clip_duration: float, num_clips: int):
        name = type(self).__name__
        if not (isinstance(clip_duration, numbers.Real) and math.isfinite(clip_duration) and clip_duration > 0):
            raise ConfigError(f"{name}: clip_duration must be a positive number of seconds, got {clip_duration!r}")
        if isinstance(num_clips, bool) or not isinstance(num_clips, numbers.Integral) or num_clips < 1:
            raise ConfigError(f"{name}: num_clips must be a positive integer, got {num_clips!r}")
        self.clip_duration = float(clip_duration)
        self.num_clips = int(num_clips)

    def _max_start(self, duration: float) -> float:
        """Latest start that keeps the clip inside the video; raises if no start does."""
        if not (isinstance(duration, numbers.Real) and math.isfinite(duration) and duration >= 0):
            raise ValueError(f"{type(self).__name__}: duration must be a finite number >= 0, got {duration!r}")
        slack = float(duration) - self.clip_duration
        if slack < -TOLERANCE_S:
            raise ClipTooShortError(float(duration), self.clip_duration)
        return slack if slack > TOLERANCE_S else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(clip_duration={self.clip_duration}, num_clips={self.num_clips})"


class RandomClipSampler(_ClipSampler):
    """Training: ``num_clips`` independent uniformly random starts (temporal jitter).

    Starts are returned in draw order, not sorted, so with two clips neither view is biased to be
    the earlier one.
    """

    per_epoch = True

    def __init__(self, clip_duration: float, num_clips: int = 1):
        super().__init__(clip_duration, num_clips)

    def __call__(self, duration: float, rng: np.random.Generator | None = None, key: int | None = None) -> list[float]:
        if rng is None:
            raise ValueError("RandomClipSampler: needs a generator (rng)")
        max_start = self._max_start(duration)
        return [float(s) for s in rng.uniform(0.0, max_start, size=self.num_clips)]


class UniformClipSampler(_ClipSampler):
    """Testing: ``num_clips`` evenly spaced starts from 0 to the last valid start, so the clips
    cover the whole video (K=10 in XDC and CrissCross). A single clip is centred."""

    def __init__(self, clip_duration: float, num_clips: int = 10):
        super().__init__(clip_duration, num_clips)

    def __call__(self, duration: float, rng: np.random.Generator | None = None, key: int | None = None) -> list[float]:
        max_start = self._max_start(duration)
        if self.num_clips == 1:
            return [max_start / 2]
        return [float(s) for s in np.linspace(0.0, max_start, self.num_clips)]


class FixedClipSampler(_ClipSampler):
    """Feature extraction for clustering: ``num_clips`` random starts that are the same every time
    a video is seen, because the generator is seeded by ``(seed, key)`` (``key``: the video's index).

    Starts are sorted so a decoder reads each file front to back without seeking backwards.
    """

    def __init__(self, clip_duration: float, num_clips: int, seed: int = 0):
        super().__init__(clip_duration, num_clips)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ConfigError(f"FixedClipSampler: seed must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)

    def __call__(self, duration: float, rng: np.random.Generator | None = None, key: int | None = None) -> list[float]:
        if isinstance(key, bool) or not isinstance(key, numbers.Integral) or key < 0:
            raise ValueError(f"FixedClipSampler: key must be an integer >= 0, got {key!r}")
        max_start = self._max_start(duration)
        rng = seeds.keyed_rng(self.seed, int(key))  # not the caller's rng: the same starts every epoch
        return [float(s) for s in np.sort(rng.uniform(0.0, max_start, size=self.num_clips))]

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, seed={self.seed})"


class DenseClipSampler(_ClipSampler):
    """Dense features (temporal action localization): a clip every ``stride`` seconds from 0 to the
    last valid start, however long the video, so clip n covers [n * stride, n * stride + clip].

    With ``grid`` (frames per second), starts are snapped to the nearest frame time k / grid, so
    every clip begins exactly on a decoded frame and a decoder can cut consecutive clips out of one
    run of frames (the stride must then be at least one frame); a snapped start past the last valid
    start is dropped.
    """

    def __init__(self, clip_duration: float, stride: float, grid: float | None = None):
        super().__init__(clip_duration, 1)
        for name, value in (("stride", stride), ("grid", grid)):
            if value is None and name == "grid":
                continue
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
                raise ConfigError(f"DenseClipSampler: {name} must be a positive number, got {value!r}")
        if grid is not None and stride * grid < 1 - 1e-9:
            raise ConfigError(f"DenseClipSampler: a stride of {stride} s is shorter than one frame at {grid} fps")
        self.stride = float(stride)
        self.grid = None if grid is None else float(grid)

    def __call__(self, duration: float, rng: np.random.Generator | None = None, key: int | None = None) -> list[float]:
        max_start = self._max_start(duration)
        starts = np.arange(math.floor(max_start / self.stride + TOLERANCE_S) + 1) * self.stride
        if self.grid is not None:
            starts = np.round(starts * self.grid) / self.grid
            starts = starts[starts <= max_start + TOLERANCE_S]
        return [float(s) for s in starts]

    def frames(self, duration: float) -> np.ndarray:
        """The starts as frame numbers on ``grid`` (needs a grid)."""
        if self.grid is None:
            raise ConfigError("DenseClipSampler.frames needs a grid (frames per second)")
        return np.round(np.asarray(self(duration)) * self.grid).astype(np.int64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(clip_duration={self.clip_duration}, stride={self.stride}, grid={self.grid})"
