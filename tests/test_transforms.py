import colorsys

import numpy as np
import pytest
import torch

from avssl.data.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    CenterCrop,
    ColorJitter,
    Compose,
    Cutout,
    FrequencyMask,
    GaussianBlur,
    Normalize,
    RandomAudioCrop,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomResizedSpecCrop,
    ShortSideResize,
    TimeMask,
    VolumeJitter,
    audio_wave_transform,
    spectrogram_transform,
    to_tensor_video,
    transform_video,
    video_transform,
)
from avssl.data.transforms.colour import _hue_matrix
from avssl.errors import ConfigError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def uint8_clip(t=4, h=24, w=32, seed=0, same_frames=False) -> np.ndarray:
    frames = np.random.default_rng(seed).integers(0, 256, size=(1 if same_frames else t, h, w, 3), dtype=np.uint8)
    return np.repeat(frames, t, axis=0) if same_frames else frames


def video(t=4, h=24, w=32, seed=0, same_frames=False) -> torch.Tensor:
    return to_tensor_video(uint8_clip(t, h, w, seed, same_frames))


# Every random video transform, configured to always fire.
RANDOM_VIDEO_TRANSFORMS = {
    "random_crop": RandomCrop(16),
    "resized_crop": RandomResizedCrop(16),
    "flip": RandomHorizontalFlip(p=1.0),
    "color_jitter": ColorJitter(0.4, 0.4, 0.4, 0.2, p=1.0),
    "grayscale": RandomGrayscale(p=1.0),
    "blur": GaussianBlur(5, p=1.0),
    "cutout": Cutout(8, p=1.0),
}
FULL_TRAIN = video_transform(
    train=True, crop_size=16, resize=20, color_jitter=0.4, grayscale=0.5, blur=0.5, cutout=1.0, multiscale=True
)


# --------------------------------------------------------------------------------- tensor layout


def test_to_tensor_video_layout_and_range():
    clip = uint8_clip(t=3, h=5, w=7)
    clip[1, 2, 4] = (0, 128, 255)
    out = to_tensor_video(clip)
    assert out.shape == (3, 3, 5, 7) and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out[:, 1, 2, 4], torch.tensor([0.0, 128 / 255, 1.0]))
    torch.testing.assert_close(out, to_tensor_video(torch.from_numpy(clip)), rtol=0, atol=0)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 8, 8, 3), np.float32), np.zeros((3, 4, 8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8)]
)
def test_to_tensor_video_rejects_other_layouts(bad):
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_video(bad)


def _old_order(clip, transform, generator):
    """What datasets did before transform_video: convert the whole clip, then the chain."""
    x = to_tensor_video(clip)
    return transform(x, generator) if transform is not None else x


@pytest.mark.parametrize(
    "name,transform",
    [
        ("train", video_transform(True, crop_size=16)),  # crop, flip, normalise: all fused
        ("train_no_flip", video_transform(True, crop_size=16, flip=False)),
        ("eval", video_transform(False, crop_size=16)),  # centre crop, normalise
        ("jitter", video_transform(True, crop_size=16, color_jitter=0.4, grayscale=0.5)),  # float work after the flip
        ("full_train", FULL_TRAIN),  # starts with a resize: nothing runs on uint8
        ("flip_only", RandomHorizontalFlip(p=0.5)),
        # the flip is deferred into the conversion; a crop after it must see the mirrored clip
        ("flip_then_crop", Compose([RandomHorizontalFlip(p=0.5), RandomCrop(16), Normalize()])),
        ("two_flips", Compose([RandomHorizontalFlip(p=0.5), RandomHorizontalFlip(p=0.5), Normalize()])),
        ("flip_no_normalize", Compose([RandomCrop(16), RandomHorizontalFlip(p=0.5)])),
        ("normalize_only", Normalize()),
        ("none", None),
    ],
)
def test_transform_video_matches_converting_first(name, transform):
    """Cropping and flipping the uint8 clip, then converting and normalising in one pass, gives the
    old order's values (float rounding only), with the same random draws: same crop, same flip."""
    flips = set()
    for seed in range(12):
        clip = uint8_clip(t=3, h=20, w=27, seed=seed)
        want_rng, got_rng = rng(seed), rng(seed)
        want = _old_order(clip, transform, want_rng)
        got = transform_video(clip, transform, got_rng)
        assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        assert got_rng.random() == want_rng.random()  # the generators drew the same numbers
        if name == "train":  # the flip fires for some seeds only: compare with the unflipped crop
            unflipped = video_transform(True, crop_size=16, flip=False)(to_tensor_video(clip), rng(seed))
            flips.add(not torch.allclose(got, unflipped, rtol=0, atol=1e-6))
    assert name != "train" or flips == {True, False}
    # the input clip is left as it was
    clip = uint8_clip(t=3, h=20, w=27)
    transform_video(clip, transform, rng(0))
    np.testing.assert_array_equal(clip, uint8_clip(t=3, h=20, w=27))


