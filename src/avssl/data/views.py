"""View plans: which windows of one video a training item holds, and where each starts.

The clip samplers (``samplers``) give one start per clip, and both modalities of a clip start there.
AVTS and CrissCross need several windows of the same video in one item, in a set temporal relation:
AVTS a video window with its in-sync audio and, for a hard negative, audio from elsewhere in the
video; CrissCross two audio-visual views whose distance in time is its "relaxation". A plan is called
with a video's usable duration and the item's generator and returns a :class:`ViewSample`: the
start of each named window, and a few integers about the item (e.g. the kind of its negative).

Window names are ``<modality>`` or ``<modality>_<tag>`` (``video``, ``audio_neg``, ``video_1``): the
dataset decodes a video window as ``num_frames`` frames and an audio window as ``audio_duration``
seconds from its start, as it does for a plain clip. A start of ``None`` means the item does not use
that window (an AVTS easy negative comes from another video of the batch, not from this one).

Relations are on the windows' true spans, ``video_span = num_frames / fps`` and ``audio_span``;
a "view" of both spans ``span = max(video_span, audio_span)`` (the audio's 2 s in every preset).
Like the samplers, plans see durations only, never files, so the relations are testable exactly.
(The decoded-video cache rounds a video start down to its frame grid, which moves a video window by
less than one frame.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .samplers import TOLERANCE_S, ClipTooShortError

RELAXATIONS = ("none", "mild", "medium", "extreme", "mixed")  # crisscross.relaxation

__all__ = ["RELAXATIONS", "RelaxedViews", "SyncNegatives", "ViewPlan", "ViewSample", "window_modality"]


@dataclass(frozen=True)
class ViewSample:
    starts: dict  # window name -> start in seconds, or None when the item does not use the window
    info: dict = field(default_factory=dict)  # integers the method reads (batched like labels)


def window_modality(name: str) -> str:
    """``video_1`` -> ``video``: the modality a window decodes."""
    return name.split("_", 1)[0]


def uniform_in(intervals, rng: np.random.Generator) -> float:
    """A uniform draw from the union of closed intervals ``(lo, hi)``; empty ones (hi < lo) are
    ignored, overlapping ones merged, and when only single points remain, one of them is picked."""
    spans: list[tuple[float, float]] = []
    for lo, hi in sorted((lo, hi) for lo, hi in intervals if hi >= lo):
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    if not spans:
        raise ValueError("no interval to draw from")
    lengths = np.array([hi - lo for lo, hi in spans])
    if lengths.sum() <= 0:
        return float(spans[int(rng.integers(len(spans)))][0])
    lo, hi = spans[int(rng.choice(len(spans), p=lengths / lengths.sum()))]
    return float(rng.uniform(lo, hi))


class ViewPlan:
    """Base of the plans: the spans of a video and an audio window, and the duration check."""

    windows: tuple[str, ...] = ()

    def __init__(self, video_span: float, audio_span: float):
        if not (video_span > 0 and audio_span > 0):
            raise ConfigError(f"{type(self).__name__}: window spans must be positive, got {video_span}, {audio_span}")
        self.video_span, self.audio_span = float(video_span), float(audio_span)
        self.span = max(self.video_span, self.audio_span)

    @property
    def min_duration(self) -> float:
        """Seconds of usable video every item of the plan needs; shorter videos are skipped."""
        return self.span

    def _usable(self, duration: float) -> float:
        if duration < self.min_duration - TOLERANCE_S:
            raise ClipTooShortError(float(duration), self.min_duration)
        return max(float(duration), self.min_duration)

    def __call__(self, duration: float, rng: np.random.Generator) -> ViewSample:
        raise NotImplementedError


class SyncNegatives(ViewPlan):
    """AVTS: a video window at ``t`` with its in-sync audio at ``t``, and one negative per item.

    Negative kinds (``info["negative"]``), drawn with probabilities ``1 - hard - superhard``,
    ``hard``, ``superhard``:
    - EASY (0): audio of another video; the method takes it from another item of the batch, so
      ``audio_neg`` is not decoded (start None);
    - HARD (1): audio of the same video that does not overlap the video window in time;
    - SUPERHARD (2): audio of the same video that overlaps the video window but starts at least
      ``min_shift`` seconds away from it (out of sync by that much).
    The relations are between the negative audio and the video window, as the slides define them.
    """

    EASY, HARD, SUPERHARD = 0, 1, 2

    def __init__(self, video_span: float, audio_span: float, hard: float = 0.0, superhard: float = 0.0,
                 min_shift: float = 0.5):
        super().__init__(video_span, audio_span)
        if not (0 <= hard and 0 <= superhard and hard + superhard <= 1):
            raise ConfigError(f"SyncNegatives: hard ({hard}) and superhard ({superhard}) must be >= 0 with a sum <= 1")
        if superhard > 0 and not 0 < min_shift < self.span:
            raise ConfigError(f"SyncNegatives: min_shift must be in (0, {self.span}), got {min_shift}")
        self.hard, self.superhard, self.min_shift = float(hard), float(superhard), float(min_shift)
        self.windows = ("video", "audio", "audio_neg") if hard + superhard > 0 else ("video", "audio")

    @property
    def min_duration(self) -> float:
        need = self.span
        if self.hard > 0:  # the audio fits entirely before or after the frames
            need = max(need, self.video_span + self.audio_span)
        if self.superhard > 0:  # the pair's span plus the shift
            need = max(need, self.span + self.min_shift)
        return need

    def __call__(self, duration: float, rng: np.random.Generator) -> ViewSample:
        d = self._usable(duration)
        kind = int(rng.choice(3, p=[1.0 - self.hard - self.superhard, self.hard, self.superhard]))
        last = d - self.span  # latest start of the positive pair (frames and their audio)
        dv, da = self.video_span, self.audio_span
        if kind == self.EASY:
            t = float(rng.uniform(0.0, last))
            return ViewSample({"video": t, "audio": t, "audio_neg": None}, {"negative": kind})
        if kind == self.HARD:
            # t where audio fits before (t >= da) or after (t + dv <= d - da) the frames, then the audio.
            t = uniform_in([(da, last), (0.0, min(last, d - da - dv))], rng)
            neg = uniform_in([(0.0, t - da), (t + dv, d - da)], rng)
        else:
            s = self.min_shift
            earlier = s < da  # audio starting s or more before the frames still overlaps them
            later = s < dv  # audio starting s or more after the first frame still overlaps them
            t = uniform_in([(s, last)] * earlier + [(0.0, min(last, d - da - s))] * later, rng)
            neg = uniform_in([(max(0.0, t - da), t - s)] * earlier + [(t + s, min(d - da, t + dv))] * later, rng)
        return ViewSample({"video": t, "audio": t, "audio_neg": neg}, {"negative": kind})

    def __repr__(self) -> str:
        return (f"SyncNegatives(video_span={self.video_span}, audio_span={self.audio_span}, hard={self.hard}, "
                f"superhard={self.superhard}, min_shift={self.min_shift})")


class RelaxedViews(ViewPlan):
    """CrissCross (Sec. 4.3): two audio-visual views ``(video_1, audio_1)`` at ``t1`` and
    ``(video_2, audio_2)`` at ``t2``, whose temporal relation is the relaxation:

    - ``none``: the same window (t1 = t2), augmented twice;
    - ``mild``: views overlap by 50% (|t1 - t2| = span / 2);
    - ``medium``: adjacent views (|t1 - t2| = span);
    - ``extreme``: one view inside the first half of the video, the other inside the second half;
    - ``mixed``: both starts independent and uniform (any relation, from identical to far apart).

    Which view comes first is random, so neither is biased to be the earlier one.
    """

    windows = ("video_1", "audio_1", "video_2", "audio_2")
    _NEEDS = {"none": 1.0, "mild": 1.5, "medium": 2.0, "extreme": 2.0, "mixed": 1.0}  # in spans

    def __init__(self, video_span: float, audio_span: float, relaxation: str = "mild"):
        super().__init__(video_span, audio_span)
        if relaxation not in RELAXATIONS:
            raise ConfigError(f"RelaxedViews: relaxation must be one of {RELAXATIONS}, got {relaxation!r}")
        self.relaxation = relaxation

    @property
    def min_duration(self) -> float:
        return self._NEEDS[self.relaxation] * self.span

    def __call__(self, duration: float, rng: np.random.Generator) -> ViewSample:
        d = self._usable(duration)
        mode, span = self.relaxation, self.span
        if mode == "mixed":
            t1, t2 = rng.uniform(0.0, d - span, size=2)
        elif mode == "extreme":
            half = d / 2
            t1, t2 = rng.uniform(0.0, half - span), rng.uniform(half, d - span)
        else:
            gap = {"none": 0.0, "mild": span / 2, "medium": span}[mode]
            t1 = rng.uniform(0.0, d - span - gap)
            t2 = t1 + gap
        if mode != "mixed" and rng.random() < 0.5:
            t1, t2 = t2, t1
        t1, t2 = float(t1), float(t2)
        return ViewSample({"video_1": t1, "audio_1": t1, "video_2": t2, "audio_2": t2})

    def __repr__(self) -> str:
        return f"RelaxedViews(video_span={self.video_span}, audio_span={self.audio_span}, relaxation={self.relaxation!r})"
