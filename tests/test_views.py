"""View plans: AVTS's negatives and CrissCross's relaxation modes give the specified temporal
relations, checked on the start and end times of the windows they choose."""
import numpy as np
import pytest

from avssl.config import resolve
from avssl.data.dataset import prepare_entries
from avssl.data.pipeline import clip_spec, make_dataset
from avssl.data.manifest import load_manifest
from avssl.data.probe_index import probe_manifest
from avssl.data.samplers import ClipTooShortError
from avssl.data.views import RELAXATIONS, RelaxedViews, SyncNegatives, uniform_in
from avssl.errors import ConfigError

EPS = 1e-9
DV, DA = 0.5, 2.0  # a video window of 8 frames at 16 fps, 2 s of audio
SPAN = max(DV, DA)


def draws(plan, duration, n=400, seed=0):
    return [plan(duration, np.random.default_rng([seed, i])) for i in range(n)]


def overlap(a0, a1, b0, b1):
    return min(a1, b1) - max(a0, b0)


# --- AVTS negatives -----------------------------------------------------------------------------------

@pytest.mark.parametrize("duration", [DV + DA, 3.1, 10.0])
def test_every_kind_keeps_its_relation_to_the_frames(duration):
    plan = SyncNegatives(DV, DA, hard=0.4, superhard=0.4, min_shift=0.5)
    d = max(duration, plan.min_duration)
    kinds = {0: 0, 1: 0, 2: 0}
    for s in draws(plan, d):
        t, kind = s.starts["video"], s.info["negative"]
        kinds[kind] += 1
        assert s.starts["audio"] == t  # the positive: audio from the first frame on
        assert -EPS <= t and t + SPAN <= d + EPS
        neg = s.starts["audio_neg"]
        if kind == SyncNegatives.EASY:
            assert neg is None  # from another video of the batch
            continue
        assert -EPS <= neg and neg + DA <= d + EPS  # inside the video
        if kind == SyncNegatives.HARD:  # no time in common with the frames
            assert overlap(neg, neg + DA, t, t + DV) <= EPS
        else:  # overlapping the frames, but shifted by at least min_shift
            assert overlap(neg, neg + DA, t, t + DV) > 0
            assert abs(neg - t) >= 0.5 - EPS
    assert all(kinds.values())


def test_kinds_come_in_the_curriculum_proportions():
    plan = SyncNegatives(DV, DA, hard=0.25)
    kinds = np.array([s.info["negative"] for s in draws(plan, 5.0, n=2000)])
    assert set(kinds) == {0, 1}
    assert abs((kinds == 1).mean() - 0.25) < 0.04


def test_stage_one_plan_has_easy_negatives_only_and_no_negative_window():
    plan = SyncNegatives(DV, DA)
    assert plan.windows == ("video", "audio") and plan.min_duration == SPAN
    assert {s.info["negative"] for s in draws(plan, 2.5)} == {SyncNegatives.EASY}


def test_min_duration_fits_every_kind_and_shorter_videos_are_refused():
    assert SyncNegatives(DV, DA, hard=0.25).min_duration == pytest.approx(DV + DA)
    assert SyncNegatives(DV, DA, superhard=0.1, min_shift=0.3).min_duration == pytest.approx(SPAN + 0.3)
    plan = SyncNegatives(DV, DA, hard=1.0)
    draws(plan, DV + DA)  # exactly long enough
    with pytest.raises(ClipTooShortError):
        plan(DV + DA - 0.01, np.random.default_rng(0))


def test_a_super_hard_shift_can_go_both_ways_when_the_frames_outlast_it():
    plan = SyncNegatives(2.0, 2.0, superhard=1.0, min_shift=0.5)  # equal windows: audio early or late
    shifts = [s.starts["audio_neg"] - s.starts["video"] for s in draws(plan, 6.0)]
    assert min(shifts) < 0 < max(shifts) and min(abs(x) for x in shifts) >= 0.5 - EPS


def test_bad_negative_settings_are_config_errors():
    with pytest.raises(ConfigError):
        SyncNegatives(DV, DA, hard=0.8, superhard=0.4)
    with pytest.raises(ConfigError):
        SyncNegatives(DV, DA, superhard=0.1, min_shift=SPAN)


# --- CrissCross relaxation ------------------------------------------------------------------------------

def views(mode, duration, n=300):
    plan = RelaxedViews(DV, DA, mode)
    for s in draws(plan, duration, n):
        t1, t2 = s.starts["video_1"], s.starts["video_2"]
        assert s.starts["audio_1"] == t1 and s.starts["audio_2"] == t2  # each view is in sync inside
        assert min(t1, t2) >= -EPS and max(t1, t2) + SPAN <= duration + EPS
        yield t1, t2