@pytest.mark.parametrize("preset_name", ["xdc-paper", "cpu-small"])
def test_dataset_video_tensor_matches_the_straightforward_chain_on_a_decoded_clip(media_files, preset_name):
    """A real decoded clip through a preset's training dataset (crop and flip on uint8, the flip read
    mirrored by the fused conversion, normalise in the same pass) equals the plain computation:
    to float, /255, crop, flip, (x - mean) / std, one step after another on torch tensors."""
    from avssl.config import preset
    from avssl.data.media import decode_video
    from avssl.data.pipeline import clip_spec, make_dataset

    cfg = preset(preset_name)
    spec = clip_spec(cfg)
    ds = make_dataset(cfg, [], spec, "train", seed=0)
    crop = cfg.video.crop
    short_side = max(crop + 8, 1)  # the test file is 96x128: decode at a short side the crop fits in
    frames = decode_video(media_files("long"), 3.3, spec.num_frames, spec.fps, short_side=short_side)
    mean = torch.tensor(KINETICS_MEAN, dtype=torch.float64).view(3, 1, 1, 1)
    std = torch.tensor(KINETICS_STD, dtype=torch.float64).view(3, 1, 1, 1)
    flipped = set()
    for seed in range(8):
        got = ds.video_tensor(frames, rng(seed))
        r = rng(seed)
        x = torch.from_numpy(frames).permute(3, 0, 1, 2).double() / 255
        top = int(r.integers(0, x.shape[-2] - crop + 1))
        left = int(r.integers(0, x.shape[-1] - crop + 1))
        x = x[..., top : top + crop, left : left + crop]
        flip = r.random() < 0.5
        flipped.add(flip)
        want = ((x.flip(-1) if flip else x) - mean) / std
        assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == want.shape
        torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-6)
    assert flipped == {True, False}


def test_normalize_from_uint8_matches_dividing_first_for_every_value():
    clip = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None, None], (1, 256, 1, 3)).copy()
    for normalize in (Normalize(), Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))):
        got = normalize.from_uint8(torch.from_numpy(clip).permute(3, 0, 1, 2))
        torch.testing.assert_close(got, normalize(to_tensor_video(clip)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("chunk_bytes", [1, 12 * 30 * 31 * 2, None], ids=["frame", "two_frames", "default"])
def test_normalize_from_uint8_is_bit_equal_to_multiply_then_add_on_a_decoded_clip(media_files, monkeypatch, chunk_bytes):
    """The frame-by-frame conversion (cast into the output, scale and shift in place) gives exactly the
    values of the plain two-step float32 computation, u * float32(1 / (255 std)) then + float32(-mean /
    std), on crop views of a real decoded clip (pixels 3 bytes apart), mirrored or not."""
    from avssl.data.media import decode_video

    from avssl.data.transforms import colour

    if chunk_bytes is not None:  # frames per pass: one, two (the 30x31 crop), or the default
        monkeypatch.setattr(colour, "_CHUNK_BYTES", chunk_bytes)
    frames = decode_video(media_files("long"), 1.7, 5, 25.0, short_side=40)
    normalize = Normalize()
    scale = torch.tensor([1 / (255 * s) for s in KINETICS_STD], dtype=torch.float32).view(3, 1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(KINETICS_MEAN, KINETICS_STD)], dtype=torch.float32).view(3, 1, 1, 1)
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)
    for crop in (x, x[:, 1:4, 3:33, 5:36], x[:, :1, :17, 2:3]):
        for flip in (False, True):
            src = crop.flip(-1) if flip else crop
            want = src.to(torch.float32) * scale + shift
            got = normalize.from_uint8(crop, flip=flip)
            assert got.dtype == torch.float32 and got.is_contiguous() and got.shape == want.shape
            assert torch.equal(got, want)


