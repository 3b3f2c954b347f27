import numpy as np
import pytest

from avssl.data.samplers import (
    ClipTooShortError, DenseClipSampler, FixedClipSampler, RandomClipSampler, UniformClipSampler,
)
from avssl.errors import ConfigError


def test_random_starts_cover_the_valid_range():
    sampler = RandomClipSampler(clip_duration=2.0, num_clips=1000)
    starts = np.array(sampler(10.0, np.random.default_rng(0)))
    assert len(starts) == 1000
    assert starts.min() >= 0.0 and starts.max() <= 8.0
    # Uniform over [0, 8]: both ends are reached and the mean sits in the middle.
    assert starts.min() < 0.1 and starts.max() > 7.9
    assert abs(starts.mean() - 4.0) < 0.3


def test_random_is_reproducible_and_seed_dependent():
    sampler = RandomClipSampler(clip_duration=1.0, num_clips=2)
    first = sampler(30.0, np.random.default_rng(7))
    assert first == sampler(30.0, np.random.default_rng(7))
    assert first != sampler(30.0, np.random.default_rng(8))
    assert all(isinstance(s, float) for s in first)


def test_uniform_spacing_is_exact_and_spans_the_video():
    sampler = UniformClipSampler(clip_duration=2.0, num_clips=10)
    starts = sampler(11.0)
    assert len(starts) == 10
    assert starts[0] == 0.0 and starts[-1] == 9.0  # last clip ends exactly at the end of the video
    np.testing.assert_allclose(np.diff(starts), 1.0, rtol=0, atol=1e-12)
    assert starts == sampler(11.0, np.random.default_rng(3))  # no randomness


def test_uniform_single_clip_is_centred():
    assert UniformClipSampler(clip_duration=2.0, num_clips=1)(10.0) == [4.0]


def test_fixed_is_stable_per_key_and_differs_across_keys():
    sampler = FixedClipSampler(clip_duration=2.0, num_clips=5, seed=3)
    starts = sampler(20.0, key=11)
    assert starts == sampler(20.0, key=11)
    assert starts == FixedClipSampler(clip_duration=2.0, num_clips=5, seed=3)(20.0, key=11)  # a new instance
    assert starts != sampler(20.0, key=12)
    assert starts != FixedClipSampler(clip_duration=2.0, num_clips=5, seed=4)(20.0, key=11)
    assert starts == sorted(starts)
    assert all(0.0 <= s <= 18.0 for s in starts)


def test_fixed_accepts_numpy_integer_keys():
    sampler = FixedClipSampler(clip_duration=1.0, num_clips=3)
    assert sampler(5.0, key=np.int64(4)) == sampler(5.0, key=4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: RandomClipSampler(2.0)(1.5, np.random.default_rng(0)),
        lambda: UniformClipSampler(2.0)(1.5),
        lambda: FixedClipSampler(2.0, 3)(1.5, key=0),
    ],
    ids=["random", "uniform", "fixed"],
)
def test_short_video_raises_with_both_durations(call):
    with pytest.raises(ClipTooShortError, match=r"1\.5 s.*2 s") as info:
        call()
    assert isinstance(info.value, ValueError)
    assert (info.value.duration, info.value.clip_duration) == (1.5, 2.0)


def test_exact_fit_starts_at_zero_even_with_float_rounding():
    # Durations summed from frame times land a hair off: 3.0000000000000013 above, 3 - 1e-9 below.
    for duration in (3.0, sum([0.1] * 30), 3.0 - 1e-9):
        assert RandomClipSampler(3.0, num_clips=4)(duration, np.random.default_rng(0)) == [0.0] * 4
        assert UniformClipSampler(3.0, num_clips=10)(duration) == [0.0] * 10
        assert FixedClipSampler(3.0, num_clips=2)(duration, key=1) == [0.0, 0.0]
    with pytest.raises(ClipTooShortError):
        UniformClipSampler(3.0)(3.0 - 1e-3)


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -1.0])
def test_invalid_duration_is_a_plain_value_error(duration):
    with pytest.raises(ValueError, match="duration") as info:
        UniformClipSampler(1.0)(duration)
    assert not isinstance(info.value, ClipTooShortError)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: RandomClipSampler(0.0), "clip_duration"),
        (lambda: RandomClipSampler(float("inf")), "clip_duration"),
        (lambda: RandomClipSampler(1.0, num_clips=0), "num_clips"),
        (lambda: UniformClipSampler(1.0, num_clips=2.5), "num_clips"),
        (lambda: FixedClipSampler(1.0, num_clips=3, seed=-1), "seed"),
    ],
)
def test_constructor_validation(make, field):
    with pytest.raises(ConfigError, match=field):
        make()


def test_fixed_rejects_negative_keys():
    with pytest.raises(ValueError, match="key"):
        FixedClipSampler(1.0, num_clips=1)(5.0, key=-1)


def test_every_sampler_takes_one_call_and_uses_what_it_needs():
    """sampler(duration, rng, key=): the random one draws from rng, the fixed one keys on the video, the
    others ignore both; per_epoch tells a dataset which kind it holds."""
    samplers = [RandomClipSampler(2.0, 3), FixedClipSampler(2.0, 3, seed=1), UniformClipSampler(2.0, 3),
                DenseClipSampler(2.0, 1.5)]
    assert [s.per_epoch for s in samplers] == [True, False, False, False]
    for s in samplers:
        a = s(10.0, np.random.default_rng(0), key=4)
        assert a == s(10.0, np.random.default_rng(0), key=4)
        if s.per_epoch:
            assert a != s(10.0, np.random.default_rng(1), key=4)
        else:  # the same starts whatever generator the epoch hands it
            assert a == s(10.0, np.random.default_rng(1), key=4)
    assert samplers[1](10.0, None, key=4) != samplers[1](10.0, None, key=5)
    with pytest.raises(ValueError, match="rng"):
        RandomClipSampler(2.0)(10.0, key=4)