def test_none_takes_the_same_window_twice():
    assert all(t1 == t2 for t1, t2 in views("none", 5.0))


def test_mild_views_overlap_by_half():
    for t1, t2 in views("mild", 5.0):
        assert overlap(t1, t1 + SPAN, t2, t2 + SPAN) == pytest.approx(SPAN / 2)


def test_medium_views_are_adjacent():
    for t1, t2 in views("medium", 5.0):
        first, second = sorted((t1, t2))
        assert second == pytest.approx(first + SPAN)  # one ends where the other starts


def test_extreme_views_lie_in_opposite_halves():
    for t1, t2 in views("extreme", 5.0):
        first, second = sorted((t1, t2))
        assert first + SPAN <= 2.5 + EPS and second >= 2.5 - EPS


def test_mixed_views_are_independent():
    pairs = list(views("mixed", 8.0, n=500))
    gaps = np.array([abs(t1 - t2) for t1, t2 in pairs])
    assert (gaps < SPAN).any() and (gaps > SPAN).any()  # overlapping and apart both occur
    assert abs(np.corrcoef(np.array(pairs).T)[0, 1]) < 0.15


@pytest.mark.parametrize("mode", ["mild", "medium", "extreme"])
def test_which_view_comes_first_is_random(mode):
    firsts = [t1 < t2 for t1, t2 in views(mode, 5.0)]
    assert 0.35 < np.mean(firsts) < 0.65


@pytest.mark.parametrize("mode, spans", [("none", 1), ("mild", 1.5), ("medium", 2), ("extreme", 2), ("mixed", 1)])
def test_each_mode_needs_its_duration(mode, spans):
    plan = RelaxedViews(DV, DA, mode)
    assert plan.min_duration == pytest.approx(spans * SPAN)
    list(views(mode, spans * SPAN, n=20))  # exactly long enough
    with pytest.raises(ClipTooShortError):
        plan(spans * SPAN - 0.01, np.random.default_rng(0))


@pytest.mark.parametrize("plan", [SyncNegatives(DV, DA, hard=0.3, superhard=0.3)]
                         + [RelaxedViews(DV, DA, m) for m in RELAXATIONS])
def test_plans_are_deterministic_given_the_generator(plan):
    a = draws(plan, 6.0, n=20, seed=3)
    b = draws(plan, 6.0, n=20, seed=3)
    assert a == b and a != draws(plan, 6.0, n=20, seed=4)


def test_uniform_in_merges_overlaps_and_handles_points():
    rng = np.random.default_rng(0)
    x = np.array([uniform_in([(0, 2), (1, 3), (5, 4)], rng) for _ in range(3000)])
    assert x.min() >= 0 and x.max() <= 3 and abs(np.mean(x < 1.5) - 0.5) < 0.04  # uniform on [0, 3]
    assert uniform_in([(2.0, 2.0)], rng) == 2.0


# --- the dataset decodes what the plan says ------------------------------------------------------------

def test_dataset_items_hold_every_window_at_the_planned_times(tiny_world):
    cfg = resolve("cpu-tiny", "crisscross", ["audio.duration=1.0", "audio.num_frames=50"])
    manifest = load_manifest(tiny_world)
    spec = clip_spec(cfg)
    plan = RelaxedViews(spec.video_span, spec.audio_duration, "medium")
    entries, skips = prepare_entries(manifest, probe_manifest(manifest, progress=False), spec,
                                     min_duration=plan.min_duration)
    assert len(entries) == len(manifest) and not skips
    ds = make_dataset(cfg, entries[:3], spec, "train", plan=plan)
    item = ds[0]
    assert item["video_1"].shape == item["video_2"].shape == (3, 4, 16, 16)
    assert item["audio_1"].shape == item["audio_2"].shape == (1, 40, 50)
    assert abs(item["start_video_1"] - item["start_video_2"]) == pytest.approx(1.0)
    assert not np.allclose(item["audio_1"].numpy(), item["audio_2"].numpy())
    # AVTS: an easy item fills the unused negative window with its own audio (so batches stack)
    ds.set_plan(SyncNegatives(spec.video_span, spec.audio_duration, hard=0.5))
    items = [ds[i] for i in range(3)]
    for it in items:
        if it["negative"] == SyncNegatives.EASY:
            assert np.isnan(it["start_audio_neg"]) and it["audio_neg"] is it["audio"]
        else:
            assert it["start_audio_neg"] + 1.0 <= it["start_video"] + EPS or \
                it["start_audio_neg"] >= it["start_video"] + spec.video_span - EPS