def test_transform_video_checks_its_input():
    with pytest.raises(ValueError, match="uint8"):
        transform_video(np.zeros((4, 8, 8, 3), np.float32), video_transform(False, 8))
    with pytest.raises(ValueError, match="smaller than"):
        transform_video(uint8_clip(h=8, w=8), video_transform(False, 16))
    with pytest.raises(TypeError, match="needs a numpy Generator"):
        transform_video(uint8_clip(), video_transform(True, 16), None)


def test_video_transforms_reject_channels_last():
    with pytest.raises(ValueError, match=r"\(3, T, H, W\)"):
        CenterCrop(8)(torch.rand(4, 16, 16, 3))


# ------------------------------------------------------------------------ shared random behaviour


@pytest.mark.parametrize("name", [*RANDOM_VIDEO_TRANSFORMS, "full_train"])
def test_same_augmentation_on_every_frame(name):
    transform = FULL_TRAIN if name == "full_train" else RANDOM_VIDEO_TRANSFORMS[name]
    clip = video(same_frames=True)
    for seed in range(5):
        out = transform(clip, rng(seed))
        for t in range(1, out.shape[1]):
            torch.testing.assert_close(out[:, t], out[:, 0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in RANDOM_VIDEO_TRANSFORMS if n not in ("flip", "grayscale")])
def test_same_seed_same_output_other_seed_other_output(name):
    transform = RANDOM_VIDEO_TRANSFORMS[name]
    x = video()
    first = transform(x, rng(1))
    torch.testing.assert_close(transform(x, rng(1)), first, rtol=0, atol=0)
    assert not torch.equal(transform(x, rng(2)), first)


def test_full_pipeline_is_reproducible_and_varies_with_the_seed():
    clip = video()
    outputs = [FULL_TRAIN(clip, rng(seed)) for seed in range(4)]
    torch.testing.assert_close(FULL_TRAIN(clip, rng(0)), outputs[0], rtol=0, atol=0)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(outputs[i], outputs[j])


def test_compose_threads_one_rng_through_the_chain():
    x = video()
    crop, jitter = RandomCrop(16), ColorJitter(0.4, 0.4, 0.4, 0.1)
    expected_rng = rng(5)
    expected = jitter(crop(x, expected_rng), expected_rng)
    torch.testing.assert_close(Compose([crop, jitter])(x, rng(5)), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", RANDOM_VIDEO_TRANSFORMS)
def test_random_transforms_demand_a_generator(name):
    with pytest.raises(TypeError, match="numpy Generator"):
        RANDOM_VIDEO_TRANSFORMS[name](video(), None)


# -------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("h, w, expected", [(24, 32, (16, 21)), (40, 20, (32, 16)), (16, 50, (16, 50))])
def test_short_side_resize_shapes(h, w, expected):
    out = ShortSideResize(16)(video(h=h, w=w))
    assert out.shape == (3, 4, *expected)


def test_short_side_resize_keeps_flat_frames_flat():
    x = torch.full((3, 2, 40, 60), 0.25)
    torch.testing.assert_close(ShortSideResize(10)(x), torch.full((3, 2, 10, 15), 0.25))


def test_center_crop_takes_the_centre():
    x = video(h=11, w=15)
    out = CenterCrop(4)(x)
    # Margins 7 and 11: offsets 3 and 5 (rounded down when odd).
    torch.testing.assert_close(out, x[:, :, 3:7, 5:9], rtol=0, atol=0)


def test_random_crop_is_a_window_of_the_input_at_varying_offsets():
    h, w, size = 10, 12, 6
    # Pixel value encodes its (row, column), so a crop's first pixel reveals its offset.
    grid = (torch.arange(h).view(h, 1) * w + torch.arange(w)).float() / (h * w)
    x = grid.expand(3, 2, h, w).contiguous()
    offsets = set()
    for seed in range(60):
        out = RandomCrop(size)(x, rng(seed))
        top, left = divmod(round(out[0, 0, 0, 0].item() * h * w), w)
        torch.testing.assert_close(out, x[:, :, top : top + size, left : left + size], rtol=0, atol=0)
        offsets.add((top, left))
    tops, lefts = zip(*offsets)
    assert set(tops) == set(range(h - size + 1)) and set(lefts) == set(range(w - size + 1))


def test_crops_refuse_frames_smaller_than_the_crop():
    with pytest.raises(ValueError, match="smaller than the 30x30 crop"):
        RandomCrop(30)(video(), rng())


def test_resized_crop_output_and_identity_case():
    x = video(h=24, w=24)
    assert RandomResizedCrop(12)(video(), rng()).shape == (3, 4, 12, 12)
    # Full area at aspect 1 on a square frame: the crop is the frame, resized to its own size.
    torch.testing.assert_close(RandomResizedCrop(24, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, rng()), x)


def test_resized_crop_areas_follow_the_scale_range():
    transform = RandomResizedCrop(8, scale=(0.25, 0.5))
    areas = [np.prod(transform._window(100, 100, rng(seed))[2:]) / 1e4 for seed in range(50)]
    assert min(areas) >= 0.24 and max(areas) <= 0.51


def test_flip_mirrors_columns():
    x = video()
    torch.testing.assert_close(RandomHorizontalFlip(p=1.0)(x, rng()), x.flip(-1), rtol=0, atol=0)
    assert RandomHorizontalFlip(p=0.0)(x, rng()) is x
    flips = sum(torch.equal(RandomHorizontalFlip()(x, rng(s)), x.flip(-1)) for s in range(200))
    assert 70 < flips < 130


# ---------------------------------------------------------------------------------------- colour


def test_grayscale_makes_channels_equal_bt601_luma():
    x = video()
    out = RandomGrayscale(p=1.0)(x, rng())
    expected = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    for c in range(3):
        torch.testing.assert_close(out[c], expected)
    assert RandomGrayscale(p=0.0)(x, rng()) is x


def test_brightness_scales_every_pixel_by_one_factor_in_range():
    x = 0.1 + 0.4 * video()  # no zeros to divide by, and clear of the clamp at 1
    out = ColorJitter(brightness=0.4)(x, rng(3))
    ratio = out / x
    assert 0.6 <= ratio.min() and ratio.max() <= 1.4
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.mean().item()))


def test_saturation_and_hue_leave_grey_pixels_alone():
    grey = torch.rand(1, 4, 8, 8).expand(3, 4, 8, 8).contiguous()
    for seed in range(5):
        out = ColorJitter(saturation=0.4, hue=0.5)(grey, rng(seed))
        torch.testing.assert_close(out, grey, atol=1e-5, rtol=0)


def test_hue_shift_keeps_luma_and_changes_colour():
    x = 0.25 + 0.5 * video()  # mid-range colours stay in gamut after a small rotation
    out = ColorJitter(hue=0.05)(x, rng(0))
    luma = lambda v: 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]  # noqa: E731
    torch.testing.assert_close(luma(out), luma(x), atol=2e-3, rtol=0)
    assert (out - x).abs().max() > 0.01


def test_hue_matrix_turns_colours_the_way_hsv_does():
    # The approximation is not exact, but a small shift must move hue the same way as HSV.
    for rgb in [(0.8, 0.2, 0.2), (0.2, 0.7, 0.3), (0.3, 0.4, 0.9)]:
        hue = colorsys.rgb_to_hsv(*rgb)[0]
        shifted = (_hue_matrix(0.05) @ torch.tensor(rgb, dtype=torch.float64)).clamp(0, 1).tolist()
        turn = (colorsys.rgb_to_hsv(*shifted)[0] - hue + 0.5) % 1.0 - 0.5
        assert 0.02 < turn < 0.08


def test_contrast_moves_pixels_towards_the_clip_mean_grey():
    x = video()
    out = ColorJitter(contrast=0.4)(x, rng(0))
    mean_grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
    factor = ((out - mean_grey) / (x - mean_grey))[(x - mean_grey).abs() > 0.1]
    assert 0.6 <= factor.min() and factor.max() <= 1.4
    torch.testing.assert_close(factor, torch.full_like(factor, factor.mean().item()), atol=1e-4, rtol=0)


def test_color_jitter_probability_zero_is_identity():
    x = video()
    assert ColorJitter(0.4, 0.4, 0.4, 0.2, p=0.0)(x, rng()) is x


def test_blur_keeps_flat_frames_and_smooths_noise():
    flat = torch.full((3, 2, 16, 16), 0.3)
    torch.testing.assert_close(GaussianBlur(5, p=1.0)(flat, rng()), flat)
    noise = video(h=32, w=32)
    assert GaussianBlur(7, sigma=(1.5, 2.0), p=1.0)(noise, rng()).std() < 0.5 * noise.std()


def test_cutout_blanks_one_square_with_the_first_frame_mean():
    x = video(h=30, w=30)
    fill = x[:, 0].mean(dim=(-2, -1))
    for seed in range(10):
        out = Cutout(8, p=1.0)(x, rng(seed))
        changed = (out != x).any(dim=0)  # (T, H, W)
        assert changed.any()
        assert torch.equal(changed, changed[:1].expand_as(changed))  # same hole in every frame
        rows = changed[0].any(dim=1).nonzero().flatten()
        cols = changed[0].any(dim=0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert height <= 8 and width <= 8
        assert rows[-1] - rows[0] + 1 == height and cols[-1] - cols[0] + 1 == width  # one solid block
        hole = out[:, :, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        torch.testing.assert_close(hole, fill.view(3, 1, 1, 1).expand_as(hole), rtol=0, atol=0)


def test_normalize_numbers():
    mean, std = torch.tensor(KINETICS_MEAN).view(3, 1, 1, 1), torch.tensor(KINETICS_STD).view(3, 1, 1, 1)
    x = mean + std * torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1)  # (3, T=3, 1, 1)
    out = Normalize()(x.expand(3, 3, 2, 2))
    expected = torch.tensor([0.0, 1.0, -2.0]).view(1, 3, 1, 1).expand(3, 3, 2, 2)
    torch.testing.assert_close(out, expected)
    out = Normalize([0.5] * 3, [0.25] * 3)(torch.ones(3, 1, 1, 1))  # lists are accepted too
    torch.testing.assert_close(out, torch.full((3, 1, 1, 1), 2.0))


# -------------------------------------------------------------------------------------- builders


@pytest.mark.parametrize("multiscale", [False, True])
@pytest.mark.parametrize("resize", [None, 20])
def test_builders_end_at_the_crop_size(multiscale, resize):
    clip = video(t=3, h=24, w=32)
    for train in (True, False):
        transform = video_transform(train=train, crop_size=16, resize=resize, multiscale=multiscale)
        out = transform(clip, rng())
        assert out.shape == (3, 3, 16, 16) and out.dtype == torch.float32


def test_eval_builder_is_deterministic_resize_centre_crop_normalize():
    clip = video(h=24, w=32)
    transform = video_transform(train=False, crop_size=16, resize=20, color_jitter=0.4, cutout=1.0)
    expected = Normalize()(CenterCrop(16)(ShortSideResize(20)(clip)))
    torch.testing.assert_close(transform(clip, None), expected, rtol=0, atol=0)
    torch.testing.assert_close(transform(clip, rng(1)), expected, rtol=0, atol=0)


def test_train_builder_uses_crisscross_parameters():
    chain = video_transform(True, 112, color_jitter=0.4, grayscale=0.2, blur=0.5, cutout=1.0, multiscale=True)
    steps = {type(t): t for t in chain.transforms}
    assert steps[RandomResizedCrop].scale == (0.08, 1.0)
    jitter = steps[ColorJitter]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (0.4, 0.4, 0.4, 0.2)
    assert steps[RandomGrayscale].p == 0.2 and steps[GaussianBlur].p == 0.5
    assert steps[Cutout].max_size == 20 and steps[GaussianBlur].kernel_size == 11


def test_train_builder_without_extras_is_crop_flip_normalize():
    names = [type(t).__name__ for t in video_transform(True, 16).transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "Normalize"]


# ----------------------------------------------------------------------------------------- audio


def test_volume_jitter_applies_one_gain_in_range():
    wave = torch.linspace(-1, 1, 101)
    gains = []
    for seed in range(50):
        out = VolumeJitter(0.1)(wave, rng(seed))
        gain = out[-1].item()
        torch.testing.assert_close(out, wave * gain)
        gains.append(gain)
    assert 0.9 <= min(gains) < 0.93 and 1.07 < max(gains) <= 1.1


def test_random_audio_crop_returns_a_window():
    wave = torch.arange(16000 * 3, dtype=torch.float32)
    starts = set()
    for seed in range(20):
        out = RandomAudioCrop(2.0, sample_rate=16000)(wave, rng(seed))
        assert out.shape == (32000,)
        torch.testing.assert_close(out, wave[int(out[0]) : int(out[0]) + 32000], rtol=0, atol=0)
        starts.add(int(out[0]))
    assert len(starts) > 15
    with pytest.raises(ValueError, match="fewer than"):
        RandomAudioCrop(4.0)(wave, rng())


@pytest.mark.parametrize("mask, axis", [(TimeMask, -1), (FrequencyMask, -2)])
def test_masks_touch_at_most_the_stated_width(mask, axis):
    spec = torch.randn(1, 40, 100)
    widths = []
    for seed in range(40):
        out = mask(max_width=10, num_masks=1)(spec, rng(seed))
        changed = (out != spec).movedim(axis, -1).reshape(-1, spec.shape[axis]).any(dim=0)
        idx = changed.nonzero().flatten()
        if len(idx):
            assert idx[-1] - idx[0] + 1 == len(idx)  # one contiguous band
            band = out.movedim(axis, -1)[..., idx[0] : idx[-1] + 1]
            torch.testing.assert_close(band, torch.full_like(band, spec.mean().item()))  # whole band, mean fill
        widths.append(len(idx))
    assert max(widths) == 10 and min(widths) < 10


def test_two_masks_change_at_most_twice_the_width():
    spec = torch.randn(1, 80, 200)
    for seed in range(20):
        out = TimeMask(20, num_masks=2)(spec, rng(seed))
        assert (out != spec).any(dim=-2).sum() <= 40


def test_masks_do_not_modify_their_input():
    spec = torch.randn(1, 8, 20)
    copy = spec.clone()
    TimeMask(5, 2)(spec, rng())
    FrequencyMask(5, 2)(spec, rng())
    torch.testing.assert_close(spec, copy, rtol=0, atol=0)


def test_audio_builders():
    wave, spec = torch.randn(32000), torch.randn(1, 40, 100)
    assert audio_wave_transform(False)(wave, None) is wave
    assert spectrogram_transform(False, 20, 10)(spec, None) is spec
    assert spectrogram_transform(True)(spec, rng()) is spec
    assert not torch.equal(audio_wave_transform(True, 0.2)(wave, rng()), wave)
    masked = spectrogram_transform(True, time_mask=20, freq_mask=10)
    assert [type(t) for t in masked.transforms] == [TimeMask, FrequencyMask]
    assert all(t.num_masks == 2 for t in masked.transforms)
    torch.testing.assert_close(masked(spec, rng(4)), masked(spec, rng(4)), rtol=0, atol=0)
    cropped = spectrogram_transform(True, time_mask=20, freq_mask=10, random_crop=True)
    assert [type(t) for t in cropped.transforms] == [RandomResizedSpecCrop, TimeMask, FrequencyMask]


def test_spectrogram_random_crop_keeps_the_shape_and_varies():
    spec = torch.randn(1, 40, 100)
    crop = RandomResizedSpecCrop()
    outs = [crop(spec, rng(s)) for s in range(3)]
    assert all(o.shape == spec.shape for o in outs)
    torch.testing.assert_close(crop(spec, rng(1)), outs[1], rtol=0, atol=0)
    assert not torch.allclose(outs[0], outs[1])
    # scale 1 everywhere and no canvas margin: the window is the whole spectrogram, resized to itself
    whole = RandomResizedSpecCrop(freq_scale=(1.0, 1.0), time_scale=(1.0, 1.0), canvas_scale=(1.0, 1.0))
    torch.testing.assert_close(whole(spec, rng()), spec)


def test_spectrogram_random_crop_fills_the_margin_with_the_mean():
    spec = torch.zeros(1, 8, 20)
    spec[..., 10:] = 2.0  # mean 1
    crop = RandomResizedSpecCrop(freq_scale=(1.0, 1.0), time_scale=(1.5, 1.5), canvas_scale=(1.0, 1.5))
    out = crop(spec, rng())  # the whole canvas: the spectrogram squeezed between two bands of the mean
    assert out[..., 0].mean() == pytest.approx(1.0) and out[..., -1].mean() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- config checks


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: RandomHorizontalFlip(p=1.5), "p"),
        (lambda: RandomCrop(0), "size"),
        (lambda: RandomResizedCrop(16, scale=(0.5, 0.1)), "scale"),
        (lambda: RandomResizedCrop(16, scale=(0.0, 1.0)), "scale"),
        (lambda: ColorJitter(hue=0.6), "hue"),
        (lambda: ColorJitter(brightness=-0.1), "brightness"),
        (lambda: GaussianBlur(4), "kernel_size"),
        (lambda: Cutout(0), "max_size"),
        (lambda: Normalize(std=(0.2, 0.0, 0.2)), "std"),
        (lambda: VolumeJitter(1.0), "jitter"),
        (lambda: TimeMask(-1), "max_width"),
        (lambda: RandomAudioCrop(0.0), "seconds"),
        (lambda: RandomResizedSpecCrop(time_scale=(0.0, 1.0)), "time_scale"),
        (lambda: RandomResizedSpecCrop(canvas_scale=(0.5, 1.0)), "canvas_scale"),
    ],
)
def test_bad_parameters_raise_config_error(make, field):
    with pytest.raises(ConfigError, match=field):
        make()
